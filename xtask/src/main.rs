//! `cargo xtask <task>`: developer tasks.

mod bench_render;
mod kustomize;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("kustomize-oracle") => kustomize::oracle(&args[1..]),
        Some("kustomize-fuzz") => kustomize::fuzz(&args[1..]),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("render") => bench_render::run(&args[2..]),
            _ => {
                eprintln!("usage: cargo xtask bench render [--sizes 500,1000,2000]");
                2
            }
        },
        _ => {
            eprintln!("usage: cargo xtask <kustomize-oracle | kustomize-fuzz | bench render>");
            2
        }
    };
    std::process::exit(code);
}
