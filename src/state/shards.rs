//! The offloading entries of every namespace, in shards shared between snapshots.
//!
//! Why: the NamespaceOffloading cache publishes a new admission snapshot after each batch of
//! watch events. With one map, each publication copied every entry (10,000 keys at scale)
//! and dropped the previous copy: a profile of the reconciler writing 10,000 statuses showed
//! half of the process's CPU in that copy and its drop. Here a publication copies a list of
//! shard pointers, and a change copies only the shard it touches (about 1/64 of the entries)
//! when a published snapshot still shares it.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::NamespaceEntry;

const SHARDS: usize = 64;

type Shard = HashMap<String, Arc<NamespaceEntry>>;

/// Namespace name → its offloading entry.
#[derive(Debug, Clone)]
pub struct OffloadingMap {
    shards: Vec<Arc<Shard>>,
}

impl Default for OffloadingMap {
    fn default() -> Self {
        OffloadingMap {
            shards: (0..SHARDS).map(|_| Arc::default()).collect(),
        }
    }
}

fn shard_of(namespace: &str) -> usize {
    let mut h = DefaultHasher::new();
    namespace.hash(&mut h);
    (h.finish() % SHARDS as u64) as usize
}

impl OffloadingMap {
    /// The entry of `namespace`.
    pub fn get(&self, namespace: &str) -> Option<&Arc<NamespaceEntry>> {
        self.shards[shard_of(namespace)].get(namespace)
    }

    /// Sets the entry of `namespace` (copying its shard first if a snapshot shares it).
    pub fn insert(&mut self, namespace: String, entry: Arc<NamespaceEntry>) {
        let shard = &mut self.shards[shard_of(&namespace)];
        Arc::make_mut(shard).insert(namespace, entry);
    }

    /// Removes the entry of `namespace`; whether there was one.
    pub fn remove(&mut self, namespace: &str) -> bool {
        let shard = &mut self.shards[shard_of(namespace)];
        if !shard.contains_key(namespace) {
            return false;
        }
        Arc::make_mut(shard).remove(namespace).is_some()
    }

    /// Namespaces with an entry.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// No namespace has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<(String, Arc<NamespaceEntry>)> for OffloadingMap {
    fn from_iter<I: IntoIterator<Item = (String, Arc<NamespaceEntry>)>>(iter: I) -> Self {
        let mut map = OffloadingMap::default();
        for (namespace, entry) in iter {
            map.insert(namespace, entry);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NamespaceOffloading;

    fn entry(ns: &str) -> Arc<NamespaceEntry> {
        let nsoff: NamespaceOffloading = serde_json::from_value(serde_json::json!({
            "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
            "metadata": {"name": "offloading", "namespace": ns}, "spec": {}}))
        .expect("a valid object");
        Arc::new(NamespaceEntry::new(ns, &nsoff))
    }

    #[test]
    fn a_change_copies_one_shard_and_leaves_published_copies_alone() {
        let published: OffloadingMap = (0..1_000)
            .map(|i| (format!("ns-{i}"), entry(&format!("ns-{i}"))))
            .collect();
        assert_eq!(published.len(), 1_000);
        let mut working = published.clone();
        working.insert("new".to_owned(), entry("new"));
        assert!(working.remove("ns-7"));
        assert!(!working.remove("absent"));
        // The published copy still reads as it was.
        assert!(published.get("new").is_none());
        assert!(published.get("ns-7").is_some());
        assert_eq!(published.len(), 1_000);
        assert!(working.get("new").is_some() && working.get("ns-7").is_none());
        assert_eq!(working.len(), 1_000);
        // Only the touched shards were copied; every other one is still shared.
        let shared = (0..SHARDS)
            .filter(|&i| Arc::ptr_eq(&published.shards[i], &working.shards[i]))
            .count();
        let touched = if shard_of("new") == shard_of("ns-7") {
            1
        } else {
            2
        };
        assert_eq!(shared, SHARDS - touched);
    }
}
