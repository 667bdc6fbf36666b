//! When an object is reconciled again without a trigger, from what its last pass said
//! ([`NextLook`]) and what came before it.
//!
//! Two things grow with repetition: consecutive failures (exponential backoff, so a cluster or
//! a home write that keeps failing is not hammered) and consecutive looks at an object still
//! waiting for its twins' deletion (the fallback for a lost wake-up, see
//! [`plan::wake_fallback`]). Both are the same record, a count per object that a different
//! outcome ends; an object gone from the cache ends both, so nothing is kept for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::plan::{self, NextLook};

/// 1 s doubling per consecutive failure, capped at 5 minutes.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(9)).min(Duration::from_secs(300))
}

/// Consecutive occurrences of one thing, per object key.
#[derive(Debug, Default)]
struct Streaks(Mutex<HashMap<String, u32>>);

impl Streaks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more for `key`: how many came before this one.
    fn bump(&self, key: &str) -> u32 {
        let mut streaks = self.lock();
        let n = streaks.entry(key.to_owned()).or_default();
        *n = n.saturating_add(1);
        *n - 1
    }

    fn end(&self, key: &str) {
        self.lock().remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The per-object counts behind every requeue delay.
#[derive(Debug)]
pub(super) struct Pacing {
    /// Consecutive failures (a failed pass, or one ending with failing clusters).
    failures: Streaks,
    /// Consecutive looks while twins are being deleted.
    waits: Streaks,
    /// No delay is longer than the resync interval.
    resync: Duration,
}

impl Pacing {
    pub(super) fn new(resync: Duration) -> Self {
        Pacing {
            failures: Streaks::default(),
            waits: Streaks::default(),
            resync,
        }
    }

    /// A pass failed: when to retry it.
    pub(super) fn failed(&self, key: &str) -> Duration {
        backoff(self.failures.bump(key))
    }

    /// A pass ended asking for `next`: when to look again (`None`: on a trigger, or at the
    /// sweep for converged objects, which hold no timer of their own).
    pub(super) fn after(&self, key: &str, next: NextLook) -> Option<Duration> {
        if next != NextLook::OnTwinDeletion {
            self.waits.end(key);
        }
        match next {
            NextLook::OnChange => None,
            NextLook::Soon => Some(plan::SOON),
            NextLook::OnTwinDeletion => Some(plan::wake_fallback(self.waits.bump(key))),
            NextLook::Resync => {
                self.failures.end(key);
                None
            }
            NextLook::Backoff => Some(self.failed(key).min(self.resync)),
        }
    }

    /// The object is gone: nothing is kept for it.
    pub(super) fn forget(&self, key: &str) {
        self.failures.end(key);
        self.waits.end(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn waiting_for_twin_deletions_grows_until_another_outcome() {
        let p = Pacing::new(Duration::from_secs(300));
        let waits: Vec<_> = (0..5)
            .map(|_| p.after("a/o", NextLook::OnTwinDeletion))
            .collect();
        assert_eq!(waits, [secs(10), secs(20), secs(40), secs(60), secs(60)]);
        assert_eq!(
            p.after("b/o", NextLook::OnTwinDeletion),
            secs(10),
            "per object"
        );
        assert_eq!(p.after("a/o", NextLook::Soon), Some(plan::SOON));
        assert_eq!(
            p.after("a/o", NextLook::OnTwinDeletion),
            secs(10),
            "started over"
        );
    }

    #[test]
    fn failures_back_off_until_converged_and_never_past_the_resync() {
        let p = Pacing::new(Duration::from_secs(20));
        assert_eq!(p.failed("a/o"), Duration::from_secs(1));
        assert_eq!(p.failed("a/o"), Duration::from_secs(2));
        let later: Vec<_> = (0..4).map(|_| p.after("a/o", NextLook::Backoff)).collect();
        assert_eq!(later, [secs(4), secs(8), secs(16), secs(20)]);
        assert_eq!(p.after("a/o", NextLook::Resync), None);
        assert_eq!(p.failed("a/o"), Duration::from_secs(1), "started over");
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn a_gone_object_leaves_nothing() {
        let p = Pacing::new(Duration::from_secs(300));
        p.failed("a/o");
        p.after("a/o", NextLook::OnTwinDeletion);
        assert_eq!(p.after("a/o", NextLook::OnChange), None);
        assert_eq!(p.waits.len(), 0, "released: no wait kept");
        p.after("a/o", NextLook::OnTwinDeletion);
        p.forget("a/o");
        assert_eq!((p.failures.len(), p.waits.len()), (0, 0));
    }
}
