//! Runs a controller's passes from a stream of keys: at most `concurrency` at once, one per
//! key at a time, requeues as each pass asks, until cancelled (then the passes in flight
//! finish; callers bound that with their own grace, see `supervise`).
//!
//! The queue itself is [`super::workqueue`]; this module is only the loop around it, plus
//! [`sweep`], which resyncs converged objects without holding a timer for each of them.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::workqueue::WorkQueue;

/// Runs `pass` for each key `triggers` names, until `cancel`. A pass returns when it wants
/// to run again without a trigger (`None`: only on a trigger).
pub(super) async fn drive<K, S, F, Fut>(
    triggers: S,
    concurrency: usize,
    pass: F,
    cancel: CancellationToken,
) where
    K: Clone + Eq + Hash + Send,
    S: Stream<Item = K>,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Option<Duration>>,
{
    let concurrency = concurrency.max(1);
    let mut queue = WorkQueue::<K>::default();
    let mut running = FuturesUnordered::new();
    let triggers = triggers.fuse();
    futures_util::pin_mut!(triggers);
    loop {
        while running.len() < concurrency {
            let Some(key) = queue.pop(Instant::now()) else {
                break;
            };
            let done = key.clone();
            let pass = pass(key);
            running.push(async move { (done, pass.await) });
        }
        let deadline = queue.next_deadline();
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some((key, again)) = running.next(), if !running.is_empty() => {
                let at = again.map(|d: Duration| Instant::now() + d);
                queue.finish(key, at);
            }
            Some(key) = triggers.next() => queue.trigger(key),
            () = sleep_until(deadline), if deadline.is_some() => {}
        }
    }
    while running.next().await.is_some() {}
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Slices of the objects a sweep names per tick: each object once per `every`, the objects
/// spread evenly over it (by a hash of the reference, so the same object keeps its slot).
const SLICES: u64 = 60;

/// Names every object of `store` once per `every`, a slice at a time, starting one `every`
/// after the call (the first pass of every object comes from its watch).
pub(super) fn sweep<K>(store: Store<K>, every: Duration) -> impl Stream<Item = ObjectRef<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Clone + Default + Eq + Hash,
{
    let tick = every.div_f64(SLICES as f64).max(Duration::from_millis(10));
    ticks(tick).enumerate().flat_map(move |(n, ())| {
        let slice = n as u64 % SLICES;
        let due: Vec<ObjectRef<K>> = store
            .state()
            .iter()
            .map(|o| {
                // A bare reference (no uid or resourceVersion): the queue holds nothing more.
                let mut r = ObjectRef::from_obj(o.as_ref());
                r.extra = Default::default();
                r
            })
            .filter(|r| slice_of(r) == slice)
            .collect();
        futures_util::stream::iter(due)
    })
}

/// The slice of the sweep an object belongs to.
fn slice_of<K: Resource>(r: &ObjectRef<K>) -> u64
where
    K::DynamicType: Hash + Eq,
{
    let mut h = DefaultHasher::new();
    r.namespace.hash(&mut h);
    r.name.hash(&mut h);
    h.finish() % SLICES
}

