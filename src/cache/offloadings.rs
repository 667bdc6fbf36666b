//! The one NamespaceOffloading cache of the process: admission, the reconciler and quick
//! offloading all read it.
//!
//! Why one: admission runs on every replica and the reconciler only on the Lease holder, so
//! each used to keep its own watch and its own copy of every object; at 10,000 objects that
//! was two lists at start-up and two copies in memory. The watch here runs on every replica
//! in cluster mode, whether or not this replica leads. Each event goes, in order, to the
//! kube-runtime store (typed and trimmed objects, read by the controllers), to the admission
//! state (a precomputed [`NamespaceEntry`] per namespace, derived from the store, published
//! once per batch of events), and to the subscribers (the keys that changed; see
//! [`super::fanout`]), so a controller that stops reading never holds admission back.
//!
//! [`Feeder`] is that event handling without I/O, so tests drive it with plain events.

use std::sync::{Arc, RwLock};

use futures_util::{Stream, StreamExt, TryStreamExt};
use kube::api::Api;
use kube::runtime::reflector::{store::Writer, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::fanout::Fanout;
use super::read::Offloading;
use super::{offloading_event, Synced, UNREADABLE_ANNOTATION};
use crate::api::consts::NSOFF_NAME;
use crate::api::NamespaceOffloading;
use crate::state::{self, NamespaceEntry, OffloadingMap};

/// Called with each applied object, in the watch's order, before subscribers hear of it.
pub type Observer = Arc<dyn Fn(&NamespaceOffloading) + Send + Sync>;

/// Events taken from the watch at once; one admission snapshot is published per batch.
const BATCH: usize = 1024;

/// The shared NamespaceOffloading cache.
pub struct OffloadingCache {
    store: Store<NamespaceOffloading>,
    synced: Synced,
    fanout: Fanout<ObjectRef<NamespaceOffloading>>,
    observers: RwLock<Vec<(u64, Observer)>>,
}

impl std::fmt::Debug for OffloadingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffloadingCache")
            .field("objects", &self.store.state().len())
            .field("synced", &self.synced.is_synced())
            .finish()
    }
}

/// The key of a NamespaceOffloading in the store (and in subscriptions).
pub fn key_of(nsoff: &NamespaceOffloading) -> ObjectRef<NamespaceOffloading> {
    let r = ObjectRef::new(&nsoff.name_any());
    match nsoff.namespace() {
        Some(ns) => r.within(&ns),
        None => r,
    }
}

impl OffloadingCache {
    /// An empty cache and the feeder that fills it, publishing admission entries to `admission`.
    pub fn new(admission: Arc<state::Store>) -> (Arc<Self>, Feeder) {
        let writer = Writer::<NamespaceOffloading>::default();
        let (tx, synced) = Synced::new();
        let cache = Arc::new(OffloadingCache {
            store: writer.as_reader(),
            synced,
            fanout: Fanout::default(),
            observers: RwLock::new(Vec::new()),
        });
        let feeder = Feeder {
            cache: cache.clone(),
            writer,
            entries: OffloadingMap::default(),
            admission,
            synced: tx,
            listed: false,
            changed: false,
        };
        (cache, feeder)
    }

    /// Starts the watch of every NamespaceOffloading with `client`, until `cancel`.
    pub fn start(
        client: Client,
        admission: Arc<state::Store>,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let (cache, feeder) = Self::new(admission);
        let api: Api<Offloading> = Api::all(client);
        // Read leniently, one object at a time (`read`): one malformed object must not break
        // the list, and the list's JSON trees must not all live at once.
        let events = watcher::watcher(api, list_from_cache())
            .default_backoff()
            .map_ok(offloading_event);
        tokio::spawn(feeder.run(events, cancel));
        cache
    }

    /// The store (typed, trimmed objects).
    pub fn store(&self) -> Store<NamespaceOffloading> {
        self.store.clone()
    }

    /// Turns true at the first complete list.
    pub fn synced(&self) -> Synced {
        self.synced.clone()
    }

    /// The keys of objects as they change, starting with every object already cached;
    /// `observe`, if given, sees each applied object first, for as long as the stream lives.
    pub fn subscribe(
        self: &Arc<Self>,
        observe: Option<Observer>,
    ) -> impl Stream<Item = ObjectRef<NamespaceOffloading>> + Send + 'static {
        let id = observe.map(|o| {
            let mut observers = self.observers.write().unwrap_or_else(|e| e.into_inner());
            let id = observers.last().map_or(0, |(i, _)| i + 1);
            observers.push((id, o));
            id
        });
        let store = self.store.clone();
        let initial = move || store.state().iter().map(|o| key_of(o)).collect::<Vec<_>>();
        let stream = self.fanout.subscribe(initial);
        let guard = Unobserve {
            cache: Arc::downgrade(self),
            id,
        };
        stream.map(move |k| {
            let _ = &guard;
            k
        })
    }

    fn observe(&self, nsoff: &NamespaceOffloading) {
        let observers = self.observers.read().unwrap_or_else(|e| e.into_inner());
        for (_, o) in observers.iter() {
            o(nsoff);
        }
    }
}

/// Removes a subscription's observer when its stream is dropped.
struct Unobserve {
    cache: std::sync::Weak<OffloadingCache>,
    id: Option<u64>,
}

