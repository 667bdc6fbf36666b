//! Cluster mode: the admission state mirrored from the API server by watches.
//!
//! Each watch feeds a [`Mirror`] that keeps a derived value per object: for
//! NamespaceOffloadings the precomputed [`NamespaceEntry`] (gate verdict and pod policy), so a
//! pod admission is one map lookup. NamespaceOffloadings are watched untyped and converted one
//! by one: a malformed custom object is logged and skipped instead of failing the whole list
//! and wedging the watch. Managed fields are dropped before anything is kept. Events are
//! applied in batches and each batch publishes one new snapshot, so a relist of thousands of
//! objects swaps the snapshot once, not once per object. A watch reports itself synced after
//! its first complete list; readiness waits for every watch.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{LiveLookup, LookupError, LookupFuture, NamespaceEntry, Store};
use crate::api::consts::NSOFF_NAME;
use crate::api::NamespaceOffloading;

/// A map of values derived from watched objects, rebuilt from watcher events.
#[derive(Debug)]
pub struct Mirror<V> {
    current: HashMap<String, Arc<V>>,
    /// Objects of a list in progress (`Init` … `InitDone`); replaces `current` when complete.
    listing: Option<HashMap<String, Arc<V>>>,
    synced: bool,
}

impl<V> Default for Mirror<V> {
    fn default() -> Self {
        Mirror {
            current: HashMap::new(),
            listing: None,
            synced: false,
        }
    }
}

impl<V> Mirror<V> {
    /// Applies one event; `derive` gives an object's key and value, or `None` to ignore it.
    /// Returns whether `current` changed.
    pub fn apply<K>(
        &mut self,
        event: Event<K>,
        derive: impl Fn(&K) -> Option<(String, V)>,
        key: impl Fn(&K) -> Option<String>,
    ) -> bool {
        match event {
            Event::Init => {
                self.listing = Some(HashMap::new());
                false
            }
            Event::InitApply(obj) => {
                if let (Some(listing), Some((k, v))) = (self.listing.as_mut(), derive(&obj)) {
                    listing.insert(k, Arc::new(v));
                }
                false
            }
            Event::InitDone => {
                self.current = self.listing.take().unwrap_or_default();
                self.synced = true;
                true
            }
            Event::Apply(obj) => match (derive(&obj), key(&obj)) {
                (Some((k, v)), _) => {
                    self.current.insert(k, Arc::new(v));
                    true
                }
                // Now ignored (renamed away, or unreadable): forget what it was.
                (None, Some(k)) => self.current.remove(&k).is_some(),
                (None, None) => false,
            },
            Event::Delete(obj) => key(&obj).is_some_and(|k| self.current.remove(&k).is_some()),
        }
    }

    /// Whether a complete list has been seen.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The current map, for publishing.
    pub fn snapshot(&self) -> Arc<HashMap<String, Arc<V>>> {
        Arc::new(self.current.clone())
    }
}

/// The API resource of NamespaceOffloadings, for untyped watches.
pub fn nsoff_resource() -> ApiResource {
    ApiResource::erase::<NamespaceOffloading>(&())
}

/// Reads an untyped object as a NamespaceOffloading, without its managed fields.
pub fn read_offloading(obj: &DynamicObject) -> Result<NamespaceOffloading, serde_json::Error> {
    let mut raw = serde_json::to_value(obj)?;
    if let Some(meta) = raw.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    serde_json::from_value(raw)
}

/// The entry of a NamespaceOffloading object, keyed by namespace; `None` for objects not
/// named `offloading` and for objects that do not read as a NamespaceOffloading (logged).
pub fn offloading_entry(obj: &DynamicObject) -> Option<(String, NamespaceEntry)> {
    let namespace = obj.namespace()?;
    if obj.name_any() != NSOFF_NAME {
        return None;
    }
    match read_offloading(obj) {
        Ok(nsoff) => Some((namespace.clone(), NamespaceEntry::new(&namespace, nsoff))),
        Err(e) => {
            tracing::warn!(namespace, error = %e, "skipping a NamespaceOffloading that cannot be read");
            None
        }
    }
}

/// Runs one watch until `cancel`, applying events to a mirror and publishing each batch with
/// `publish`; `synced` turns true after the first complete list.
async fn run_watch<K, V>(
    api: Api<K>,
    name: &'static str,
    derive: impl Fn(&K) -> Option<(String, V)>,
    key: impl Fn(&K) -> Option<String>,
    publish: impl Fn(Arc<HashMap<String, Arc<V>>>),
    synced: watch::Sender<bool>,
    cancel: CancellationToken,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .ready_chunks(1024);
    let mut stream = std::pin::pin!(stream);
    let mut mirror = Mirror::<V>::default();
    loop {
        let batch = tokio::select! {
            _ = cancel.cancelled() => return,
            next = stream.next() => match next {
                Some(batch) => batch,
                None => return,
            },
        };
        let mut changed = false;
        for item in batch {
            match item {
                Ok(event) => changed |= mirror.apply(event, &derive, &key),
                Err(e) => {
                    tracing::warn!(watch = name, error = %e, "watch failed; retrying with backoff")
                }
            }
        }
        if changed && mirror.synced() {
            publish(mirror.snapshot());
            synced.send_replace(true);
        }
    }
}

/// Starts the watch of cluster mode, feeding `store`. The returned receiver turns true once it
/// has synced. Only NamespaceOffloadings are watched: admission reads nothing else (the API
/// server's namespaceSelector already chose the namespaces whose pods are sent).
pub fn start_watches(
    client: Client,
    store: Arc<Store>,
    cancel: CancellationToken,
) -> watch::Receiver<bool> {
    let (synced_tx, synced_rx) = watch::channel(false);
    let nsoffs: Api<DynamicObject> = Api::all_with(client, &nsoff_resource());
    tokio::spawn(run_watch(
        nsoffs,
        "namespaceoffloadings",
        offloading_entry,
        |o: &DynamicObject| o.namespace(),
        move |map| store.update(|snap| snap.with_offloadings(map.clone())),
        synced_tx,
        cancel,
    ));
    synced_rx
}

/// Live reads through the API server (the cache-miss path of the pod gate).
#[derive(Clone)]
pub struct KubeLookup {
    client: Client,
}

impl KubeLookup {
    /// Reads with `client`.
    pub fn new(client: Client) -> Self {
        KubeLookup { client }
    }
}

impl Debug for KubeLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeLookup")
    }
}

impl LiveLookup for KubeLookup {
    fn namespace_offloading<'a>(&'a self, namespace: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            let api: Api<NamespaceOffloading> = Api::namespaced(self.client.clone(), namespace);
            api.get_opt(NSOFF_NAME)
                .await
                .map_err(|e| LookupError(e.to_string()))
        })
    }
}
