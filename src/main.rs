//! The `nsoffload` binary: parse arguments, install the crypto provider, run, and turn the
//! result into an exit status (0 success, 1 failure, 2 usage error; see `cli::exit`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use nsoffload::cli::{exit, Cli};

/// jemalloc returns freed memory to the system over time; glibc's malloc left RSS near the
/// start-up peak of the caches' first lists.
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    nsoffload::server::tls::install_crypto_provider();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e),
    }
}
