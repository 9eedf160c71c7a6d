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
/// Messages on stderr go through the console: above the live view when one is drawn, as
/// `message` objects with `--log-format json` (stderr then carries JSON Lines only).
macro_rules! errln {
    ($($t:tt)*) => {{
        $crate::console::eprint(&format!("{}\n", format_args!($($t)*)));
    }};
}
macro_rules! err {
    ($($t:tt)*) => {{
        $crate::console::eprint(&format!($($t)*));
    }};
}

mod cli;
mod color;
mod console;
mod prompt;
mod runs;
mod tables;

fn main() {
    std::process::exit(cli::main());
}