impl Drop for Unobserve {
    fn drop(&mut self) {
        if let (Some(cache), Some(id)) = (self.cache.upgrade(), self.id) {
            let mut observers = cache.observers.write().unwrap_or_else(|e| e.into_inner());
            observers.retain(|(i, _)| *i != id);
        }
    }
}

/// The admission entry of a cached NamespaceOffloading: `None` for objects not named
/// `offloading` and for objects that did not read as one (those are reported by the
/// reconciler; for admission the namespace has no usable offloading).
pub fn entry_of(nsoff: &NamespaceOffloading) -> Option<(String, NamespaceEntry)> {
    let namespace = nsoff.namespace()?;
    if nsoff.name_any() != NSOFF_NAME || nsoff.annotations().contains_key(UNREADABLE_ANNOTATION) {
        return None;
    }
    let entry = NamespaceEntry::new(&namespace, nsoff);
    Some((namespace, entry))
}

/// How NamespaceOffloadings are listed: from the API server's watch cache, in one response
/// (`resourceVersion=0` without a limit), as client-go's informers list.
///
/// Readiness waits for this list. A quorum list reads every object from etcd and decodes it
/// again: 2.4–2.6 s for 10,000 objects on the benchmark's API server, paginated or not, where
/// the watch cache answers in 0.5–0.8 s. A limit would spoil it: the watch cache serves the
/// first page, and every following page (a continue token) goes to etcd. The cost is the
/// whole response in memory at once (15 MB of JSON at 10,000; its items are decoded one at
/// a time, see `read`), given back once the objects are stored; the list may be a few
/// milliseconds older than etcd, which the watch that follows it catches up on.
fn list_from_cache() -> watcher::Config {
    let mut config = watcher::Config::default().any_semantic();
    config.page_size = None;
    config
}

/// Applies watch events to the cache, the admission state and the subscriptions.
pub struct Feeder {
    cache: Arc<OffloadingCache>,
    writer: Writer<NamespaceOffloading>,
    entries: OffloadingMap,
    admission: Arc<state::Store>,
    synced: watch::Sender<bool>,
    /// Whether a complete list has been applied.
    listed: bool,
    /// Whether the admission entries changed since the last publication.
    changed: bool,
}

impl Feeder {
    /// Applies one event.
    pub fn apply(&mut self, event: Event<NamespaceOffloading>) {
        self.writer.apply_watcher_event(&event);
        match &event {
            Event::Init | Event::InitApply(_) => {}
            Event::InitDone => {
                // A complete list replaced the store: every entry is derived again, and every
                // object may have changed while the watch was down.
                let state = self.cache.store.state();
                self.entries = state
                    .iter()
                    .filter_map(|o| entry_of(o))
                    .map(|(ns, e)| (ns, Arc::new(e)))
                    .collect();
                self.changed = true;
                self.listed = true;
                let keys: Vec<_> = state.iter().map(|o| key_of(o)).collect();
                self.cache.fanout.mark(&keys);
            }
            Event::Apply(nsoff) => {
                self.set_entry(nsoff, entry_of(nsoff));
                self.cache.observe(nsoff);
                self.cache.fanout.mark(&[key_of(nsoff)]);
            }
            Event::Delete(nsoff) => {
                self.set_entry(nsoff, None);
                self.cache.fanout.mark(&[key_of(nsoff)]);
            }
        }
    }

    fn set_entry(&mut self, nsoff: &NamespaceOffloading, entry: Option<(String, NamespaceEntry)>) {
        match entry {
            Some((ns, e)) => {
                self.entries.insert(ns, Arc::new(e));
                self.changed = true;
            }
            // Deleted, renamed away or unreadable: the namespace has no entry from it. Only
            // the object named `offloading` ever made the namespace's entry.
            None if nsoff.name_any() == NSOFF_NAME => {
                if let Some(ns) = nsoff.namespace() {
                    self.changed |= self.entries.remove(&ns);
                }
            }
            None => {}
        }
    }

    /// Publishes the admission entries if they changed and the first list is complete; then
    /// the cache reports itself synced.
    pub fn publish(&mut self) {
        if !self.listed {
            return;
        }
        if self.changed {
            let entries = Arc::new(self.entries.clone());
            self.admission
                .update(|snap| snap.with_offloadings(entries.clone()));
            self.changed = false;
        }
        super::mark_synced(&self.synced, "NamespaceOffloadings", || {
            self.cache.store.state().len()
        });
    }

    /// Applies `events` in batches until they end or `cancel`.
    pub async fn run(
        mut self,
        events: impl Stream<Item = Result<Event<NamespaceOffloading>, watcher::Error>> + Send,
        cancel: CancellationToken,
    ) {
        let events = events.ready_chunks(BATCH);
        let mut events = std::pin::pin!(events);
        loop {
            let batch = tokio::select! {
                _ = cancel.cancelled() => return,
                next = events.next() => match next {
                    Some(batch) => batch,
                    None => return,
                },
            };
            for item in batch {
                match item {
                    Ok(event) => self.apply(event),
                    Err(e) => tracing::warn!(
                        watch = "namespaceoffloadings",
                        error = %e,
                        "watch failed; retrying with backoff"
                    ),
                }
            }
            self.publish();
        }
    }
}

#[cfg(test)]
#[path = "offloadings_tests.rs"]
mod tests;
