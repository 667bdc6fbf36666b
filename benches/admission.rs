//! Load benchmark of `POST /mutate/pod` over TLS (`make bench`).
//!
//! The API server waits on this webhook for every pod it creates in an offloaded namespace,
//! over HTTP/1.1 keep-alive connections, so what matters is how many answers one server core
//! gives and how fast each comes back. The server runs the real stack (`serve_tls`: rustls,
//! hyper, axum, the webhook router) on one OS thread with a current-thread Tokio runtime;
//! the load generator runs on another thread. Every request sends the 3.6 KB body of
//! `tests/fixtures/pod-create-replicaset-synthetic.json` (namespace `shop`, whose
//! NamespaceOffloading is Remote with a two-term clusterSelector, so each answer carries a
//! toleration and a node-affinity patch; the answer is checked before and during the run).
//!
//! Measured, each pair in the same run with alternating slices:
//! - closed-loop throughput of `/mutate/pod` beside `POST /constant`, an endpoint on the same
//!   stack that reads the body and returns a fixed answer of the same size, over HTTP/1.1
//!   (16 connections) and h2 (32 streams on one connection); target mutate ≥ 70 % of constant;
//! - open-loop latency at a fixed 1,000 req/s over HTTP/1.1, measured from each request's
//!   scheduled send time (so a slow answer is charged to the requests it delays); target
//!   p99 ≤ 1 ms;
//! - `/mutate/pod` with 1 vs 10,000 NamespaceOffloadings in the state; target no growth.
//!
//! Beside req/s it prints the server thread's CPU time per answer (from `/proc`), which is the
//! cost on a saturated core even when the 2-core machine's client is the limit, and the
//! spread of each ratio over adjacent slice pairs (this VM's speed drifts by tens of percent
//! within a second, so a single figure can move by about ±10 % between runs). It also times
//! each step of the decision in-process, to show where the handler's time goes. The server
//! thread is pinned to CPU 1 and the client to CPU 0 (with `taskset`) when possible.
//!
//! The run is a report: it exits 0 whether targets are met or missed, and non-zero only
//! when an answer is wrong. Environment: `NSOFFLOAD_BENCH_SECS` (seconds per measured
//! figure, default 3), `NSOFFLOAD_BENCH_CONNS` (HTTP/1.1 connections, default 16),
//! `NSOFFLOAD_BENCH_STREAMS` (h2 streams, default 32), `NSOFFLOAD_BENCH_RATE` (default 1000),
//! `NSOFFLOAD_BENCH_LOGS=0` to run without the info-level log subscriber that `serve`
//! installs, `NSOFFLOAD_BENCH_PIN=0` to leave thread placement to the kernel.

// Shared with the tests, which own its formatting: `rustfmt benches/admission.rs` skips it.
#[rustfmt::skip]
#[path = "../tests/common/http.rs"]
mod http;
#[path = "admission/load.rs"]
mod load;
#[path = "admission/report.rs"]
mod report;
#[path = "admission/setup.rs"]
mod setup;

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use load::{Clocks, Comparison, Latencies, ThreadClock, Workload};

const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/pod-create-replicaset-synthetic.json");
const MUTATE: &str = "/mutate/pod?timeout=10s";
const CONSTANT: &str = "/constant?timeout=10s";
const OTHER_NAMESPACES: usize = 9_999;
const MIN_RATIO: f64 = 0.70;
const MAX_P99: Duration = Duration::from_millis(1);
/// Cost growth from 1 to 10,000 namespaces still counted as "none" (run-to-run noise).
const MAX_GROWTH: f64 = 0.05;

/// Prints why the benchmark cannot go on and exits 1.
fn fail(msg: impl Display) -> ! {
    eprintln!("admission bench: FAILED: {msg}");
    std::process::exit(1)
}

struct Config {
    secs: f64,
    warmup: f64,
    conns: usize,
    streams: usize,
    rate: f64,
    logs: bool,
    pin: bool,
}

impl Config {
    fn from_env() -> Config {
        let num = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .unwrap_or(default)
        };
        let secs = num("NSOFFLOAD_BENCH_SECS", 3.0);
        Config {
            secs,
            warmup: (secs / 6.0).min(0.5),
            conns: num("NSOFFLOAD_BENCH_CONNS", 16.0) as usize,
            streams: num("NSOFFLOAD_BENCH_STREAMS", 32.0) as usize,
            rate: num("NSOFFLOAD_BENCH_RATE", 1000.0),
            logs: std::env::var("NSOFFLOAD_BENCH_LOGS").map_or(true, |v| v != "0"),
            pin: std::env::var("NSOFFLOAD_BENCH_PIN").map_or(true, |v| v != "0")
                && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
        }
    }
}

