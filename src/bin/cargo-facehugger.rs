//! `cargo facehugger`: cargo runs `cargo-facehugger facehugger ARGS...`.

fn main() {
    std::process::exit(facehugger::cli::cargo_main(std::env::args_os()));
}
