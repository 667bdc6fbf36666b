//! The scale benchmark's tools: the server process and its resource use, bulk object
//! creation with bounded concurrency, the API server's request counters, and waiting on
//! NamespaceOffloading phases with a watch.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, watcher};
use kube::Client;
use nsoffload::api::NamespaceOffloading;
use serde_json::json;

/// Namespace of the server (Lease, credential Secrets).
pub const SYSTEM: &str = "nsoffload-system";

/// The release server, started and measured by pid.
pub struct Server {
    pub child: Child,
    pub admin: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl Server {
    /// `serve` against `kubeconfig`, registered at a local URL, logging to `log`.
    pub fn start(kubeconfig: &Path, log: &Path) -> anyhow::Result<Server> {
        let (web, admin) = (free_port(), free_port());
        // Appended: the log of a run holds every start, restarts included.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_nsoffload"))
            .args(["serve", "--cluster-id", "home", "--namespace", SYSTEM])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--webhook-url", &format!("https://127.0.0.1:{web}")])
            .args(["--bind-address", &format!("127.0.0.1:{web}")])
            .args(["--admin-address", &format!("127.0.0.1:{admin}")])
            .args(["--shutdown-delay", "0s"])
            .env(
                "RUST_LOG",
                std::env::var("NSOFFLOAD_SCALE_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .context("starting nsoffload serve")?;
        Ok(Server { child, admin })
    }

    /// (RSS MiB, open fds, CPU seconds) of the process.
    pub fn usage(&self) -> (f64, usize, f64) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
            .sum();
        (rss_kib / 1024.0, fds, ticks / 100.0)
    }

    /// Polls `/readyz` until 200 (bounded); the time it took.
    pub async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            if readyz(self.admin).await == Some(200) {
                return Ok(start.elapsed());
            }
            if let Some(s) = self.child.try_wait()? {
                bail!("the server exited: {s}");
            }
            if start.elapsed() > within {
                bail!("the server was not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM; the time until the process exited (bounded at 60 s).
    pub async fn stop(&mut self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("no exit within 60 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // A stop that fails skipped part of the shutdown (the Lease's release, the webhook
        // configurations' removal): a figure taken after it would be wrong.
        if !status.success() {
            bail!("the server exited with {status} after SIGTERM (see its log)");
        }
        Ok(start.elapsed())
    }
}

async fn readyz(admin: u16) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", admin))
        .await
        .ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Runs `make(i)` for `0..n` with at most `concurrency` in flight.
pub async fn bulk<F, Fut>(n: usize, concurrency: usize, make: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    stream::iter(0..n)
        .map(make)
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Applies the CRD and the server's namespace.
pub async fn install(client: &Client) -> anyhow::Result<()> {
    let crd: CustomResourceDefinition = serde_yaml::from_str(&nsoffload::api::crd_yaml())?;
    let name = crd.metadata.name.clone().unwrap_or_default();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        &name,
        &PatchParams::apply("bench").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    for _ in 0..100 {
        let c = crds.get(&name).await?;
        let established = c.status.and_then(|s| s.conditions).unwrap_or_default();
        if established
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    create_namespace(client, SYSTEM).await
}

/// Creates namespace `name` (an existing one is fine).
pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates `ns` and its NamespaceOffloading named `name` (default spec).
pub async fn offloaded(client: &Client, ns: String, name: &str) -> anyhow::Result<()> {
    let ns = ns.as_str();
    create_namespace(client, ns).await?;
    let o: NamespaceOffloading = serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": name, "namespace": ns}, "spec": {}}))?;
    Api::<NamespaceOffloading>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &o)
        .await?;
    Ok(())
}

/// Waits until `done(total, matching)` holds for the offloadings named `offloading`, where
/// `matching` counts those for which `each` holds; the time it took (at most `within`).
///
/// It watches rather than polls: one paginated list, then events. Polling the 10,000 case
/// with full lists made the API server serve 20 quorum reads every 2 s while the server
/// under test wrote, a load the floor's plain client never competes with.
pub async fn wait_offloadings(
    client: &Client,
    within: Duration,
    what: &str,
    each: impl Fn(&NamespaceOffloading) -> bool,
    done: impl Fn(usize, usize) -> bool,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let api: Api<NamespaceOffloading> = Api::all(client.clone());
    let config = watcher::Config::default()
        .fields("metadata.name=offloading")
        .page_size(500);
    let events = watcher(api, config);
    tokio::pin!(events);
    // Whether `each` holds, by namespace; during a relist, the next state being built.
    let mut state = Tally::default();
    let mut relist: Option<Tally> = None;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = match tokio::time::timeout_at(deadline, events.try_next()).await {
            Err(_) => bail!("{what}: not reached within {within:?}"),
            Ok(r) => r.with_context(|| format!("{what}: watching"))?,
        };
        let Some(event) = event else {
            bail!("{what}: the watch ended")
        };
        match event {
            watcher::Event::Init => relist = Some(Tally::default()),
            watcher::Event::InitApply(o) => {
                if let Some(r) = relist.as_mut() {
                    r.set(&o, Some(each(&o)));
                }
            }
            watcher::Event::InitDone => state = relist.take().unwrap_or_default(),
            watcher::Event::Apply(o) => state.set(&o, Some(each(&o))),
            watcher::Event::Delete(o) => state.set(&o, None),
        }
        if relist.is_none() && done(state.by_ns.len(), state.matching) {
            return Ok(start.elapsed());
        }
    }
}

/// Whether a predicate holds, by namespace, and how many times it does.
#[derive(Default)]
struct Tally {
    by_ns: HashMap<String, bool>,
    matching: usize,
}

impl Tally {
    fn set(&mut self, o: &NamespaceOffloading, holds: Option<bool>) {
        let ns = o.metadata.namespace.clone().unwrap_or_default();
        let was = match holds {
            Some(h) => self.by_ns.insert(ns, h),
            None => self.by_ns.remove(&ns),
        };
        self.matching =
            self.matching + usize::from(holds == Some(true)) - usize::from(was == Some(true));
    }
}

/// `apiserver_request_total` summed by verb (all clients), from the API server's metrics;
/// lists and writes (every verb but GET and WATCH) also by `VERB resource`.
pub async fn requests_by_verb(client: &Client) -> anyhow::Result<BTreeMap<String, f64>> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(req).await?;
    let label = |line: &str, name: &str| {
        line.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?")
            .to_owned()
    };
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let verb = label(line, "verb");
        let n: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if !matches!(verb.as_str(), "GET" | "WATCH") {
            *out.entry(format!("{verb} {}", label(line, "resource")))
                .or_default() += n;
        }
        *out.entry(verb).or_default() += n;
    }
    Ok(out)
}

/// `after - before`, by verb, as a one-line summary.
pub fn verbs_delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> String {
    after
        .iter()
        .map(|(v, n)| (v, n - before.get(v).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .map(|(v, d)| format!("{v} {d:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}