struct Results {
    h1: Comparison,
    h2: Comparison,
    latency: Latencies,
    namespaces: Comparison,
    pinned: bool,
}

#[derive(Clone, Copy)]
enum Proto {
    H1,
    H2,
}

/// Fresh connections for one phase, checked with one request each workload. Fresh because
/// the server closes an HTTP/1.1 connection that stays idle for 10 s.
async fn workload(
    cfg: &Config,
    proto: Proto,
    (addr, ca): &(SocketAddr, String),
    path: &'static str,
    want: &Bytes,
) -> Workload {
    let lanes = match proto {
        Proto::H1 => load::h1_lanes(*addr, ca, cfg.conns).await,
        Proto::H2 => load::h2_lanes(*addr, ca, 1, cfg.streams).await,
    };
    let mut w = Workload {
        lanes,
        path,
        body: Bytes::from_static(FIXTURE),
        want: want.clone(),
    };
    w.check().await.unwrap_or_else(|e| fail(e));
    w
}

async fn run(cfg: &Config, servers: &setup::Servers, want: &Bytes) -> Results {
    use Proto::{H1, H2};
    let client_pinned = cfg.pin && load::pin_current_thread(0);
    let clocks = Clocks {
        server: servers.clock.clone(),
        client: ThreadClock::current(),
    };
    let (small, large) = (&servers.endpoints[0], &servers.endpoints[1]);
    let (s, w) = (cfg.secs, cfg.warmup);

    eprintln!("HTTP/1.1: constant vs /mutate/pod, {s} s each…");
    let mut constant = workload(cfg, H1, small, CONSTANT, want).await;
    let mut mutate = workload(cfg, H1, small, MUTATE, want).await;
    let h1 = load::compare(&mut constant, &mut mutate, s, w, &clocks).await;

    eprintln!("h2: constant vs /mutate/pod, {s} s each…");
    let mut constant = workload(cfg, H2, small, CONSTANT, want).await;
    let mut mutate = workload(cfg, H2, small, MUTATE, want).await;
    let h2 = load::compare(&mut constant, &mut mutate, s, w, &clocks).await;

    eprintln!("HTTP/1.1: /mutate/pod at {} req/s for {s} s…", cfg.rate);
    let mut mutate = workload(cfg, H1, small, MUTATE, want).await;
    load::open_loop(&mut mutate, cfg.rate, w).await;
    let latency = load::open_loop(&mut mutate, cfg.rate, s).await;

    eprintln!("HTTP/1.1: /mutate/pod with 1 vs 10,000 namespaces, {s} s each…");
    let mut one = workload(cfg, H1, small, MUTATE, want).await;
    let mut many = workload(cfg, H1, large, MUTATE, want).await;
    let namespaces = load::compare(&mut one, &mut many, s, w, &clocks).await;
    Results {
        h1,
        h2,
        latency,
        namespaces,
        pinned: client_pinned && servers.pinned,
    }
}

fn main() {
    let cfg = Config::from_env();
    let started = Instant::now();
    if cfg.logs {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let uid = setup::request_uid(FIXTURE);
    let small = http::app(setup::snapshot(0));
    let large = http::app(setup::snapshot(OTHER_NAMESPACES));
    let want = setup::expected_answer(&small.admission, FIXTURE);
    setup::check_answer(&want, &uid).unwrap_or_else(|e| fail(e));
    if setup::expected_answer(&large.admission, FIXTURE) != want {
        fail("the answer differs between the 1- and 10,000-namespace states");
    }
    let each = Duration::from_secs_f64((cfg.secs / 15.0).min(0.2));
    let steps = setup::breakdown(&small, FIXTURE, &want, each);
    let steps_large = setup::breakdown(&large, FIXTURE, &want, each);

    let servers = setup::Servers::spawn(
        vec![
            setup::routes(small.clone(), want.clone()),
            setup::routes(large.clone(), want.clone()),
        ],
        cfg.pin,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let results = rt.block_on(run(&cfg, &servers, &want));
    drop(rt); // closes the client connections, so the servers drain at once
    servers.stop();

    report::report(
        &cfg,
        &results,
        &steps,
        &steps_large,
        want.len(),
        started.elapsed(),
    );
    let r = &results;
    let bad = [&r.h1, &r.h2, &r.namespaces]
        .iter()
        .map(|c| c.a.bad + c.b.bad)
        .sum::<u64>()
        + r.latency.bad;
    if bad > 0 {
        fail(format!("{bad} wrong answers during the run"));
    }
}
