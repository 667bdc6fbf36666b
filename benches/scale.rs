//! Scale benchmark of the reconciler (`make bench-scale`, on the local control planes; not
//! part of `make test`).
//!
//! Why: the admission path is measured by `make bench`; what breaks at scale is the
//! reconciler (memory, connections, load on the API server, its own Lease). Two cases, each on
//! fresh clusters started by `tests/cluster/bench-scale.sh`:
//!
//! - `NSOFFLOAD_SCALE_CASE=many` (default N = 10,000, no remote cluster): N namespaces with a
//!   NamespaceOffloading exist before the release server starts. Printed: time to ready and
//!   RSS then, time until every phase is written, RSS after `NSOFFLOAD_SCALE_HOLD` seconds
//!   (default 300), peak open file descriptors, CPU seconds, Lease transitions, API requests
//!   by verb (all clients, the benchmark's own watch included; lists also by resource),
//!   SIGTERM → exit; then three restarts with everything converged: time to ready and the
//!   writes they made; then the floor: a plain client making the same 3N writes, 16 at a
//!   time (finalizer, scheduling label, status), on N more objects.
//! - `NSOFFLOAD_SCALE_CASE=remotes` (default N = 1,000, three remote clusters): the time until
//!   all N are Ready (3N twins), beside a floor measured in the same run (a plain client doing
//!   the same writes, 16 at a time: a finalizer and a status patch per object, a namespace per
//!   object and cluster, then the scheduling label and the Events; the ratio is printed
//!   against both); then unoffloading all N beside the time the remote namespace controllers
//!   need to delete as many namespaces.
//!
//! Environment: `NSOFFLOAD_SCALE_HOME` (kubeconfig), `NSOFFLOAD_SCALE_REMOTES`
//! (`id=kubeconfig,...`, case `remotes`), `NSOFFLOAD_SCALE_N`, `NSOFFLOAD_SCALE_HOLD`,
//! `NSOFFLOAD_SCALE_LOG` (server log file), `NSOFFLOAD_SCALE_RUST_LOG` (the server's log
//! filter, default `warn`). Figures are a report; the run fails only when a step does not
//! complete.

