//! What admission reads: an immutable snapshot of per-namespace policies, swapped as a whole.
//!
//! Readers take the current `Arc<Snapshot>` without locks, so a request never waits for a
//! writer; writers (the standalone loader now, reflector stores in cluster mode) build a new
//! snapshot and swap it in. Each namespace's gate verdict and imposed selector are computed
//! once here, when its NamespaceOffloading changes, not on every pod.

pub mod cluster;
mod shards;
mod standalone;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use k8s_openapi::api::core::v1::{Namespace, Node};

use crate::api::consts::NSOFF_NAME;
use crate::api::NamespaceOffloading;
use crate::policy::gate::gate;
use crate::policy::mutate::PodPolicy;
use crate::policy::Verdict;

pub use shards::OffloadingMap;
pub use standalone::{load_standalone, parse_standalone, StandaloneError};

/// One namespace's offloading, ready for admission.
#[derive(Debug, Clone)]
pub struct NamespaceEntry {
    /// The admission gate's verdict for pods (SPEC §4).
    pub gate: Verdict,
    /// The precomputed pod mutation policy.
    pub policy: PodPolicy,
}

impl NamespaceEntry {
    /// Precomputes the entry of `namespace` from its NamespaceOffloading. Only the decisions
    /// are kept, not the object: thousands of them are cached.
    pub fn new(namespace: &str, nsoff: &NamespaceOffloading) -> Self {
        NamespaceEntry {
            gate: gate(namespace, Some(nsoff)),
            policy: PodPolicy::new(&nsoff.spec),
        }
    }
}

/// Everything admission needs, at one point in time.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    offloadings: Arc<OffloadingMap>,
    namespaces: Arc<NamespaceMap>,
    nodes: Arc<Vec<Node>>,
}

/// Namespace name → Namespace object.
pub type NamespaceMap = HashMap<String, Arc<Namespace>>;

impl Snapshot {
    /// Builds a snapshot; NamespaceOffloadings not named `offloading` or without a namespace
    /// are ignored (the validating webhook rejects them).
    pub fn new(
        nsoffs: impl IntoIterator<Item = NamespaceOffloading>,
        namespaces: Vec<Namespace>,
        nodes: Vec<Node>,
    ) -> Self {
        let offloadings = nsoffs
            .into_iter()
            .filter(|n| n.metadata.name.as_deref() == Some(NSOFF_NAME))
            .filter_map(|n| {
                let ns = n.metadata.namespace.clone()?;
                let entry = Arc::new(NamespaceEntry::new(&ns, &n));
                Some((ns, entry))
            })
            .collect();
        let namespaces = namespaces
            .into_iter()
            .filter_map(|n| Some((n.metadata.name.clone()?, Arc::new(n))))
            .collect();
        Snapshot {
            offloadings: Arc::new(offloadings),
            namespaces: Arc::new(namespaces),
            nodes: Arc::new(nodes),
        }
    }

    /// This snapshot with other offloading entries (the rest is shared, not copied).
    pub fn with_offloadings(&self, offloadings: Arc<OffloadingMap>) -> Self {
        Snapshot {
            offloadings,
            ..self.clone()
        }
    }

    /// This snapshot with other namespaces (the rest is shared, not copied).
    pub fn with_namespaces(&self, namespaces: Arc<NamespaceMap>) -> Self {
        Snapshot {
            namespaces,
            ..self.clone()
        }
    }

    /// The offloading entry of `namespace`, if it has a NamespaceOffloading.
    pub fn offloading(&self, namespace: &str) -> Option<&Arc<NamespaceEntry>> {
        self.offloadings.get(namespace)
    }

    /// A namespace object, if known.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.get(name).map(Arc::as_ref)
    }

    /// Known nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Number of namespaces with a NamespaceOffloading.
    pub fn offloading_count(&self) -> usize {
        self.offloadings.len()
    }
}

/// The current snapshot, shared by every request handler.
#[derive(Debug, Default)]
pub struct Store {
    current: ArcSwap<Snapshot>,
}

impl Store {
    /// A store holding `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Store {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The current snapshot (lock-free).
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot.
    pub fn replace(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Replaces the snapshot with `change` applied to the current one (writers may race:
    /// the change is re-applied to whatever another writer stored meanwhile).
    pub fn update(&self, change: impl Fn(&Snapshot) -> Snapshot) {
        self.current.rcu(|current| Arc::new(change(current)));
    }
}

/// Why a live read failed (API server unreachable, RBAC, bad object…); logged, never sent to
/// the caller.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// What a live read returns.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<NamespaceOffloading>, LookupError>> + Send + 'a>>;

/// Reads a namespace's NamespaceOffloading from the API server, bypassing the cache.
pub trait LiveLookup: Send + Sync + fmt::Debug {
    /// The NamespaceOffloading named `offloading` in `namespace`, if it exists.
    fn namespace_offloading<'a>(&'a self, namespace: &'a str) -> LookupFuture<'a>;
}
