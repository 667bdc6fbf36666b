//! Wiring: watches, triggers, backoff, events and metrics around [`flow::reconcile`].
//!
//! NamespaceOffloadings come from the process-wide cache ([`crate::cache::offloadings`]),
//! which admission reads too: typed and trimmed, a malformed object reported alone. Its
//! subscription names the objects that changed; each pass reads its object from the store.
//! Events are one per notice ([`super::events`]). A virtual node's change triggers every
//! NamespaceOffloading whose selection it may change; a credential Secret's, those that name
//! its cluster; a Namespace's, the NamespaceOffloading inside it (so an edited-away
//! scheduling label comes back). The namespace, node and Secret caches are reflector stores
//! written before their triggers fire, so a pass always sees the change that woke it.
//!
//! Passes run on [`super::runner`]: converged objects hold no timer, a sweep resyncs each
//! one once per interval, spread over it (which also recreates twins deleted behind our
//! back while a twin watch was down); objects still converging come back quickly, failing
//! ones with exponential backoff ([`super::pacing`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{future, StreamExt};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource, ResourceExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::events::{EventQueue, Events};
use super::expect::Expectations;
use super::flow::{self, Context, Report};
use super::home::HomeError;
use super::pacing::Pacing;
use super::plan;
use super::pods::PodAudit;
use super::quick::QuickCaches;
use super::ratelimit::ApiLimits;
use super::remotes::SecretClients;
use super::seen::SeenTwins;
use super::select::group_virtual_nodes;
use super::tally::{track_phase, track_violating};
use super::twin_watch::twin_deletions;
use crate::api::consts::{
    NSOFF_NAME, REMOTE_CLUSTER_ID_LABEL, VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE,
};
use crate::api::{NamespaceOffloading, OffloadingPhase};
use crate::cache::namespaces::Namespaces;
use crate::cache::offloadings::{key_of, OffloadingCache};
use crate::cache::{self, NamespaceMeta, Synced};
use crate::metrics::ReconcileMetrics;

/// Settings of the reconciler.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// The home cluster id.
    pub home_id: String,
    /// nsoffload's own namespace (credential Secrets).
    pub namespace: String,
    /// How often converged objects are reconciled again.
    pub resync: Duration,
    /// Deadline of each remote call.
    pub remote_timeout: Duration,
    /// Reporting instance of Events (this replica's identity).
    pub instance: String,
    /// At most this many NamespaceOffloadings are reconciled at once.
    pub concurrency: u16,
    /// The webhook's RuntimeClass name, for judging pods (SPEC §12).
    pub runtime_class: String,
    /// The rate limit of each remote cluster's client.
    pub remote_limits: ApiLimits,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    /// A write to the home cluster failed.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The object does not read as a NamespaceOffloading.
    #[error("the NamespaceOffloading cannot be read: {0}")]
    Unreadable(String),
    /// The caches did not fill in time.
    #[error("the caches of nodes, namespaces and Secrets are not synced yet")]
    NotSynced,
}

impl ReconcileError {
    fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Home(e) => e.reason,
            ReconcileError::Unreadable(_) => "unreadable",
            ReconcileError::NotSynced => "not_synced",
        }
    }
}

struct Shared {
    flow: Context,
    /// Readiness of the caches of nodes, namespaces and credential Secrets.
    synced: [Synced; 3],
    events: EventQueue,
    metrics: ReconcileMetrics,
    /// Requeue delays (backoff, the wait for twin deletions).
    pacing: Pacing,
    /// Last phase per object, for the phase gauge.
    phases: Mutex<HashMap<String, OffloadingPhase>>,
    /// Clusters with a reachability series, so a gone cluster's series can be removed.
    reported: Mutex<BTreeSet<String>>,
    /// Our writes the cache has not shown yet.
    expectations: Arc<Expectations>,
}

impl Shared {
    fn track_phase(&self, key: &str, phase: Option<OffloadingPhase>) {
        track_phase(&self.metrics, &self.phases, key, phase);
    }

    /// Sets each visited cluster's reachability series, and removes the series of clusters
    /// that are gone (no virtual node, no credentials: SPEC §7.10).
    fn track_reachable(&self, reachable: &BTreeMap<String, bool>) {
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        for (cluster, up) in reachable {
            self.metrics.set_reachable(cluster, *up);
            reported.insert(cluster.clone());
        }
        let nodes = self.flow.nodes.state();
        let mut known: BTreeSet<String> = group_virtual_nodes(nodes.iter().map(|n| n.as_ref()))
            .into_keys()
            .collect();
        known.extend(self.flow.remotes.with_credentials());
        reported.retain(|cluster| {
            let keep = known.contains(cluster);
            if !keep {
                self.metrics.forget_cluster(cluster);
            }
            keep
        });
    }

    fn track_violating(&self, namespace: &str, report: &Report) {
        track_violating(&self.metrics, self.flow.pods.as_ref(), namespace, report);
    }

    fn publish(&self, nsoff: &NamespaceOffloading, report: &Report) {
        let reference = nsoff.object_ref(&());
        for notice in &report.notices {
            self.events.send(&reference, notice);
        }
    }
}