#[path = "scale/floor.rs"]
mod floor;
#[path = "scale/kit.rs"]
mod kit;
#[path = "scale/remotes.rs"]
mod remotes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use kit::{bulk, Server};
use kube::api::Api;
use kube::Client;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn client(path: &str) -> anyhow::Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Case `many`: N NamespaceOffloadings, no remote cluster.
async fn many(home: &Client, kubeconfig: &str, n: usize, log: &Path) -> anyhow::Result<()> {
    kit::install(home).await?;
    let t = Instant::now();
    bulk(n, 32, |i| {
        kit::offloaded(home, format!("scale-{i}"), "offloading")
    })
    .await?;
    println!(
        "many: {n} namespaces and NamespaceOffloadings created in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let before = kit::requests_by_verb(home).await?;
    let mut server = Server::start(kubeconfig.as_ref(), log)?;
    let ready = server.wait_ready(Duration::from_secs(300)).await?;
    let (rss_ready, _, _) = server.usage();
    let mut peak_fds = 0;
    let phases = {
        let all_written = kit::wait_offloadings(
            home,
            Duration::from_secs(900),
            "every phase written",
            |o| o.status.as_ref().and_then(|s| s.offloading_phase).is_some(),
            |total, written| total >= n && written == total,
        );
        tokio::pin!(all_written);
        loop {
            tokio::select! {
                r = &mut all_written => break r?,
                _ = tokio::time::sleep(Duration::from_secs(1)) => peak_fds = peak_fds.max(server.usage().1),
            }
        }
    };
    println!("many: ready after {:.1} s with RSS {rss_ready:.1} MiB; every phase written {:.1} s after ready", ready.as_secs_f64(), phases.as_secs_f64());
    let hold = env("NSOFFLOAD_SCALE_HOLD")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300u64);
    let end = Instant::now() + Duration::from_secs(hold);
    let mut rss = Vec::new();
    while Instant::now() < end {
        let (r, f, _) = server.usage();
        rss.push(r);
        peak_fds = peak_fds.max(f);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (rss_end, fds_end, cpu) = server.usage();
    let min = rss.iter().cloned().fold(f64::MAX, f64::min);
    let max = rss.iter().cloned().fold(0.0, f64::max);
    let first: Vec<String> = rss.iter().take(10).map(|r| format!("{r:.1}")).collect();
    // "Flat": how far the hold's samples stray from their mean, either way.
    let mean = rss.iter().sum::<f64>() / rss.len().max(1) as f64;
    let (below, above) = (100.0 * (min / mean - 1.0), 100.0 * (max / mean - 1.0));
    println!("many: after {hold} s: RSS {rss_end:.1} MiB (min {min:.1}, max {max:.1}, mean {mean:.1}: {below:+.1} % / {above:+.1} %; first seconds {}); fds {fds_end} (peak {peak_fds}); CPU {cpu:.1} s", first.join(" "));
    let lease = Api::<Lease>::namespaced(home.clone(), kit::SYSTEM)
        .get("nsoffload-reconciler")
        .await?;
    let transitions = lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0);
    println!("many: Lease transitions {transitions}");
    let after = kit::requests_by_verb(home).await?;
    println!(
        "many: API requests (all clients) {}",
        kit::verbs_delta(&before, &after)
    );
    let exit = server.stop().await?;
    println!("many: SIGTERM -> exit {:.2} s", exit.as_secs_f64());
    drop(server);

    // Three restarts: one ready time is within the noise of this machine.
    let before = kit::requests_by_verb(home).await?;
    let mut restarts = Vec::new();
    for hold in [30, 5, 5] {
        let mut again = Server::start(kubeconfig.as_ref(), log)?;
        let ready = again.wait_ready(Duration::from_secs(300)).await?;
        let (rss, _, _) = again.usage();
        tokio::time::sleep(Duration::from_secs(hold)).await;
        again.stop().await?;
        restarts.push(format!("{:.2} s (RSS {rss:.1} MiB)", ready.as_secs_f64()));
    }
    let after = kit::requests_by_verb(home).await?;
    let writes = |m: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        m.iter()
            .filter(|(k, _)| k.contains(' ') && !k.starts_with("LIST "))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    println!(
        "many: restarts with {n} converged: ready after {}; writes while they ran (all clients): {}",
        restarts.join(", "),
        kit::verbs_delta(&writes(&before), &writes(&after))
    );

    let floor = floor::many(home, n).await?;
    println!(
        "many: floor: a plain client made the same {} writes (finalizer, scheduling label, status) in {:.1} s; every phase written / floor {:.2}",
        3 * n,
        floor.as_secs_f64(),
        phases.as_secs_f64() / floor.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(home_path) = env("NSOFFLOAD_SCALE_HOME") else {
        eprintln!(
            "scale: set NSOFFLOAD_SCALE_HOME (make bench-scale starts the clusters and sets it)"
        );
        std::process::exit(2);
    };
    let home = client(&home_path).await.context("home cluster")?;
    let log =
        PathBuf::from(env("NSOFFLOAD_SCALE_LOG").unwrap_or_else(|| "scale-server.log".into()));
    // Each run starts a fresh log, which then holds every start of the server.
    std::fs::write(&log, "").with_context(|| format!("{}", log.display()))?;
    let case = env("NSOFFLOAD_SCALE_CASE").unwrap_or_else(|| "many".into());
    let n = |default: usize| {
        env("NSOFFLOAD_SCALE_N")
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    match case.as_str() {
        "many" => many(&home, &home_path, n(10_000), &log).await,
        "remotes" => {
            let raw = env("NSOFFLOAD_SCALE_REMOTES").context("NSOFFLOAD_SCALE_REMOTES")?;
            let mut list = Vec::new();
            for pair in raw.split(',') {
                let (id, path) = pair.split_once('=').context("id=kubeconfig")?;
                list.push((id.to_owned(), path.to_owned(), client(path).await?));
            }
            remotes::run(&home, &home_path, &list, n(1_000), &log).await
        }
        other => anyhow::bail!("unknown NSOFFLOAD_SCALE_CASE {other:?} (many or remotes)"),
    }
}
