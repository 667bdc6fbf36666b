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
    let (leading_tx, mut leading) = watch::channel(lease.is_none());
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
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = leading.wait_for(|l| *l) => if r.is_err() { break },
        }
        tracing::info!(identity = %config.instance, "reconciler starting");
        let term = cancel.child_token();
        let mut task = tokio::spawn(run(
            client.clone(),
            config.clone(),
            metrics.clone(),
            offloadings.clone(),
            term.clone(),
        ));
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = leading.wait_for(|l| !*l) => tracing::warn!("lost the lease; reconciler stopping"),
            _ = &mut task => {}
        }
        term.cancel();
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            tracing::warn!("reconciles still in flight after {STOP_GRACE:?}; aborting them");
            task.abort();
        }
        if cancel.is_cancelled() {
            break;
        }
    }
    elector_stop.cancel();
    if let Some(elector) = elector {
        let _ = elector.await;
    }
    drop(leading_tx);
}
