//! `cargo facehugger`: cargo runs `cargo-facehugger facehugger ARGS...`.

fn main() {
    let mut args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|arg| arg == "facehugger") {
        args.remove(1);
    }
    std::process::exit(facehugger::cli::main(args));
}
