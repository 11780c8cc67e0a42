//! The `facehugger` command.

fn main() {
    std::process::exit(facehugger::cli::main(std::env::args_os()));
}
