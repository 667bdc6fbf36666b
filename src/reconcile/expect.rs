//! Waiting for the cache to show our own writes before reconciling again.
//!
//! A reconcile writes the NamespaceOffloading (finalizer, status) and returns; the watch
//! brings the new version a moment later. A trigger already queued for the object (its
//! previous version, or a Namespace change) can run the next reconcile in between, on the
//! version before the write: it computes the same status, finds it missing, and writes it
//! again (a quarter of all writes in a 10,000-object start-up). So each reconcile records
//! the resourceVersion it wrote last, the watch stream clears the record when that version
//! goes by (in order, so the cache holds it or a later one), and a reconcile of an object
//! with a pending record is put off briefly. A record that is not cleared within
//! [`EXPECT_FOR`] (the object was deleted, or the watch restarted) is dropped, so nothing
//! waits forever. Resource versions are only compared for equality, as the API asks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long a write is waited for at most.
pub(crate) const EXPECT_FOR: Duration = Duration::from_secs(5);

/// Versions written by reconciles and not yet seen in the cache, by object key.
#[derive(Debug, Default)]
pub(crate) struct Expectations {
    pending: Mutex<HashMap<String, (String, Instant)>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reconcile of `key` wrote `version` at `now`.
    pub(crate) fn expect(&self, key: &str, version: String, now: Instant) {
        self.lock().insert(key.to_owned(), (version, now));
    }

    /// The watch delivered `version` of `key` (the cache holds it now).
    pub(crate) fn observe(&self, key: &str, version: Option<&str>) {
        let mut pending = self.lock();
        if pending
            .get(key)
            .is_some_and(|(v, _)| Some(v.as_str()) == version)
        {
            pending.remove(key);
        }
    }

    /// Whether the cached `key` is older than a write of ours (dropping a record that
    /// waited too long).
    pub(crate) fn stale(&self, key: &str, now: Instant) -> bool {
        let mut pending = self.lock();
        match pending.get(key) {
            Some((_, at)) if now.saturating_duration_since(*at) < EXPECT_FOR => true,
            Some(_) => {
                pending.remove(key);
                false
            }
            None => false,
        }
    }

    /// Forgets `key` (released or deleted).
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_pending_until_its_version_goes_by() {
        let e = Expectations::default();
        let t0 = Instant::now();
        assert!(!e.stale("shop/offloading", t0));
        e.expect("shop/offloading", "12".to_owned(), t0);
        assert!(e.stale("shop/offloading", t0));
        // An older version going by changes nothing; other objects are not concerned.
        e.observe("shop/offloading", Some("11"));
        assert!(e.stale("shop/offloading", t0));
        assert!(!e.stale("web/offloading", t0));
        e.observe("shop/offloading", Some("12"));
        assert!(!e.stale("shop/offloading", t0));
    }

    #[test]
    fn nothing_waits_forever() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.expect("shop/offloading", "12".to_owned(), t0);
        assert!(e.stale("shop/offloading", t0 + EXPECT_FOR / 2));
        assert!(!e.stale("shop/offloading", t0 + EXPECT_FOR));
        assert!(!e.stale("shop/offloading", t0));
        e.expect("shop/offloading", "13".to_owned(), t0);
        e.forget("shop/offloading");
        assert!(!e.stale("shop/offloading", t0));
    }
}
