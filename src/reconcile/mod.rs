//! The twin-namespace reconciler (SPEC §6 and §7).
//!
//! It runs inside `serve` in cluster mode, next to the webhooks, but only on the replica that
//! holds the Lease ([`leader`]). A reconcile is observe → plan → apply: [`plan`] decides
//! (what to write first, what to do on each cluster, the status, the release, the Events,
//! when to look again) from the object and the caches, with [`select`] and [`status`]; all
//! three are pure and checked as tables. [`flow`] carries a plan out with [`twin`] and
//! [`home`], against clients that tests script; [`remotes`] turns credential Secrets into
//! clients; [`controller`] wires the caches ([`crate::cache`]), triggers, backoff, Events and
//! metrics; [`quick`] implements quick offloading from the `liqo.io/enabled` label.

pub(crate) mod controller;
pub mod events;
pub(crate) mod expect;
pub mod flow;
pub mod home;
pub mod leader;
mod pacing;
pub mod plan;
pub mod pods;
pub(crate) mod quick;
pub mod ratelimit;
pub mod remotes;
mod runner;
pub mod seen;
pub mod select;
pub mod status;
#[cfg(test)]
mod status_tests;
mod tally;
pub(crate) mod twin;
pub(crate) mod twin_watch;
mod workqueue;

pub use controller::{run, ReconcilerConfig};

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::offloadings::OffloadingCache;
use crate::metrics::ReconcileMetrics;

/// `namespace/name`: how the reconciler keys an object in its own bookkeeping (backoff,
/// phases, expected writes, twins found ready), whether it starts from the object or from
/// a reference to it.
pub fn object_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Where the Lease of leader election lives, and the client that holds it.
#[derive(Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// Timing of the election.
    pub timing: leader::Timing,
    /// The client renewing the Lease: one of its own, so that renewals never wait behind
    /// thousands of reconcile requests on a shared connection pool.
    pub client: Client,
}

/// How long a stopping reconciler may take to finish the reconciles in flight before they are
/// dropped. Reconciling is idempotent and safe to stop at any point (a write already sent
/// stands; the next leader reconciles again), and shutdown must release the Lease within 2 s
/// (SPEC §8), so this is short.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Runs the reconciler until `cancel`: only while this replica holds the Lease when `lease`
/// is set, always otherwise. Losing the Lease stops the controllers at once; winning it again
/// starts them afresh. The Lease is released only after the controllers have stopped, so two
/// replicas never reconcile at the same time. NamespaceOffloadings are read from
/// `offloadings`, the cache admission reads too, which runs whether or not this replica leads.
pub async fn supervise(
    client: Client,
    config: ReconcilerConfig,
    lease: Option<LeaseConfig>,
    metrics: ReconcileMetrics,
    offloadings: Arc<OffloadingCache>,
    cancel: CancellationToken,
) {
    let (leading_tx, leading) = watch::channel(lease.is_none());
    let elector_stop = CancellationToken::new();
    let elector = lease.map(|l| {
        let elector = leader::Elector::new(
            l.client.clone(),
            &l.namespace,
            &l.name,
            config.instance.clone(),
            l.timing,
        );
        tokio::spawn(elector.run(leading_tx.clone(), elector_stop.clone()))
    });
    lead(leading, &cancel, |term| {
        tracing::info!(identity = %config.instance, "reconciler starting");
        tokio::spawn(run(
            client.clone(),
            config.clone(),
            metrics.clone(),
            offloadings.clone(),
            term,
        ))
    })
    .await;
    elector_stop.cancel();
    if let Some(elector) = elector {
        let _ = elector.await;
    }
    drop(leading_tx);
}

/// Starts the controllers with `start` (given their own stop token) whenever `leading` turns
/// true, and stops them when it turns false or at `cancel`, until `cancel`. Controllers that
/// end by themselves are started again while this replica still leads.
async fn lead(
    mut leading: watch::Receiver<bool>,
    cancel: &CancellationToken,
    mut start: impl FnMut(CancellationToken) -> JoinHandle<()>,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = leading.wait_for(|l| *l) => if r.is_err() { break },
        }
        let term = cancel.child_token();
        let mut task = start(term.clone());
        // A finished task must not be polled again: its handle has nothing left to give.
        let finished = tokio::select! {
            _ = cancel.cancelled() => false,
            _ = leading.wait_for(|l| !*l) => {
                tracing::warn!("lost the lease; reconciler stopping");
                false
            }
            _ = &mut task => true,
        };
        term.cancel();
        if !finished && tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            tracing::warn!("reconciles still in flight after {STOP_GRACE:?}; aborting them");
            task.abort();
        }
        if cancel.is_cancelled() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Controllers that stop at the same moment as the server (both ready when the
    /// supervisor looks) are not polled again: that panicked, and the panic skipped the
    /// Lease's release, so the next replica waited for it to expire.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn controllers_stopping_with_the_server_end_the_loop() {
        for _ in 0..64 {
            let (_tx, leading) = watch::channel(true);
            let cancel = CancellationToken::new();
            let starts = std::sync::atomic::AtomicUsize::new(0);
            lead(leading, &cancel, |_term| {
                starts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Both finished and cancelled before the supervisor looks (the other worker
                // runs the task).
                let task = tokio::spawn(async {});
                while !task.is_finished() {
                    std::thread::yield_now();
                }
                cancel.cancel();
                task
            })
            .await;
            assert_eq!(starts.into_inner(), 1);
        }
    }

    /// Losing the Lease stops the controllers; winning it again starts them afresh.
    #[tokio::test(start_paused = true)]
    async fn controllers_follow_the_lease() {
        let (tx, leading) = watch::channel(false);
        let cancel = CancellationToken::new();
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let looping = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                lead(leading, &cancel, |term| {
                    let started = started_tx.clone();
                    tokio::spawn(async move {
                        let _ = started.send(());
                        term.cancelled().await;
                    })
                })
                .await
            })
        };
        tx.send_replace(true);
        started.recv().await.expect("started on winning the lease");
        tx.send_replace(false);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            started.try_recv().is_err(),
            "not started again while following"
        );
        tx.send_replace(true);
        started
            .recv()
            .await
            .expect("started again on winning it again");
        cancel.cancel();
        looping.await.expect("the loop ends at cancel");
    }
}