/// `namespace/name`, the key of per-object backoff and phase tracking.
fn key(nsoff: &NamespaceOffloading) -> String {
    super::object_key(&nsoff.namespace().unwrap_or_default(), &nsoff.name_any())
}

/// One pass over one object; `Ok(None)`: nothing more until a trigger or the sweep.
async fn reconcile(
    nsoff: Arc<NamespaceOffloading>,
    shared: Arc<Shared>,
) -> Result<Option<Duration>, ReconcileError> {
    let key = key(&nsoff);
    let [nodes, namespaces, secrets] = &shared.synced;
    if !cache::all_synced(&[nodes, namespaces, secrets], SYNC_WAIT).await {
        return Err(ReconcileError::NotSynced);
    }
    if nsoff.name_any() != NSOFF_NAME {
        return Ok(None);
    }
    if shared.expectations.stale(&key, Instant::now()) {
        // Our last write has not reached the cache: reconciling now would redo it.
        return Ok(Some(CACHE_CATCH_UP));
    }
    if let Some(why) = nsoff.annotations().get(cache::UNREADABLE_ANNOTATION) {
        return Err(ReconcileError::Unreadable(why.clone()));
    }
    let report = flow::reconcile(&nsoff, &shared.flow).await?;
    match &report.written {
        Some(version) => shared
            .expectations
            .expect(&key, version.clone(), Instant::now()),
        None => shared.expectations.forget(&key),
    }
    shared.metrics.reconciled("ok");
    shared.track_reachable(&report.reachable);
    shared.track_phase(&key, report.phase);
    shared.track_violating(&nsoff.namespace().unwrap_or_default(), &report);
    shared.publish(&nsoff, &report);
    tracing::debug!(nsoff = %key, phase = ?report.phase, written = report.status_written, "reconciled");
    let next = plan::next_look(report.phase, report.settling);
    Ok(shared.pacing.after(&key, next))
}

/// Counts a failed pass and says when to retry it (exponential backoff per object).
fn error_policy(nsoff: &NamespaceOffloading, error: &ReconcileError, shared: &Shared) -> Duration {
    let key = key(nsoff);
    shared.metrics.reconciled("error");
    shared.metrics.failed(error.reason());
    let delay = shared.pacing.failed(&key);
    tracing::warn!(nsoff = %key, error = %error, retry_in = ?delay, "reconcile failed");
    delay
}

/// How soon a reconcile put off for a stale cache runs again.
const CACHE_CATCH_UP: Duration = Duration::from_millis(250);

/// Notices waiting to be published as Events, at most.
const EVENT_QUEUE: usize = 4096;
/// Events written at once.
const EVENTS_IN_FLIGHT: usize = 4;

/// How long a reconcile waits for the caches before it fails (and is retried with backoff).
const SYNC_WAIT: Duration = Duration::from_secs(30);

/// The NamespaceOffloadings whose status has an entry for `cluster`.
fn naming_cluster(
    nsoffs: &reflector::Store<NamespaceOffloading>,
    cluster: &str,
) -> Vec<ObjectRef<NamespaceOffloading>> {
    nsoffs
        .state()
        .iter()
        .filter(|o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.remote_namespaces_conditions.contains_key(cluster))
        })
        .map(|o| key_of(o))
        .collect()
}

