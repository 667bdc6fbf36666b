//! Twins found ready a moment ago, so that the reconcile that follows right after (woken by
//! its own finalizer or status write, or by the scheduling label it set) does not ask every
//! remote cluster again.
//!
//! Each first reconcile of an offloaded namespace is followed by one or two more within a
//! second, each of which read every twin again: with 1,000 namespaces on three clusters,
//! that was 6,000 remote reads that could only confirm what the first pass had just done.
//! An entry is trusted for a short window only (at most half the resync interval), and only
//! for the generation it was found at (a change of the spec is always checked against the
//! clusters), so a resync still reads every twin. Any other outcome, a removal, a release,
//! new credentials for the cluster, or the twin's deletion seen by the twin watch
//! ([`super::twin_watch`]) forgets it, so a twin deleted behind our back is recreated at
//! once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::status::TwinState;

/// The longest an entry is trusted.
pub const FRESH_AT_MOST: Duration = Duration::from_secs(10);

/// Entries kept before the expired ones are dropped.
const PRUNE_ABOVE: usize = 4096;

/// What was found ready: the twin's name, at which generation of the object, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The twin's name.
    pub twin: String,
    /// `metadata.generation` of the NamespaceOffloading.
    pub generation: Option<i64>,
}

/// (object key, cluster) → what was found ready, and when.
type Entries = HashMap<(String, String), (Found, Instant)>;

/// Recently confirmed twins.
#[derive(Debug)]
pub struct SeenTwins {
    fresh: Duration,
    entries: Mutex<Entries>,
}

impl SeenTwins {
    /// Trusts an entry for `fresh` (zero: never, as in tests that script every request).
    pub fn new(fresh: Duration) -> Self {
        SeenTwins {
            fresh: fresh.min(FRESH_AT_MOST),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the same twin was found ready on `cluster` for object `key`, at the same
    /// generation, within the window.
    pub fn ready(&self, key: &str, cluster: &str, found: &Found, now: Instant) -> bool {
        let entries = self.entries();
        entries
            .get(&(key.to_owned(), cluster.to_owned()))
            .is_some_and(|(f, at)| f == found && now.saturating_duration_since(*at) < self.fresh)
    }

    /// Records what a visit found: a ready twin is remembered, anything else forgotten.
    pub fn record(&self, key: &str, cluster: &str, found: &Found, state: &TwinState, now: Instant) {
        if self.fresh.is_zero() {
            return;
        }
        let mut entries = self.entries();
        let id = (key.to_owned(), cluster.to_owned());
        if *state != TwinState::Ready {
            entries.remove(&id);
            return;
        }
        entries.insert(id, (found.clone(), now));
        if entries.len() > PRUNE_ABOVE {
            let fresh = self.fresh;
            entries.retain(|_, (_, at)| now.saturating_duration_since(*at) < fresh);
        }
    }

    /// Forgets the twin of object `key` on `cluster` (it was seen deleted there).
    pub fn forget_one(&self, key: &str, cluster: &str) {
        self.entries().remove(&(key.to_owned(), cluster.to_owned()));
    }

    /// Forgets every twin on `cluster` (its credentials changed).
    pub fn forget_cluster(&self, cluster: &str) {
        self.entries().retain(|(_, c), _| c != cluster);
    }

    /// Forgets every cluster of object `key` (released).
    pub fn forget(&self, key: &str) {
        self.entries().retain(|(k, _), _| k != key);
    }

    /// How many entries are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether none is kept.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::status::Failure;

    fn at(twin: &str, generation: i64) -> Found {
        Found {
            twin: twin.to_owned(),
            generation: Some(generation),
        }
    }

    #[test]
    fn a_ready_twin_is_trusted_for_the_window_only() {
        let seen = SeenTwins::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(!seen.ready("shop/offloading", "r1", &at("shop-home", 1), t0));
        seen.record(
            "shop/offloading",
            "r1",
            &at("shop-home", 1),
            &TwinState::Ready,
            t0,
        );
        assert!(seen.ready(
            "shop/offloading",
            "r1",
            &at("shop-home", 1),
            t0 + Duration::from_secs(4)
        ));
        assert!(!seen.ready(
            "shop/offloading",
            "r1",
            &at("shop-home", 1),
            t0 + Duration::from_secs(5)
        ));
        assert!(
            !seen.ready("shop/offloading", "r2", &at("shop-home", 1), t0),
            "per cluster"
        );
        assert!(
            !seen.ready("shop/offloading", "r1", &at("shop", 1), t0),
            "another twin name"
        );
    }

    #[test]
    fn any_other_outcome_or_a_release_forgets() {
        let seen = SeenTwins::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let found_ready = |key: &str, cluster: &str, twin: &str| {
            seen.record(key, cluster, &at(twin, 1), &TwinState::Ready, t0)
        };
        for state in [
            TwinState::Creating,
            TwinState::Terminating,
            TwinState::Absent,
            TwinState::Failed(Failure {
                message: "boom".into(),
                unreachable: true,
            }),
        ] {
            found_ready("a/offloading", "r1", "a-home");
            seen.record("a/offloading", "r1", &at("a-home", 1), &state, t0);
            assert!(
                !seen.ready("a/offloading", "r1", &at("a-home", 1), t0),
                "{state:?}"
            );
        }
        found_ready("a/offloading", "r1", "a-home");
        found_ready("a/offloading", "r2", "a-home");
        found_ready("b/offloading", "r1", "b-home");
        seen.forget_one("a/offloading", "r2");
        assert!(seen.ready("a/offloading", "r1", &at("a-home", 1), t0));
        assert!(!seen.ready("a/offloading", "r2", &at("a-home", 1), t0));
        seen.forget("a/offloading");
        assert_eq!(seen.len(), 1);
        seen.forget_cluster("r1");
        assert!(seen.is_empty(), "new credentials for r1");
    }

    #[test]
    fn the_window_is_bounded_and_zero_disables() {
        let t0 = Instant::now();
        let long = SeenTwins::new(Duration::from_secs(3600));
        long.record(
            "a/offloading",
            "r1",
            &at("a-home", 1),
            &TwinState::Ready,
            t0,
        );
        assert!(!long.ready("a/offloading", "r1", &at("a-home", 1), t0 + FRESH_AT_MOST));
        let off = SeenTwins::new(Duration::ZERO);
        off.record(
            "a/offloading",
            "r1",
            &at("a-home", 1),
            &TwinState::Ready,
            t0,
        );
        assert!(off.is_empty());
    }

    #[test]
    fn expired_entries_are_dropped_when_many() {
        let seen = SeenTwins::new(Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..PRUNE_ABOVE {
            seen.record(
                &format!("n{i}/offloading"),
                "r1",
                &at("x", 1),
                &TwinState::Ready,
                t0,
            );
        }
        let later = t0 + Duration::from_secs(2);
        seen.record(
            "new/offloading",
            "r1",
            &at("x", 1),
            &TwinState::Ready,
            later,
        );
        assert_eq!(seen.len(), 1);
    }
}
