//! The watch caches: one watch per kind, trimmed objects, a readiness signal every waiter
//! sees, and change streams that fire only on what a decision reads.
//!
//! NamespaceOffloadings are cached once for the whole process ([`offloadings`]): admission,
//! the reconciler and quick offloading read the same store. Namespaces ([`namespaces`], kept
//! as the few facts decisions read), virtual Nodes and credential Secrets are read only by
//! the reconciler and are watched while it runs.
//!
//! Why not kube-runtime's `Store::wait_until_ready`: its delayed-init primitive remembers a
//! single waker, so when a store becomes ready while many reconciles wait on it, only the last
//! one wakes and the others sleep until their timeout (and a waiter without a timeout hangs
//! for good). Here a store's readiness is a `watch` channel set at the first complete list:
//! every waiter observes it, and every wait is bounded.
//!
//! Why trim: only a virtual Node's name and labels matter to cluster selection, yet a Node
//! carries its whole status (images, conditions, addresses) and every object its managed
//! fields; kept for thousands of objects, that is most of the memory.
//!
//! Why filter changes: a virtual kubelet updates its Node's status every few seconds. Each
//! update reconciling every NamespaceOffloading made one heartbeat cost thousands of
//! reconciles; [`selection_changes`] fires only when a node's labels or existence change, and
//! [`credential_changes`] names the cluster whose Secret changed.

pub(crate) mod fanout;
pub mod namespaces;
pub mod offloadings;
pub mod read;

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use tokio::sync::watch;

use crate::api::consts::REMOTE_CLUSTER_ID_LABEL;
use crate::api::NamespaceOffloading;

/// Whether a store has seen its first complete list; cloned by every waiter.
#[derive(Debug, Clone)]
pub struct Synced(watch::Receiver<bool>);

impl Synced {
    /// A signal and its setter, not synced yet.
    pub fn new() -> (watch::Sender<bool>, Synced) {
        let (tx, rx) = watch::channel(false);
        (tx, Synced(rx))
    }

    /// Already synced (tests, or stores filled by hand).
    pub fn done() -> Synced {
        Synced(watch::channel(true).1)
    }

    /// Whether the first list is complete.
    pub fn is_synced(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver of the signal (true once synced).
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }

    /// Waits at most `within` for the first complete list; whether it came.
    pub async fn wait(&self, within: Duration) -> bool {
        let mut rx = self.0.clone();
        let outcome = tokio::time::timeout(within, rx.wait_for(|s| *s)).await;
        matches!(outcome, Ok(Ok(_)))
    }
}

/// Waits (at most `within` in all) until every one of `stores` is synced.
pub async fn all_synced(stores: &[&Synced], within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    for s in stores {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !s.wait(left).await {
            return false;
        }
    }
    true
}

/// A watch's events, as kube-runtime's watchers give them.
pub trait EventStream<K>: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static {}
impl<K, S> EventStream<K> for S where
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
{
}

/// Marks a cache synced (its first list complete); the first time, logs `what` was listed
/// and how many objects that list held. Later lists change nothing and wake no one.
pub(crate) fn mark_synced(tx: &watch::Sender<bool>, what: &str, count: impl FnOnce() -> usize) {
    if tx.send_if_modified(|s| !std::mem::replace(s, true)) {
        tracing::info!(count = count(), "{what} listed; cache synced");
    }
}

/// Turns `synced` true at the stream's first complete list.
fn signal_synced<K>(
    events: impl EventStream<K>,
    synced: watch::Sender<bool>,
) -> impl EventStream<K> {
    events.inspect_ok(move |event| {
        if matches!(event, Event::InitDone) {
            synced.send_replace(true);
        }
    })
}

/// A reflector over `events` (a watcher with its backoff) whose objects are trimmed by
/// `trim` before they are stored; returns the store, its readiness and the events (trimmed
/// too), which must be polled for the store to fill.
pub fn reflect<K>(
    events: impl EventStream<K>,
    trim: fn(&mut K),
) -> (Store<K>, Synced, impl EventStream<K>)
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let (tx, synced) = Synced::new();
    let events = events.map_ok(move |event| event.modify(trim));
    let stream = signal_synced(reflector::reflector(writer, events), tx);
    (store, synced, stream)
}

/// A Namespace as it is watched: metadata only, so the API server sends nothing else
/// ([`namespaces`] keeps only the facts decisions read of it).
pub type NamespaceMeta = PartialObjectMeta<Namespace>;

/// Drops what no reader of a cached object uses: managed fields.
pub fn trim_meta<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// A virtual Node as cluster selection reads it: name and labels only.
pub fn trim_node(node: &mut Node) {
    node.status = None;
    node.spec = None;
    let meta = node.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
}

/// A credential Secret without managed fields (its data is the kubeconfig, which is read).
pub fn trim_secret(secret: &mut Secret) {
    secret.meta_mut().managed_fields = None;
}

pub use read::UNREADABLE_ANNOTATION;

