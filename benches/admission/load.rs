//! Load generation over kept-alive TLS connections: closed-loop throughput and open-loop
//! latency, with the CPU time the server and client threads spent (from
//! `/proc/<pid>/task/<tid>/schedstat`), so a figure limited by the client shows as such.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper::StatusCode;
use tokio::sync::Semaphore;

use crate::http;

/// One request lane: its own HTTP/1.1 connection, or a handle on a shared h2 connection.
pub enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    async fn call(&mut self, path: &str, body: &Bytes) -> (StatusCode, Bytes) {
        let req = http::post(path, body.clone());
        match self {
            Conn::H1(s) => http::send_h1(s, req).await,
            Conn::H2(s) => http::send_h2(s, req).await,
        }
    }
}

/// `n` HTTP/1.1 keep-alive connections, as the API server keeps them.
pub async fn h1_lanes(addr: std::net::SocketAddr, ca: &str, n: usize) -> Vec<Conn> {
    let mut lanes = Vec::with_capacity(n);
    for _ in 0..n {
        lanes.push(Conn::H1(http::connect_h1(addr, ca).await));
    }
    lanes
}

/// `streams` concurrent h2 streams spread over `conns` connections.
pub async fn h2_lanes(
    addr: std::net::SocketAddr,
    ca: &str,
    conns: usize,
    streams: usize,
) -> Vec<Conn> {
    let mut lanes = Vec::with_capacity(streams);
    let mut senders = Vec::with_capacity(conns);
    for _ in 0..conns.max(1) {
        senders.push(http::connect_h2(addr, ca).await);
    }
    for i in 0..streams {
        lanes.push(Conn::H2(senders[i % senders.len()].clone()));
    }
    lanes
}

/// Requests of one kind on a set of lanes, and the answer each must get.
pub struct Workload {
    pub lanes: Vec<Conn>,
    pub path: &'static str,
    pub body: Bytes,
    pub want: Bytes,
}

impl Workload {
    /// One request on the first lane; an error unless it gets HTTP 200 and `want`.
    pub async fn check(&mut self) -> Result<(), String> {
        let (status, got) = self.lanes[0].call(self.path, &self.body).await;
        if status != StatusCode::OK || got != self.want {
            return Err(format!(
                "POST {} answered {status}: {}",
                self.path,
                String::from_utf8_lossy(&got)
            ));
        }
        Ok(())
    }
}

/// The CPU time of one thread, read from its `schedstat` (nanoseconds on CPU).
#[derive(Clone, Debug)]
pub struct ThreadClock(Option<PathBuf>);

impl ThreadClock {
    /// The clock of the calling thread (none where `/proc` does not have it).
    pub fn current() -> Self {
        let path = std::fs::read_link("/proc/thread-self")
            .ok()
            .map(|p| Path::new("/proc").join(p).join("schedstat"))
            .filter(|p| p.exists());
        ThreadClock(path)
    }

    fn read(&self) -> Option<Duration> {
        let text = std::fs::read_to_string(self.0.as_ref()?).ok()?;
        let ns = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(ns))
    }
}

