//! Change notifications from one cache to the controllers that read it.
//!
//! Why not kube-runtime's shared-store dispatch: it broadcasts every event through a bounded
//! channel, and one subscriber that stops reading (a reconciler that lost its Lease and is
//! not running) stops the watch, and with it the admission state fed by the same watch. Here
//! each subscriber has a set of keys that changed since it last looked: marking is never
//! blocked, repeated changes of one object collapse into one entry (so a subscriber's backlog
//! is at most one entry per object), and a dropped subscriber is forgotten at the next change.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures_util::Stream;
use tokio::sync::Notify;

/// Keys changed since the subscriber last looked, and the signal that some are waiting.
#[derive(Debug)]
struct Pending<T> {
    keys: Mutex<HashSet<T>>,
    wake: Notify,
}

impl<T: Eq + Hash> Pending<T> {
    fn keys(&self) -> MutexGuard<'_, HashSet<T>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, keys: impl IntoIterator<Item = T>) {
        let mut set = self.keys();
        let before = set.len();
        set.extend(keys);
        if set.len() > before {
            self.wake.notify_one();
        }
    }
}

/// The subscribers of one cache.
#[derive(Debug)]
pub(crate) struct Fanout<T> {
    subscribers: Mutex<Vec<Weak<Pending<T>>>>,
}

impl<T> Default for Fanout<T> {
    fn default() -> Self {
        Fanout {
            subscribers: Mutex::new(Vec::new()),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Fanout<T> {
    fn live(&self) -> MutexGuard<'_, Vec<Weak<Pending<T>>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every subscriber that `keys` changed (dropped subscribers are forgotten).
    pub(crate) fn mark(&self, keys: &[T]) {
        if keys.is_empty() {
            return;
        }
        self.live().retain(|weak| match weak.upgrade() {
            Some(pending) => {
                pending.add(keys.iter().cloned());
                true
            }
            None => false,
        });
    }

    /// A new subscriber, told first about the keys `initial` returns (what the cache holds
    /// now), then about every key marked from now on. The stream ends only when dropped.
    ///
    /// `initial` runs under the subscribers' lock: a cache that changes its contents before
    /// it marks the change (as [`super::offloadings::Feeder`] does) then either shows the
    /// change to `initial` or marks it for this subscriber; none is lost in between.
    pub(crate) fn subscribe<I>(&self, initial: impl FnOnce() -> I) -> impl Stream<Item = T> + Send
    where
        I: IntoIterator<Item = T>,
    {
        let pending = Arc::new(Pending {
            keys: Mutex::new(HashSet::new()),
            wake: Notify::new(),
        });
        let mut live = self.live();
        pending.add(initial());
        live.push(Arc::downgrade(&pending));
        drop(live);
        futures_util::stream::unfold((pending, Vec::new()), |(pending, mut batch)| async move {
            loop {
                if let Some(key) = batch.pop() {
                    return Some((key, (pending, batch)));
                }
                // Taken, not drained: the set's capacity (10,000 keys after a start-up)
                // goes with it instead of staying allocated while idle.
                batch = std::mem::take(&mut *pending.keys()).into_iter().collect();
                if batch.is_empty() {
                    // A mark between the drain and here left a permit: no wake-up is lost.
                    pending.wake.notified().await;
                }
            }
        })
    }

    /// How many subscribers are still listening.
    #[cfg(test)]
    fn subscribers(&self) -> usize {
        self.live().iter().filter(|w| w.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    async fn next<T>(s: &mut (impl Stream<Item = T> + Unpin)) -> Option<T> {
        tokio::time::timeout(Duration::from_millis(200), s.next())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn a_subscriber_sees_the_initial_keys_then_each_change_once() {
        let fanout = Fanout::<&str>::default();
        let mut s = Box::pin(fanout.subscribe(|| ["a"]));
        assert_eq!(next(&mut s).await, Some("a"));
        fanout.mark(&["b", "b"]);
        fanout.mark(&["b"]);
        assert_eq!(next(&mut s).await, Some("b"));
        assert_eq!(
            next(&mut s).await,
            None,
            "repeated changes collapse into one"
        );
        fanout.mark(&["c"]);
        assert_eq!(next(&mut s).await, Some("c"));
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_key_and_a_dropped_one_is_forgotten() {
        let fanout = Fanout::<u32>::default();
        let mut one = Box::pin(fanout.subscribe(Vec::new));
        let two = Box::pin(fanout.subscribe(Vec::new));
        assert_eq!(fanout.subscribers(), 2);
        drop(two);
        // Marking never waits for a subscriber that does not read.
        for i in 0..10_000 {
            fanout.mark(&[i % 3]);
        }
        assert_eq!(fanout.subscribers(), 1);
        let mut seen: Vec<u32> = Vec::new();
        while let Some(k) = next(&mut one).await {
            seen.push(k);
        }
        seen.sort();
        assert_eq!(seen, [0, 1, 2]);
    }

    #[tokio::test]
    async fn a_waiting_subscriber_wakes_on_a_mark() {
        let fanout = Arc::new(Fanout::<u8>::default());
        let mut s = Box::pin(fanout.subscribe(Vec::new));
        let marker = fanout.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            marker.mark(&[7]);
        });
        let got = tokio::time::timeout(Duration::from_secs(5), s.next()).await;
        assert_eq!(got.ok().flatten(), Some(7));
        task.await.unwrap();
    }
}
