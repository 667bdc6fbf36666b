//! Namespaces as the reconciler and quick offloading read them: two labels and whether the
//! namespace is being deleted, by name.
//!
//! Why not a reflector store: even trimmed to metadata, a cached Namespace is an `ObjectMeta`
//! (about 400 bytes of fields), its label map (a B-tree node sized for eleven entries) and a
//! store key with the uid and resource version, about 1.2 KB per namespace: 12 MB at 10,000
//! namespaces, for three booleans a decision reads. Here a namespace costs its name and one
//! byte of facts. Subscribers are told only when those facts change (a namespace appearing,
//! changing a label we read, starting its deletion, or vanishing): the annotations and
//! labels of other tools no longer wake a reconcile.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures_util::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::Event;
use kube::ResourceExt;
use tokio::sync::watch;

use super::fanout::Fanout;
use super::{EventStream, NamespaceMeta, Synced};
use crate::api::consts::{OFFLOADING_ENABLED_LABEL, SCHEDULING_ENABLED_LABEL};

/// What decisions read of a namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NamespaceFacts {
    /// Labelled `liqo.io/scheduling-enabled=true` (the pod webhook is on).
    pub scheduling_enabled: bool,
    /// Labelled `liqo.io/enabled=true` (quick offloading).
    pub offloading_enabled: bool,
    /// Has a deletion timestamp.
    pub terminating: bool,
}

impl NamespaceFacts {
    /// The facts of a namespace's metadata.
    pub fn of(meta: &ObjectMeta) -> Self {
        let label = |key: &str| {
            meta.labels
                .as_ref()
                .and_then(|l| l.get(key))
                .is_some_and(|v| v == "true")
        };
        NamespaceFacts {
            scheduling_enabled: label(SCHEDULING_ENABLED_LABEL),
            offloading_enabled: label(OFFLOADING_ENABLED_LABEL),
            terminating: meta.deletion_timestamp.is_some(),
        }
    }
}

/// The namespaces cache: facts by name, its readiness, and who to tell about changes.
pub struct Namespaces {
    facts: RwLock<HashMap<Box<str>, NamespaceFacts>>,
    /// The list being received while the watch (re)lists; swapped in at its end.
    relist: std::sync::Mutex<Option<HashMap<Box<str>, NamespaceFacts>>>,
    synced_tx: watch::Sender<bool>,
    synced: Synced,
    changes: Fanout<String>,
}

impl Namespaces {
    /// An empty cache, not synced until a watch's first complete list.
    pub fn new() -> Arc<Self> {
        let (synced_tx, synced) = Synced::new();
        Arc::new(Namespaces {
            facts: RwLock::default(),
            relist: std::sync::Mutex::default(),
            synced_tx,
            synced,
            changes: Fanout::default(),
        })
    }

    /// A synced cache holding `namespaces` (tests, and callers that fill it by hand).
    pub fn filled<'a>(
        namespaces: impl IntoIterator<Item = (&'a str, NamespaceFacts)>,
    ) -> Arc<Self> {
        let cache = Self::new();
        cache.apply(Event::Init);
        for (name, facts) in namespaces {
            cache.insert_relisted(name, facts);
        }
        cache.apply(Event::InitDone);
        cache
    }

    /// The facts of namespace `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<NamespaceFacts> {
        self.read().get(name).copied()
    }

    /// Readiness: set at the watch's first complete list.
    pub fn synced(&self) -> Synced {
        self.synced.clone()
    }

    /// Names of the namespaces whose facts change from now on (appearing and vanishing
    /// included), each named once per batch of changes however often it changed.
    pub fn subscribe(&self) -> impl Stream<Item = String> + Send {
        self.changes.subscribe(Vec::new)
    }

    /// Applies `events` (a metadata watch of Namespaces with its backoff) until it ends.
    pub async fn feed(self: Arc<Self>, events: impl EventStream<NamespaceMeta>) {
        futures_util::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.apply(event),
                Err(e) => tracing::debug!(error = %e, "namespace watch error; retrying"),
            }
        }
    }

    /// Applies one watch event, then tells subscribers which namespaces' facts changed.
    pub fn apply(&self, event: Event<NamespaceMeta>) {
        let changed = match event {
            Event::Apply(ns) => self.put(&ns.name_any(), Some(NamespaceFacts::of(&ns.metadata))),
            Event::Delete(ns) => self.put(&ns.name_any(), None),
            Event::Init => {
                *self.relisting() = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(ns) => {
                self.insert_relisted(&ns.name_any(), NamespaceFacts::of(&ns.metadata));
                Vec::new()
            }
            Event::InitDone => {
                let fresh = self.relisting().take().unwrap_or_default();
                let changed = {
                    let mut facts = self.write();
                    let mut changed: Vec<String> = facts
                        .iter()
                        .filter(|(name, old)| fresh.get(*name) != Some(*old))
                        .map(|(name, _)| name.to_string())
                        .collect();
                    changed.extend(
                        fresh
                            .keys()
                            .filter(|name| !facts.contains_key(*name))
                            .map(|name| name.to_string()),
                    );
                    *facts = fresh;
                    changed
                };
                super::mark_synced(&self.synced_tx, "namespaces", || {
                    self.facts.read().unwrap_or_else(|e| e.into_inner()).len()
                });
                changed
            }
        };
        self.changes.mark(&changed);
    }

    fn insert_relisted(&self, name: &str, facts: NamespaceFacts) {
        self.relisting()
            .get_or_insert_with(HashMap::new)
            .insert(name.into(), facts);
    }

    /// Sets (or removes) one namespace's facts; its name when they changed.
    fn put(&self, name: &str, facts: Option<NamespaceFacts>) -> Vec<String> {
        let mut map = self.write();
        let old = match facts {
            Some(f) => map.insert(name.into(), f),
            None => map.remove(name),
        };
        if old == facts {
            Vec::new()
        } else {
            vec![name.to_owned()]
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, NamespaceFacts>> {
        self.facts.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, NamespaceFacts>> {
        self.facts.write().unwrap_or_else(|e| e.into_inner())
    }

    fn relisting(&self) -> std::sync::MutexGuard<'_, Option<HashMap<Box<str>, NamespaceFacts>>> {
        self.relist.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[path = "namespaces_tests.rs"]
mod tests;