/// A tick every `period`, the first one `period` from now.
fn ticks(period: Duration) -> impl Stream<Item = ()> {
    let interval = tokio::time::interval_at(Instant::now() + period, period);
    futures_util::stream::unfold(interval, |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::stream;

    use super::*;

    /// Passes run one per key at a time, at most `concurrency` at once, and requeues come
    /// back after their delay (paused clock).
    #[tokio::test(start_paused = true)]
    async fn passes_are_bounded_deduplicated_and_requeued() {
        let log = Arc::new(Mutex::new(Vec::<(u32, Duration)>::new()));
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let cancel = CancellationToken::new();
        let (l, lv, pk) = (log.clone(), live.clone(), peak.clone());
        let pass = move |k: u32| {
            let (l, lv, pk) = (l.clone(), lv.clone(), pk.clone());
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = lv.fetch_add(1, SeqCst) + 1;
                pk.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                lv.fetch_sub(1, SeqCst);
                let mut l = l.lock().unwrap();
                let first = !l.iter().any(|(seen, _)| *seen == k);
                l.push((k, start.elapsed()));
                // Key 1 asks to come back in 5 s once; the others are done.
                (k == 1 && first).then_some(Duration::from_secs(5))
            }
        };
        // 2 is triggered again while its first pass runs (the first two start at once).
        let triggers = stream::iter([1, 2, 3, 2, 4, 5, 6]);
        let stop = cancel.clone();
        let run = tokio::spawn(drive(triggers, 2, pass, cancel));
        tokio::time::sleep(Duration::from_secs(10)).await;
        stop.cancel();
        run.await.unwrap();
        let log = log.lock().unwrap().clone();
        let keys: Vec<u32> = log.iter().map(|(k, _)| *k).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        // Every key once, 2 again after its first pass, 1 again after its requeue.
        assert_eq!(sorted, [1, 1, 2, 2, 3, 4, 5, 6], "{log:?}");
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
        let again = log.iter().filter(|(k, _)| *k == 1).nth(1).unwrap().1;
        assert!(again >= Duration::from_secs(5), "{again:?}");
        assert!(again < Duration::from_secs(6), "{again:?}");
    }

    /// Cancelling lets the passes in flight finish and starts no new one.
    #[tokio::test(start_paused = true)]
    async fn cancel_finishes_the_passes_in_flight_only() {
        let done = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let d = done.clone();
        let pass = move |k: u32| {
            let d = d.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                d.lock().unwrap().push(k);
                None
            }
        };
        let stop = cancel.clone();
        let run = tokio::spawn(drive(stream::iter(0..100), 4, pass, cancel));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.cancel();
        run.await.unwrap();
        assert_eq!(
            done.lock().unwrap().len(),
            8,
            "two rounds of four, no third"
        );
    }

    /// Over one interval, a sweep names every object exactly once, and not before.
    #[tokio::test(start_paused = true)]
    async fn a_sweep_names_each_object_once_per_interval() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::runtime::{reflector, watcher};
        let (store, mut writer) = reflector::store::<ConfigMap>();
        for i in 0..500 {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some("offloading".into());
            cm.metadata.namespace = Some(format!("ns-{i}"));
            writer.apply_watcher_event(&watcher::Event::Apply(cm));
        }
        let every = Duration::from_secs(60);
        let start = Instant::now();
        let named: Vec<(ObjectRef<ConfigMap>, Duration)> = sweep(store, every)
            .map(|r| (r, start.elapsed()))
            .take_until(tokio::time::sleep(every * 2 + Duration::from_millis(500)))
            .collect()
            .await;
        let (first, second): (Vec<_>, Vec<_>) = named.iter().partition(|(_, at)| *at <= every);
        assert!(named.iter().all(|(_, at)| *at >= every / SLICES as u32));
        for round in [first, second] {
            let mut names: Vec<_> = round.iter().map(|(r, _)| r.namespace.clone()).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), 500);
            assert_eq!(round.len(), 500);
        }
    }

    #[test]
    fn slices_spread_objects_and_keep_each_in_its_own() {
        let refs: Vec<ObjectRef<k8s_openapi::api::core::v1::ConfigMap>> = (0..6_000)
            .map(|i| ObjectRef::new("offloading").within(&format!("ns-{i}")))
            .collect();
        let mut per_slice = vec![0usize; SLICES as usize];
        for r in &refs {
            per_slice[slice_of(r) as usize] += 1;
            assert_eq!(slice_of(r), slice_of(&r.clone()));
        }
        let (min, max) = (per_slice.iter().min(), per_slice.iter().max());
        assert!(min.is_some_and(|m| *m > 50), "{per_slice:?}");
        assert!(max.is_some_and(|m| *m < 150), "{per_slice:?}");
    }
}
