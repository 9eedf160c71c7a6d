fn main() {
    std::process::exit(opsplan::cli::main());
}