/// Pins the calling thread to `cpu` with `taskset` (no libc binding needed); false when that
/// is not possible (no `taskset`, one CPU, not Linux).
pub fn pin_current_thread(cpu: usize) -> bool {
    let Some(tid) = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str().map(str::to_owned))
    else {
        return false;
    };
    std::process::Command::new("taskset")
        .args(["-pc", &cpu.to_string(), &tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The server and client threads' clocks.
pub struct Clocks {
    pub server: ThreadClock,
    pub client: ThreadClock,
}

/// Completed requests over some wall time, with the CPU both sides used meanwhile.
#[derive(Default, Clone, Copy, Debug)]
pub struct Tally {
    pub ok: u64,
    pub bad: u64,
    pub wall: Duration,
    pub server_cpu: Option<Duration>,
    pub client_cpu: Option<Duration>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        let sum = |a: Option<Duration>, b: Option<Duration>| Some(a? + b?);
        let first = self.wall.is_zero();
        self.ok += o.ok;
        self.bad += o.bad;
        self.wall += o.wall;
        self.server_cpu = if first {
            o.server_cpu
        } else {
            sum(self.server_cpu, o.server_cpu)
        };
        self.client_cpu = if first {
            o.client_cpu
        } else {
            sum(self.client_cpu, o.client_cpu)
        };
    }

    /// Correct answers per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Server CPU per answer, in µs: the cost on a saturated core, whatever limited the run.
    pub fn server_us(&self) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() * 1e6 / self.ok.max(1) as f64)
    }

    /// Share of the wall time the server thread was on a CPU.
    pub fn server_busy(&self) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() / self.wall.as_secs_f64().max(1e-9))
    }

    /// Share of the wall time the client thread was on a CPU.
    pub fn client_busy(&self) -> Option<f64> {
        Some(self.client_cpu?.as_secs_f64() / self.wall.as_secs_f64().max(1e-9))
    }
}

/// Every lane sends back to back (closed loop) until `dur` has passed.
async fn run_for(w: &mut Workload, dur: Duration, clocks: &Clocks) -> Tally {
    let (server0, client0) = (clocks.server.read(), clocks.client.read());
    let start = Instant::now();
    let until = start + dur;
    let tasks: Vec<_> = std::mem::take(&mut w.lanes)
        .into_iter()
        .map(|mut conn| {
            let (path, body, want) = (w.path, w.body.clone(), w.want.clone());
            tokio::spawn(async move {
                let (mut ok, mut bad) = (0u64, 0u64);
                while Instant::now() < until {
                    let (status, got) = conn.call(path, &body).await;
                    if status == StatusCode::OK && got == want {
                        ok += 1;
                    } else {
                        if bad == 0 {
                            eprintln!("wrong answer from {path}: {status} {got:?}");
                        }
                        bad += 1;
                    }
                }
                (conn, ok, bad)
            })
        })
        .collect();
    let mut t = Tally::default();
    for task in tasks {
        let (conn, ok, bad) = task
            .await
            .expect("a load task failed (see its panic above)");
        w.lanes.push(conn);
        t.ok += ok;
        t.bad += bad;
    }
    t.wall = start.elapsed();
    let since = |a: Option<Duration>, b: Option<Duration>| b?.checked_sub(a?);
    t.server_cpu = since(server0, clocks.server.read());
    t.client_cpu = since(client0, clocks.client.read());
    t
}

/// Two workloads measured in the same run, slice by slice.
pub struct Comparison {
    pub a: Tally,
    pub b: Tally,
    /// Adjacent slices of `a` and `b`.
    pairs: Vec<(Tally, Tally)>,
}

impl Comparison {
    /// The interquartile range over adjacent slice pairs of `f(a, b)`: how much the figure
    /// moves with the machine's drift (its speed changes by tens of percent within a second).
    pub fn spread(&self, f: impl Fn(&Tally, &Tally) -> Option<f64>) -> Option<(f64, f64)> {
        let mut v: Vec<f64> = self.pairs.iter().filter_map(|(a, b)| f(a, b)).collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (!v.is_empty()).then(|| (at(0.25), at(0.75)))
    }

    /// Number of slice pairs.
    pub fn pairs(&self) -> usize {
        self.pairs.len()
    }
}

