//! `cargo xtask <task>`: developer tasks.

mod bench_build;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") if args.get(1).map(String::as_str) == Some("build") => bench_build::run(&args[2..]),
        _ => Err("usage: cargo xtask bench build [--binary PATH] [--rounds N]".to_owned()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
