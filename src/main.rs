//! The `nsoffload` binary: parse arguments, install the crypto provider, run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use nsoffload::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    nsoffload::server::tls::install_crypto_provider();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
