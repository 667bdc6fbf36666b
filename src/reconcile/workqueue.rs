//! The controllers' work queue: which keys to reconcile now, which later, and what is running.
//!
//! kube-runtime's `Controller` keeps a scheduler entry (the object reference plus a reason,
//! twice: a delay-queue slot and a hash map entry) for every object it will requeue, and
//! its tables keep the capacity of their largest burst for good. At 10,000 objects that was
//! the largest share of the reconciler's heap: 10k resync requeues held forever, and the
//! start-up burst's capacity on top. This queue holds a key only while it waits or runs,
//! converged objects hold nothing (a sweep resyncs them, [`super::runner::sweep`]), and
//! every table gives memory back once a burst has drained.
//!
//! Each key is stored once, shared (`Arc`) by the tables that name it: a start-up re-queues
//! every object it has just written (its own write's event), and 10,000 waiting keys held
//! in two tables by value cost about 4 MiB, a third of that in the tables' slots alone.
//!
//! The rules are kube-runtime's: a key is queued once however often it is triggered; a key
//! triggered while it runs runs again right after; a trigger supersedes a pending requeue;
//! a requeue keeps the earlier of two deadlines. Time is passed in, so all of it is tested
//! without a clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

use tokio::time::Instant;

/// A requeue: when, and a sequence number that tells a current deadline from a replaced one.
struct Timer<K> {
    at: Instant,
    seq: u64,
    key: Arc<K>,
}

impl<K> PartialEq for Timer<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<K> Eq for Timer<K> {}
impl<K> PartialOrd for Timer<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Timer<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Keys to reconcile, deduplicated, with delayed requeues.
pub(super) struct WorkQueue<K> {
    ready: VecDeque<Arc<K>>,
    queued: HashSet<Arc<K>>,
    running: HashSet<Arc<K>>,
    again: HashSet<Arc<K>>,
    timers: BinaryHeap<Reverse<Timer<K>>>,
    deadlines: HashMap<Arc<K>, (Instant, u64)>,
    seq: u64,
}

impl<K> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            ready: VecDeque::new(),
            queued: HashSet::new(),
            running: HashSet::new(),
            again: HashSet::new(),
            timers: BinaryHeap::new(),
            deadlines: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// `key` should be reconciled now: queued once, or once more after its running pass.
    pub(super) fn trigger(&mut self, key: K) {
        self.enqueue(Arc::new(key));
    }

    fn enqueue(&mut self, key: Arc<K>) {
        self.deadlines.remove(&key);
        if self.running.contains(&key) {
            self.again.insert(key);
        } else if self.queued.insert(Arc::clone(&key)) {
            self.ready.push_back(key);
        }
    }

    /// The next key to run, once the requeues due at `now` are queued; it counts as running
    /// until [`WorkQueue::finish`].
    pub(super) fn pop(&mut self, now: Instant) -> Option<K> {
        self.fire(now);
        let key = self.ready.pop_front()?;
        self.queued.remove(&key);
        let out = K::clone(&key);
        self.running.insert(key);
        self.trim();
        Some(out)
    }

    /// `key`'s pass ended; it wants another at `requeue` (`None`: only when triggered). A
    /// trigger that came while it ran wins over the requeue.
    pub(super) fn finish(&mut self, key: K, requeue: Option<Instant>) {
        let key = self.running.take(&key).unwrap_or_else(|| Arc::new(key));
        if self.again.remove(&key) {
            self.enqueue(key);
        } else if let Some(at) = requeue {
            self.schedule(key, at);
        }
        self.trim();
    }

    /// When the earliest requeue is due, if any.
    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_replaced();
        self.timers.peek().map(|Reverse(t)| t.at)
    }

    /// Keys waiting, running or requeued.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.queued.len() + self.running.len() + self.deadlines.len()
    }

    /// Nothing waits, runs or is requeued.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn schedule(&mut self, key: Arc<K>, at: Instant) {
        if self.queued.contains(&key) || self.deadlines.get(&key).is_some_and(|(d, _)| *d <= at) {
            return;
        }
        self.seq += 1;
        self.deadlines.insert(Arc::clone(&key), (at, self.seq));
        self.timers.push(Reverse(Timer {
            at,
            seq: self.seq,
            key,
        }));
    }

    /// Queues the requeues due at `now`.
    fn fire(&mut self, now: Instant) {
        while let Some(Reverse(t)) = self.timers.peek() {
            if t.at > now {
                break;
            }
            let Some(Reverse(t)) = self.timers.pop() else {
                break;
            };
            if self.deadlines.get(&t.key) == Some(&(t.at, t.seq)) {
                self.enqueue(t.key);
            }
        }
    }

    /// Drops timers that a trigger or an earlier requeue replaced, from the top of the heap.
    fn drop_replaced(&mut self) {
        while let Some(Reverse(t)) = self.timers.peek() {
            if self.deadlines.get(&t.key) == Some(&(t.at, t.seq)) {
                break;
            }
            self.timers.pop();
        }
    }

    /// Gives back the capacity of a drained burst (hash tables never shrink by themselves).
    fn trim(&mut self) {
        fn roomy(len: usize, capacity: usize) -> bool {
            capacity > 64 && capacity > len.saturating_mul(4)
        }
        if roomy(self.ready.len(), self.ready.capacity()) {
            self.ready.shrink_to(self.ready.len() * 2);
        }
        for set in [&mut self.queued, &mut self.running, &mut self.again] {
            if roomy(set.len(), set.capacity()) {
                set.shrink_to(set.len() * 2);
            }
        }
        if roomy(self.deadlines.len(), self.deadlines.capacity()) {
            self.deadlines.shrink_to(self.deadlines.len() * 2);
        }
        // Replaced timers stay in the heap until they surface; rebuild it when they dominate.
        if self.timers.len() > 64 && self.timers.len() > self.deadlines.len() * 4 {
            let deadlines = &self.deadlines;
            let live: Vec<_> = std::mem::take(&mut self.timers)
                .into_iter()
                .filter(|Reverse(t)| deadlines.get(&t.key) == Some(&(t.at, t.seq)))
                .collect();
            self.timers = BinaryHeap::from(live);
        }
        if roomy(self.timers.len(), self.timers.capacity()) {
            self.timers.shrink_to(self.timers.len() * 2);
        }
    }
}

#[cfg(test)]
#[path = "workqueue_tests.rs"]
mod tests;