/// Throughput of `a` and `b` in the same run: a warm-up of each, then `secs` of each in
/// alternating 0.25 s slices (a b b a a b …), so both see the same machine and no connection
/// idles long enough for the server to close it.
pub async fn compare(
    a: &mut Workload,
    b: &mut Workload,
    secs: f64,
    warmup: f64,
    clocks: &Clocks,
) -> Comparison {
    let pairs = ((secs / 0.25).round() as usize).max(2);
    run_for(a, Duration::from_secs_f64(warmup), clocks).await;
    run_for(b, Duration::from_secs_f64(warmup), clocks).await;
    let slice = Duration::from_secs_f64(secs / pairs as f64);
    let mut out = Comparison {
        a: Tally::default(),
        b: Tally::default(),
        pairs: Vec::with_capacity(pairs),
    };
    for i in 0..pairs {
        let (ta, tb) = if i % 2 == 0 {
            let ta = run_for(a, slice, clocks).await;
            (ta, run_for(b, slice, clocks).await)
        } else {
            let tb = run_for(b, slice, clocks).await;
            (run_for(a, slice, clocks).await, tb)
        };
        out.a.add(ta);
        out.b.add(tb);
        out.pairs.push((ta, tb));
    }
    out
}

/// Latencies of an open-loop run, sorted.
pub struct Latencies {
    /// From the scheduled send time to the complete answer.
    pub total: Vec<Duration>,
    /// How late the pacer released each request (client-side timer error).
    pub pacer_late: Vec<Duration>,
    pub bad: u64,
    pub wall: Duration,
}

/// Sleeps until `t`, spinning the last 150 µs so sends keep to the schedule.
fn sleep_until(t: Instant) {
    const SPIN: Duration = Duration::from_micros(150);
    let now = Instant::now();
    if t > now + SPIN {
        std::thread::sleep(t - now - SPIN);
    }
    while Instant::now() < t {
        std::hint::spin_loop();
    }
}

/// Sends at a fixed `rate` for `secs` whatever the answers do (open loop): a pacer thread
/// releases request `i` at `t0 + i / rate`; each request takes a free lane (waiting for one
/// if all are busy) and its latency runs from its scheduled time, so a slow answer is
/// charged to every request it delays (no coordinated omission).
pub async fn open_loop(w: &mut Workload, rate: f64, secs: f64) -> Latencies {
    let n = (rate * secs).round() as u32;
    let period = Duration::from_secs_f64(1.0 / rate);
    let free = Arc::new(Semaphore::new(w.lanes.len()));
    let pool = Arc::new(Mutex::new(std::mem::take(&mut w.lanes)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let t0 = Instant::now() + Duration::from_millis(5);
    let pacer = std::thread::Builder::new()
        .name("nsoff-pacer".into())
        .spawn(move || {
            for i in 0..n {
                let at = t0 + period * i;
                sleep_until(at);
                if tx.send((at, Instant::now())).is_err() {
                    break;
                }
            }
        })
        .expect("a pacer thread");
    let mut tasks = Vec::with_capacity(n as usize);
    while let Some((at, released)) = rx.recv().await {
        let (free, pool) = (free.clone(), pool.clone());
        let (path, body, want) = (w.path, w.body.clone(), w.want.clone());
        tasks.push(tokio::spawn(async move {
            let permit = free
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let mut conn = pool
                .lock()
                .unwrap()
                .pop()
                .expect("a permit means a free lane");
            let (status, got) = conn.call(path, &body).await;
            let done = Instant::now();
            pool.lock().unwrap().push(conn);
            drop(permit);
            let ok = status == StatusCode::OK && got == want;
            (done.duration_since(at), released.duration_since(at), ok)
        }));
    }
    let _ = pacer.join();
    let mut out = Latencies {
        total: Vec::with_capacity(tasks.len()),
        pacer_late: Vec::with_capacity(tasks.len()),
        bad: 0,
        wall: t0.elapsed(),
    };
    for task in tasks {
        let (total, late, ok) = task
            .await
            .expect("a load task failed (see its panic above)");
        out.total.push(total);
        out.pacer_late.push(late);
        out.bad += u64::from(!ok);
    }
    out.total.sort_unstable();
    out.pacer_late.sort_unstable();
    w.lanes = std::mem::take(&mut *pool.lock().unwrap());
    out
}

/// The `p` quantile (0–1] of sorted samples, nearest rank.
pub fn quantile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
