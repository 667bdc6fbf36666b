//! The work queue's rules, step by step with an explicit clock.

use std::time::Duration;

use tokio::time::Instant;

use super::WorkQueue;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Pops every key ready at `now`, in order.
fn drain<K: Clone + Eq + std::hash::Hash>(q: &mut WorkQueue<K>, now: Instant) -> Vec<K> {
    std::iter::from_fn(|| q.pop(now)).collect()
}

#[test]
fn a_key_triggered_many_times_runs_once_in_trigger_order() {
    let now = Instant::now();
    let mut q = WorkQueue::default();
    for k in ["a", "b", "a", "c", "b"] {
        q.trigger(k);
    }
    assert_eq!(drain(&mut q, now), ["a", "b", "c"]);
    assert_eq!(q.len(), 3, "all three run");
    for k in ["a", "b", "c"] {
        q.finish(k, None);
    }
    assert!(q.is_empty());
    assert_eq!(q.next_deadline(), None);
}

#[test]
fn a_key_triggered_while_running_runs_again_after_and_not_in_parallel() {
    let now = Instant::now();
    let mut q = WorkQueue::default();
    q.trigger("a");
    assert_eq!(q.pop(now), Some("a"));
    q.trigger("a");
    assert_eq!(q.pop(now), None, "never two passes of one key at once");
    // The trigger wins over the requeue the pass asked for.
    q.finish("a", Some(now + secs(60)));
    assert_eq!(q.next_deadline(), None);
    assert_eq!(q.pop(now), Some("a"));
    q.finish("a", None);
    assert!(q.is_empty());
}

#[test]
fn requeues_run_when_due_and_the_earlier_deadline_wins() {
    let start = Instant::now();
    let mut q = WorkQueue::default();
    for (k, after) in [("late", 30), ("soon", 2)] {
        q.trigger(k);
        assert_eq!(q.pop(start), Some(k));
        q.finish(k, Some(start + secs(after)));
    }
    assert_eq!(q.next_deadline(), Some(start + secs(2)));
    assert_eq!(q.pop(start + secs(1)), None);
    assert_eq!(q.pop(start + secs(2)), Some("soon"));
    q.finish("soon", Some(start + secs(40)));
    // "late" gets an earlier deadline through another pass; the later one is forgotten.
    q.trigger("late");
    assert_eq!(q.pop(start + secs(3)), Some("late"));
    q.finish("late", Some(start + secs(10)));
    q.trigger("late");
    assert_eq!(q.pop(start + secs(4)), Some("late"));
    q.finish("late", Some(start + secs(20)));
    q.trigger("soon");
    assert_eq!(q.pop(start + secs(5)), Some("soon"));
    q.finish("soon", Some(start + secs(15)));
    assert_eq!(q.next_deadline(), Some(start + secs(15)));
    assert_eq!(drain(&mut q, start + secs(15)), ["soon"]);
    q.finish("soon", None);
    assert_eq!(drain(&mut q, start + secs(20)), ["late"]);
    q.finish("late", None);
    assert_eq!(q.next_deadline(), None, "replaced deadlines never fire");
    assert_eq!(drain(&mut q, start + secs(60)), Vec::<&str>::new());
}

#[test]
fn a_trigger_supersedes_a_pending_requeue() {
    let start = Instant::now();
    let mut q = WorkQueue::default();
    q.trigger("a");
    q.pop(start);
    q.finish("a", Some(start + secs(10)));
    q.trigger("a");
    assert_eq!(q.pop(start), Some("a"), "runs now, not in 10 s");
    q.finish("a", None);
    assert_eq!(q.next_deadline(), None);
    assert_eq!(drain(&mut q, start + secs(10)), Vec::<&str>::new());
}

#[test]
fn a_requeue_of_a_queued_key_is_not_kept_twice() {
    let start = Instant::now();
    let mut q = WorkQueue::default();
    q.trigger("a");
    q.pop(start);
    q.trigger("b");
    // "a" finishes wanting a requeue while "b" is queued: unrelated, both kept.
    q.finish("a", Some(start + secs(1)));
    assert_eq!(q.len(), 2);
    assert_eq!(drain(&mut q, start + secs(1)), ["b", "a"]);
}

#[test]
fn a_drained_burst_gives_its_memory_back() {
    let start = Instant::now();
    let mut q = WorkQueue::default();
    let keys: Vec<String> = (0..10_000).map(|i| format!("ns-{i}")).collect();
    for k in &keys {
        q.trigger(k.clone());
    }
    let running = drain(&mut q, start);
    assert_eq!(running.len(), 10_000);
    // Each one is requeued, then triggered (the requeue is replaced), then done.
    for k in &running {
        q.finish(k.clone(), Some(start + secs(5)));
    }
    for k in &running {
        q.trigger(k.clone());
    }
    for k in drain(&mut q, start) {
        q.finish(k, None);
    }
    assert!(q.is_empty());
    assert_eq!(q.next_deadline(), None);
    assert!(q.queued.capacity() < 1_000, "{}", q.queued.capacity());
    assert!(q.running.capacity() < 1_000, "{}", q.running.capacity());
    assert!(q.deadlines.capacity() < 1_000, "{}", q.deadlines.capacity());
    assert!(q.timers.capacity() < 1_000, "{}", q.timers.capacity());
    assert!(q.ready.capacity() < 1_000, "{}", q.ready.capacity());
}

/// A key (its name) that counts its copies.
#[derive(Debug)]
struct Counted(&'static str, std::rc::Rc<std::cell::Cell<usize>>);

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Counted {}
impl std::hash::Hash for Counted {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.hash(h);
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.1.set(self.1.get() + 1);
        Counted(self.0, self.1.clone())
    }
}

#[test]
fn a_waiting_key_is_held_once() {
    let now = Instant::now();
    let copies = std::rc::Rc::new(std::cell::Cell::new(0));
    let key = |name| Counted(name, copies.clone());
    let mut q = WorkQueue::default();
    for name in ["a", "b", "a"] {
        q.trigger(key(name));
    }
    assert_eq!(
        copies.get(),
        0,
        "waiting in the ready list and the set: no copy"
    );
    let a = q.pop(now).unwrap();
    assert_eq!(copies.get(), 1, "one copy, handed to the pass");
    q.trigger(key("a"));
    q.finish(a, Some(now + secs(5)));
    let b = q.pop(now).unwrap();
    q.finish(b, Some(now + secs(5)));
    assert_eq!(
        copies.get(),
        2,
        "running, triggered again and requeued: no copy"
    );
    assert_eq!(drain(&mut q, now).len(), 1, "a, triggered while it ran");
}
