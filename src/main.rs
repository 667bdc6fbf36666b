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

/// jemalloc returns dirty pages to the system only when allocation activity makes it look;
/// a server that settles after its start-up lists would keep them. Its background thread
/// purges on a timer instead (dirty pages go after about 10 s), so an idle server's RSS
/// follows its live heap.
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
fn purge_in_background() {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("nsoffload: cannot start the allocator's purging thread: {e}");
    }
}

#[cfg(not(all(target_os = "linux", not(target_env = "msvc"))))]
fn purge_in_background() {}

fn main() -> ExitCode {
    purge_in_background();
    let cli = Cli::parse();
    nsoffload::server::tls::install_crypto_provider();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e),
    }
}
