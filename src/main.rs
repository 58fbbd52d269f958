//! The `petal` command line: a thin layer over the library that turns errors into one line
//! on stderr and a non-zero exit.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // tract warns that opset 21 is past its tested range on every load; the graph is checked
    // against onnxruntime by the recipe, so that warning is noise for users.
    let level = if args.quiet {
        "error"
    } else {
        "warn,tract_onnx=error"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