/// Runs the NamespaceOffloading and quick-offloading controllers until `cancel`, reading
/// NamespaceOffloadings from `offloadings`.
pub async fn run(
    client: Client,
    config: ReconcilerConfig,
    metrics: ReconcileMetrics,
    offloadings: Arc<OffloadingCache>,
    cancel: CancellationToken,
) {
    // Admission readiness waits for the NamespaceOffloading list, and nothing can be
    // reconciled before it: the reconciler's own lists (namespaces, nodes, Secrets) start
    // after it, so that after a restart they do not compete with it on the API server.
    let mut listed = offloadings.synced().receiver();
    tokio::select! {
        _ = cancel.cancelled() => return,
        // An error means the cache's feeder is gone; the lists below then report it.
        _ = listed.wait_for(|s| *s) => {}
    }
    let virtual_nodes =
        watcher::Config::default().labels(&format!("{VIRTUAL_NODE_LABEL}={VIRTUAL_NODE_VALUE}"));
    let (nodes, nodes_synced, node_events) = cache::reflect(
        watcher::watcher(Api::<Node>::all(client.clone()), virtual_nodes).default_backoff(),
        cache::trim_node,
    );
    let credentials = watcher::Config::default().labels(REMOTE_CLUSTER_ID_LABEL);
    let (secrets, secrets_synced, secret_events) = cache::reflect(
        watcher::watcher(
            Api::<Secret>::namespaced(client.clone(), &config.namespace),
            credentials,
        )
        .default_backoff(),
        cache::trim_secret,
    );
    // Namespaces are watched as metadata and cached once, as facts, for this controller
    // and quick offloading alike.
    let namespaces = Namespaces::new();
    let namespaces_synced = namespaces.synced();
    let namespace_feed = namespaces.clone().feed(
        watcher::watcher(
            Api::<NamespaceMeta>::all(client.clone()),
            Default::default(),
        )
        .default_backoff()
        .take_until(cancel.clone().cancelled_owned()),
    );
    let nsoff_reader = offloadings.store();
    let quick_caches = QuickCaches {
        namespaces: namespaces.clone(),
        nsoffs: nsoff_reader.clone(),
        nsoff_changes: Box::pin(offloadings.subscribe(None)),
        synced: [namespaces_synced.clone(), offloadings.synced()],
    };
    let expectations = Arc::new(Expectations::default());
    let (events, publisher) = EventQueue::start(
        Events::new(
            client.clone(),
            crate::registration::MANAGER,
            &config.instance,
        ),
        EVENT_QUEUE,
        EVENTS_IN_FLIGHT,
    );
    let secrets_for_watches = secrets.clone();
    let seen_twins = Arc::new(SeenTwins::new(config.resync / 2));
    let remotes = SecretClients::new(
        secrets.clone(),
        config.namespace.clone(),
        config.remote_timeout,
        config.remote_limits,
    );
    let shared = Arc::new(Shared {
        flow: Context {
            home: client.clone(),
            home_id: config.home_id.clone(),
            nodes,
            namespaces: namespaces.clone(),
            remotes: Arc::new(remotes),
            remote_timeout: config.remote_timeout,
            clock: flow::system_clock,
            pods: Some(PodAudit::new(&config.runtime_class, config.resync)),
            seen: seen_twins.clone(),
        },
        synced: [nodes_synced, namespaces_synced, secrets_synced],
        events,
        metrics,
        pacing: Pacing::new(config.resync),
        phases: Mutex::new(HashMap::new()),
        reported: Mutex::default(),
        expectations: expectations.clone(),
    });
    // Every phase has a series from the start; reconciles move objects between them.
    for p in OffloadingPhase::ALL {
        shared.metrics.phase(p.as_str()).set(0);
    }
    // The cache calls the observer with each version it stores, in order, before this
    // subscription names the object.
    let seen = expectations.clone();
    let observe: cache::offloadings::Observer = Arc::new(move |o: &NamespaceOffloading| {
        seen.observe(&key(o), o.metadata.resource_version.as_deref());
    });
    let changed = offloadings.subscribe(Some(observe)).boxed();
    // A credential Secret's change concerns the NamespaceOffloadings whose status names its
    // cluster (a selected cluster always has an entry there); a node's, every one whose
    // selection it may change, and only when its labels or existence change.
    let nsoff_store = nsoff_reader.clone();
    let forget = seen_twins.clone();
    let by_cluster = cache::credential_changes(secret_events).flat_map(move |cluster| {
        // New credentials: what was found with the old ones is checked again.
        forget.forget_cluster(&cluster);
        futures_util::stream::iter(naming_cluster(&nsoff_store, &cluster))
    });
    let every_store = nsoff_reader.clone();
    let by_nodes = cache::selection_changes(node_events).flat_map(move |()| {
        let all: Vec<_> = every_store.state().iter().map(|o| key_of(o)).collect();
        futures_util::stream::iter(all)
    });
    // A namespace's change concerns the NamespaceOffloading inside it (an edited-away
    // scheduling label comes back).
    let by_namespace = namespaces
        .subscribe()
        .map(|ns| ObjectRef::new(NSOFF_NAME).within(&ns));
    let triggers = futures_util::stream::select_all([
        changed,
        by_namespace.boxed(),
        by_nodes.boxed(),
        by_cluster.boxed(),
        twin_deletions(
            secrets_for_watches,
            config.home_id.clone(),
            config.remote_limits,
            seen_twins,
            cancel.clone(),
        )
        .boxed(),
        super::runner::sweep(nsoff_reader.clone(), config.resync).boxed(),
    ]);
    let quick = super::quick::controller(
        client,
        quick_caches,
        config.concurrency,
        config.resync,
        cancel.clone(),
    );
    let reader = nsoff_reader;
    let pass = move |r: ObjectRef<NamespaceOffloading>| {
        let (shared, reader) = (shared.clone(), reader.clone());
        async move {
            // Gone from the cache: deleted, nothing left to do (nor to remember).
            let Some(nsoff) = reader.get(&r) else {
                let key = super::object_key(r.namespace.as_deref().unwrap_or_default(), &r.name);
                shared.pacing.forget(&key);
                return None;
            };
            match reconcile(nsoff.clone(), shared.clone()).await {
                Ok(again) => again,
                Err(e) => Some(error_policy(&nsoff, &e, &shared)),
            }
        }
    };
    let main = super::runner::drive(triggers, usize::from(config.concurrency), pass, cancel);
    future::join3(main, quick, namespace_feed).await;
    // The controllers held the last queue handles: the publisher ends after the notices in
    // flight (bounded by the stop grace of `supervise`).
    let _ = publisher.await;
    tracing::info!("reconciler stopped");
}
