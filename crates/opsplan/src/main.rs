//! The `opsplan` binary: parses arguments, prints, maps exit codes. Plans are read by
//! `opsplan-plan`, run by `opsplan-run`, with the step types of `opsplan-steps`.

mod cli;
mod console;
mod runs;

fn main() {
    std::process::exit(cli::main());
}
