#![allow(clippy::print_stdout, clippy::print_stderr, clippy::exit)] // an example program: its output is the point
//! Writes the per-object files of a rendered kustomization into a directory, like
//! `kubectl kustomize DIR -o OUT` (a development aid for checking `Rendered::files`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out] = args.as_slice() else {
        eprintln!("usage: split_files DIR OUT");
        std::process::exit(2);
    };
    let rendered = match kustomize::render(std::path::Path::new(dir)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let files = match rendered.output_files() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    for (name, content) in files {
        if let Err(e) = std::fs::write(std::path::Path::new(out).join(&name), content) {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}