/// A NamespaceOffloading read from its untyped form as the cache keeps it ([`read::from_value`]:
/// typed, without managed fields or kubectl's last applied copy; an unreadable object keeps
/// its metadata and the reason in [`UNREADABLE_ANNOTATION`]). Tests build objects with it.
#[cfg(test)]
pub(crate) fn typed_offloading(obj: kube::api::DynamicObject) -> NamespaceOffloading {
    read::from_value(serde_json::to_value(obj).unwrap_or_default())
}

/// A watch event of [`read::Offloading`]s as NamespaceOffloadings.
pub fn offloading_event(event: Event<read::Offloading>) -> Event<NamespaceOffloading> {
    match event {
        Event::Apply(o) => Event::Apply(o.0),
        Event::Delete(o) => Event::Delete(o.0),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(o.0),
        Event::InitDone => Event::InitDone,
    }
}

/// What selection reads of one virtual node: its labels (the cluster id among them).
type Fingerprint = std::collections::BTreeMap<String, String>;

/// Tracks virtual nodes by name and says whether an event changed what selection reads.
#[derive(Debug, Default)]
pub struct NodeTracker {
    current: HashMap<String, Fingerprint>,
    listing: Option<HashMap<String, Fingerprint>>,
}

impl NodeTracker {
    /// Applies one event; whether a node appeared, disappeared or changed its labels.
    pub fn changed(&mut self, event: &Event<Node>) -> bool {
        match event {
            Event::Init => {
                self.listing = Some(HashMap::new());
                false
            }
            Event::InitApply(node) => {
                if let Some(listing) = self.listing.as_mut() {
                    listing.insert(node.name_any(), node.labels().clone());
                }
                false
            }
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let changed = listed != self.current;
                self.current = listed;
                changed
            }
            Event::Apply(node) => {
                let labels = node.labels().clone();
                self.current.insert(node.name_any(), labels.clone()) != Some(labels)
            }
            Event::Delete(node) => self.current.remove(&node.name_any()).is_some(),
        }
    }
}

/// One item per change of the virtual nodes that can alter a selection (never for a status
/// heartbeat).
pub fn selection_changes(
    events: impl Stream<Item = Result<Event<Node>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = ()> + Send + 'static {
    let mut tracker = NodeTracker::default();
    events.filter_map(move |event| {
        let changed = event.as_ref().is_ok_and(|e| tracker.changed(e));
        std::future::ready(changed.then_some(()))
    })
}

/// Tracks credential Secrets by name and says which cluster's credentials an event changed.
#[derive(Debug, Default)]
pub struct SecretTracker {
    /// name → (cluster id, uid:resourceVersion)
    current: HashMap<String, (String, String)>,
    listing: Option<HashMap<String, (String, String)>>,
}

fn secret_key(secret: &Secret) -> (String, (String, String)) {
    let cluster = secret
        .labels()
        .get(REMOTE_CLUSTER_ID_LABEL)
        .cloned()
        .unwrap_or_default();
    let version = format!(
        "{}:{}",
        secret.metadata.uid.as_deref().unwrap_or_default(),
        secret.resource_version().unwrap_or_default()
    );
    (secret.name_any(), (cluster, version))
}

impl SecretTracker {
    /// Applies one event; the clusters whose credentials changed (added, edited, removed).
    pub fn changed(&mut self, event: &Event<Secret>) -> Vec<String> {
        match event {
            Event::Init => {
                self.listing = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(s) => {
                let (name, entry) = secret_key(s);
                if let Some(listing) = self.listing.as_mut() {
                    listing.insert(name, entry);
                }
                Vec::new()
            }
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let mut changed: Vec<String> = Vec::new();
                for (name, entry) in &listed {
                    if self.current.get(name) != Some(entry) {
                        changed.push(entry.0.clone());
                    }
                }
                for (name, (cluster, _)) in &self.current {
                    if !listed.contains_key(name) {
                        changed.push(cluster.clone());
                    }
                }
                self.current = listed;
                changed.sort();
                changed.dedup();
                changed
            }
            Event::Apply(s) => {
                let (name, entry) = secret_key(s);
                let cluster = entry.0.clone();
                let old = self.current.insert(name, entry.clone());
                match old {
                    Some(o) if o == entry => Vec::new(),
                    Some((was, _)) if was != cluster => vec![was, cluster],
                    _ => vec![cluster],
                }
            }
            Event::Delete(s) => {
                let (name, _) = secret_key(s);
                self.current
                    .remove(&name)
                    .map(|(cluster, _)| vec![cluster])
                    .unwrap_or_default()
            }
        }
    }
}

/// The cluster ids whose credentials changed, one item per cluster and change.
pub fn credential_changes(
    events: impl Stream<Item = Result<Event<Secret>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = String> + Send + 'static {
    let mut tracker = SecretTracker::default();
    events
        .map(move |event| match event {
            Ok(e) => tracker.changed(&e),
            Err(_) => Vec::new(),
        })
        .flat_map(futures_util::stream::iter)
}

#[cfg(test)]
mod tests;
