//! Twins found ready a moment ago, so that the reconcile that follows right after (woken by
//! its own finalizer or status write, or by the scheduling label it set) does not ask every
//! remote cluster again.
//!
//! Each first reconcile of an offloaded namespace is followed by one or two more within a
//! second, each of which read every twin again: with 1,000 namespaces on three clusters,
//! that was 6,000 remote reads that could only confirm what the first pass had just done.
//! An entry is trusted for a short window only (at most half the resync interval), so a
//! resync still reads every twin and recreates one deleted behind our back; any other
//! outcome, a removal, or a release forgets it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::status::TwinState;

/// The longest an entry is trusted.
pub const FRESH_AT_MOST: Duration = Duration::from_secs(10);

/// Entries kept before the expired ones are dropped.
const PRUNE_ABOVE: usize = 4096;

/// (object key, cluster) → (twin name, when it was found ready).
type Entries = HashMap<(String, String), (String, Instant)>;

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

    /// Whether `twin` was found ready on `cluster` for object `key` within the window.
    pub fn ready(&self, key: &str, cluster: &str, twin: &str, now: Instant) -> bool {
        let entries = self.entries();
        entries
            .get(&(key.to_owned(), cluster.to_owned()))
            .is_some_and(|(name, at)| {
                name == twin && now.saturating_duration_since(*at) < self.fresh
            })
    }

    /// Records what a visit found: a ready twin is remembered, anything else forgotten.
    pub fn record(&self, key: &str, cluster: &str, twin: &str, state: &TwinState, now: Instant) {
        if self.fresh.is_zero() {
            return;
        }
        let mut entries = self.entries();
        let id = (key.to_owned(), cluster.to_owned());
        if *state != TwinState::Ready {
            entries.remove(&id);
            return;
        }
        entries.insert(id, (twin.to_owned(), now));
        if entries.len() > PRUNE_ABOVE {
            let fresh = self.fresh;
            entries.retain(|_, (_, at)| now.saturating_duration_since(*at) < fresh);
        }
    }

    /// Forgets every cluster of object `key` (released).
    pub fn forget(&self, key: &str) {
        self.entries().retain(|(k, _), _| k != key);
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::status::Failure;

    #[test]
    fn a_ready_twin_is_trusted_for_the_window_only() {
        let seen = SeenTwins::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(!seen.ready("shop/offloading", "r1", "shop-home", t0));
        seen.record("shop/offloading", "r1", "shop-home", &TwinState::Ready, t0);
        assert!(seen.ready(
            "shop/offloading",
            "r1",
            "shop-home",
            t0 + Duration::from_secs(4)
        ));
        assert!(!seen.ready(
            "shop/offloading",
            "r1",
            "shop-home",
            t0 + Duration::from_secs(5)
        ));
        assert!(
            !seen.ready("shop/offloading", "r2", "shop-home", t0),
            "per cluster"
        );
        assert!(
            !seen.ready("shop/offloading", "r1", "shop", t0),
            "another twin name"
        );
    }

    #[test]
    fn any_other_outcome_or_a_release_forgets() {
        let seen = SeenTwins::new(Duration::from_secs(5));
        let t0 = Instant::now();
        for state in [
            TwinState::Creating,
            TwinState::Terminating,
            TwinState::Absent,
            TwinState::Failed(Failure {
                message: "boom".into(),
                unreachable: true,
            }),
        ] {
            seen.record("a/offloading", "r1", "a-home", &TwinState::Ready, t0);
            seen.record("a/offloading", "r1", "a-home", &state, t0);
            assert!(!seen.ready("a/offloading", "r1", "a-home", t0), "{state:?}");
        }
        seen.record("a/offloading", "r1", "a-home", &TwinState::Ready, t0);
        seen.record("a/offloading", "r2", "a-home", &TwinState::Ready, t0);
        seen.record("b/offloading", "r1", "b-home", &TwinState::Ready, t0);
        seen.forget("a/offloading");
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn the_window_is_bounded_and_zero_disables() {
        let t0 = Instant::now();
        let long = SeenTwins::new(Duration::from_secs(3600));
        long.record("a/offloading", "r1", "a-home", &TwinState::Ready, t0);
        assert!(!long.ready("a/offloading", "r1", "a-home", t0 + FRESH_AT_MOST));
        let off = SeenTwins::new(Duration::ZERO);
        off.record("a/offloading", "r1", "a-home", &TwinState::Ready, t0);
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
                "x",
                &TwinState::Ready,
                t0,
            );
        }
        let later = t0 + Duration::from_secs(2);
        seen.record("new/offloading", "r1", "x", &TwinState::Ready, later);
        assert_eq!(seen.len(), 1);
    }
}
