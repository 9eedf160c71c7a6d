//! The `opsplan` binary: parses arguments, prints, maps exit codes. Plans are read by
//! `opsplan-plan`, run by `opsplan-run`, with the step types of `opsplan-steps`.

/// Printing that never panics: a closed or broken stdout or stderr (`opsplan schema |
/// head -1`, an SSH session that dropped) must not turn a run into a panic or change its
/// outcome, so write errors are ignored.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

mod cli;
mod console;
mod runs;
mod tables;

fn main() {
    std::process::exit(cli::main());
}
