//! The `nsoffload` binary: parse arguments, install the crypto provider, run, and turn the
//! result into an exit status (0 success, 1 failure, 2 usage error; see `cli::exit`).
#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use nsoffload::cli::{exit, Cli};

/// jemalloc returns freed memory to the system over time; glibc's malloc left RSS near the
/// start-up peak of the caches' first lists.
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at its start (`_rjem_` is the prefix of its symbols here):
/// a background thread returns freed pages on time, after 1 s unused instead of 10 s. Without
/// it, pages are returned only when the process allocates again, so RSS stayed at the level
/// of a burst of work (10,000 statuses written) for seconds after it, then dropped by ~8 %.
/// `MALLOC_CONF`-style overrides still apply through `_RJEM_MALLOC_CONF`.
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[allow(unsafe_code)] // exporting a symbol is unsafe only if its type lies: a C string here
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 43] = b"background_thread:true,dirty_decay_ms:1000\0";

fn main() -> ExitCode {
    let cli = Cli::parse();
    nsoffload::server::tls::install_crypto_provider();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e),
    }
}
