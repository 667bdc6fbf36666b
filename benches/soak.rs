//! Soak benchmark (`make bench-soak`): the release `nsoffload serve` under steady load for
//! ten minutes while its certificate files are rotated every minute.
//!
//! Why: a webhook with `failurePolicy: Fail` runs for months; what a short benchmark cannot
//! show is memory or file descriptors creeping up, or a certificate swap failing a request.
//! The server runs as its own process (`serve --standalone`, files reloaded every 5 s), as
//! an operator runs it. The client sends `POST /mutate/pod` at a fixed rate over HTTP/1.1
//! keep-alive connections (as the API server does) and checks every answer (HTTP 200, the
//! request's uid, allowed, a patch); every minute a new serving certificate from the same CA
//! replaces the files (write then rename, like a Secret update), and a new connection must
//! then see the new certificate. RSS and open file descriptors of the server are sampled
//! every 10 s.
//!
//! Environment: `NSOFFLOAD_SOAK_SECS` (default 600), `NSOFFLOAD_SOAK_RATE` (requests per
//! second, default 2000), `NSOFFLOAD_SOAK_CONNS` (connections, default 8). Traffic goes to
//! 127.0.0.1 only; the run stops by itself. Exits non-zero on any failed request or a
//! rotation that was not served.

#[rustfmt::skip]
#[path = "../tests/common/http.rs"]
mod http;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nsoffload::registration::certs::{generate_ca, issue_serving, PemPair};
use time::OffsetDateTime;

const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/pod-create-replicaset-synthetic.json");
const ROTATE_EVERY: Duration = Duration::from_secs(60);
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a new serving pair signed by `ca` over `dir/tls.{crt,key}`, atomically.
fn rotate(dir: &Path, ca: &PemPair) {
    let now = OffsetDateTime::now_utc();
    let hosts = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let pair = issue_serving(
        &ca.key_pem,
        &hosts,
        now - time::Duration::hours(1),
        now + time::Duration::days(2),
    )
    .expect("a serving certificate");
    for (name, pem) in [("tls.key", &pair.key_pem), ("tls.crt", &pair.cert_pem)] {
        let tmp = dir.join(format!(".{name}.new"));
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

/// (RSS in KiB, open file descriptors) of `pid`.
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// One keep-alive connection sending at `rate` per second until `end`.
async fn lane(
    addr: std::net::SocketAddr,
    ca: String,
    rate: f64,
    end: Instant,
    counts: Arc<Counts>,
) {
    let body = Bytes::from_static(FIXTURE);
    let mut conn = http::connect_h1(addr, &ca).await;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut first_error = true;
    while Instant::now() < end {
        tick.tick().await;
        let (status, answer) = http::send_h1(
            &mut conn,
            http::post("/mutate/pod?timeout=10s", body.clone()),
        )
        .await;
        let review: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        let response = &review["response"];
        let good = status == 200
            && response["uid"].as_str().is_some_and(|u| !u.is_empty())
            && response["allowed"] == true
            && response["patch"].is_string();
        if good {
            counts.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            if first_error {
                eprintln!(
                    "soak: bad answer {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
                first_error = false;
            }
        }
    }
}

fn main() {
    let secs = setting("NSOFFLOAD_SOAK_SECS", 600);
    let rate = setting("NSOFFLOAD_SOAK_RATE", 2000) as f64;
    let conns = setting("NSOFFLOAD_SOAK_CONNS", 8).max(1) as usize;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let ca = generate_ca(
        now - time::Duration::hours(1),
        now + time::Duration::days(30),
    )
    .unwrap();
    rotate(dir.path(), &ca);
    let (web, admin) = (free_port(), free_port());
    let state = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/examples/standalone.yaml"
    );
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_nsoffload"))
            .args(["serve", "--cluster-id", "home", "--standalone", state])
            .args(["--tls-reload-interval", "5s"])
            .arg("--tls-cert-file")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.path().join("tls.key"))
            .args(["--bind-address", &format!("127.0.0.1:{web}")])
            .args(["--admin-address", &format!("127.0.0.1:{admin}")])
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting nsoffload serve"),
    );
    let pid = server.0.id();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{web}").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let counts = Arc::new(Counts::default());
    let outcome = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let lanes: Vec<_> = (0..conns)
            .map(|_| {
                tokio::spawn(lane(
                    addr,
                    ca.cert_pem.clone(),
                    rate / conns as f64,
                    end,
                    counts.clone(),
                ))
            })
            .collect();
        let (mut samples, mut rotations, mut served) = (Vec::new(), 0u32, 0u32);
        let (mut next_sample, mut next_rotation) = (start, start + ROTATE_EVERY);
        let mut last_leaf =
            http::tls_connect(addr, http::client_config(&ca.cert_pem, &[b"http/1.1"]))
                .await
                .2;
        while Instant::now() < end {
            let now = Instant::now();
            if now >= next_sample {
                samples.push((now - start, usage(pid)));
                next_sample += SAMPLE_EVERY;
            }
            if now >= next_rotation && now + Duration::from_secs(15) < end {
                rotate(dir.path(), &ca);
                rotations += 1;
                next_rotation += ROTATE_EVERY;
                // Picked up within the reload interval: a new connection sees the new leaf.
                tokio::time::sleep(Duration::from_secs(7)).await;
                let leaf =
                    http::tls_connect(addr, http::client_config(&ca.cert_pem, &[b"http/1.1"]))
                        .await
                        .2;
                if leaf != last_leaf {
                    served += 1;
                    last_leaf = leaf;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for l in lanes {
            l.await.unwrap();
        }
        samples.push((start.elapsed(), usage(pid)));
        (samples, rotations, served, start.elapsed())
    });
    let (samples, rotations, served, took) = outcome;
    let ok = counts.ok.load(Ordering::Relaxed);
    let failed = counts.failed.load(Ordering::Relaxed);
    println!("soak: {secs} s at {rate} req/s over {conns} HTTP/1.1 keep-alive connections");
    println!(
        "soak: {ok} answers checked, {failed} failed, {:.0} req/s achieved",
        ok as f64 / took.as_secs_f64()
    );
    println!("soak: certificate rotated {rotations} times, new certificate served after {served}");
    // The first sample after warm-up (20 s) is the baseline.
    let base = samples
        .iter()
        .find(|(t, _)| *t >= Duration::from_secs(20))
        .or(samples.first());
    let last = samples.last();
    let max_rss = samples.iter().map(|(_, (r, _))| *r).max().unwrap_or(0);
    let max_fds = samples.iter().map(|(_, (_, f))| *f).max().unwrap_or(0);
    if let (Some((t0, (r0, f0))), Some((t1, (r1, f1)))) = (base, last) {
        println!(
            "soak: RSS {:.1} MiB at {}s, {:.1} MiB at {}s (max {:.1} MiB, {:+.1} %); fds {f0} → {f1} (max {max_fds})",
            *r0 as f64 / 1024.0, t0.as_secs(), *r1 as f64 / 1024.0, t1.as_secs(),
            max_rss as f64 / 1024.0, (*r1 as f64 / *r0 as f64 - 1.0) * 100.0
        );
    }
    drop(server);
    if failed > 0 || served < rotations {
        eprintln!("soak: FAILED");
        std::process::exit(1);
    }
}
