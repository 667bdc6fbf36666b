use std::time::Duration;

use futures_util::StreamExt;
use kube::api::DynamicObject;
use serde_json::{json, Value};

use super::*;
use crate::cache::typed_offloading;

fn nsoff(namespace: &str, name: &str, rv: &str, spec: Value) -> NamespaceOffloading {
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
        "spec": spec,
        "status": {"offloadingPhase": "Ready"},
    }))
    .unwrap();
    typed_offloading(obj)
}

fn remote(namespace: &str, rv: &str) -> NamespaceOffloading {
    nsoff(
        namespace,
        NSOFF_NAME,
        rv,
        json!({"podOffloadingStrategy": "Remote"}),
    )
}

/// The namespaces admission has an entry for, sorted.
fn admitted(store: &state::Store) -> Vec<String> {
    let snap = store.load();
    let mut names: Vec<String> = ["a", "b", "c", "broken", "misnamed"]
        .into_iter()
        .filter(|ns| snap.offloading(ns).is_some())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

async fn next_key<S: futures_util::Stream<Item = ObjectRef<NamespaceOffloading>> + Unpin>(
    s: &mut S,
) -> Option<String> {
    let r = tokio::time::timeout(Duration::from_millis(200), s.next())
        .await
        .ok()
        .flatten()?;
    Some(format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
}

async fn keys<S: futures_util::Stream<Item = ObjectRef<NamespaceOffloading>> + Unpin>(
    s: &mut S,
) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(k) = next_key(s).await {
        out.push(k);
    }
    out.sort();
    out
}

#[tokio::test]
async fn nothing_is_published_or_synced_before_the_first_complete_list() {
    let admission = Arc::new(state::Store::default());
    let (cache, mut feeder) = OffloadingCache::new(admission.clone());
    feeder.apply(Event::Init);
    feeder.apply(Event::InitApply(remote("a", "1")));
    feeder.publish();
    assert!(!cache.synced().is_synced());
    assert!(admitted(&admission).is_empty());
    assert!(cache.store().state().is_empty());
    feeder.apply(Event::InitDone);
    feeder.publish();
    assert!(cache.synced().is_synced());
    assert_eq!(admitted(&admission), ["a"]);
    assert_eq!(cache.store().state().len(), 1);
}

#[tokio::test]
async fn admission_entries_follow_the_store() {
    let admission = Arc::new(state::Store::default());
    let (cache, mut feeder) = OffloadingCache::new(admission.clone());
    feeder.apply(Event::Init);
    for o in [
        remote("a", "1"),
        nsoff(
            "broken",
            NSOFF_NAME,
            "2",
            json!({"podOffloadingStrategy": 5}),
        ),
        nsoff("misnamed", "other", "3", json!({})),
    ] {
        feeder.apply(Event::InitApply(o));
    }
    feeder.apply(Event::InitDone);
    feeder.publish();
    // Every object is cached (the reconciler reports the broken one); admission has entries
    // only for readable objects named `offloading`.
    assert_eq!(cache.store().state().len(), 3);
    assert_eq!(admitted(&admission), ["a"]);
    assert!(admission.load().offloading("a").unwrap().gate.is_allowed());

    feeder.apply(Event::Apply(remote("b", "4")));
    feeder.apply(Event::Delete(remote("a", "1")));
    // An object named otherwise never removes the namespace's entry.
    feeder.apply(Event::Delete(nsoff("b", "other", "5", json!({}))));
    feeder.publish();
    assert_eq!(admitted(&admission), ["b"]);

    // A relist replaces everything once complete.
    feeder.apply(Event::Init);
    feeder.apply(Event::InitApply(remote("c", "6")));
    feeder.publish();
    assert_eq!(admitted(&admission), ["b"], "nothing changes mid-list");
    feeder.apply(Event::InitDone);
    feeder.publish();
    assert_eq!(admitted(&admission), ["c"]);
    assert_eq!(cache.store().state().len(), 1);
}

#[tokio::test]
async fn an_object_that_turns_unreadable_loses_its_entry() {
    let admission = Arc::new(state::Store::default());
    let (_cache, mut feeder) = OffloadingCache::new(admission.clone());
    feeder.apply(Event::Init);
    feeder.apply(Event::InitApply(remote("a", "1")));
    feeder.apply(Event::InitDone);
    feeder.apply(Event::Apply(nsoff(
        "a",
        NSOFF_NAME,
        "2",
        json!({"podOffloadingStrategy": ["x"]}),
    )));
    feeder.publish();
    assert!(admitted(&admission).is_empty());
}

#[tokio::test]
async fn subscribers_hear_of_every_change_deletions_included() {
    let admission = Arc::new(state::Store::default());
    let (cache, mut feeder) = OffloadingCache::new(admission);
    let mut early = Box::pin(cache.subscribe(None));
    feeder.apply(Event::Init);
    feeder.apply(Event::InitApply(remote("a", "1")));
    feeder.apply(Event::InitApply(remote("b", "2")));
    assert!(
        keys(&mut early).await.is_empty(),
        "nothing before the list is complete"
    );
    feeder.apply(Event::InitDone);
    assert_eq!(keys(&mut early).await, ["a/offloading", "b/offloading"]);

    // A late subscriber starts with what is cached.
    let mut late = Box::pin(cache.subscribe(None));
    assert_eq!(keys(&mut late).await, ["a/offloading", "b/offloading"]);

    feeder.apply(Event::Apply(remote("a", "3")));
    feeder.apply(Event::Apply(remote("a", "4")));
    feeder.apply(Event::Delete(remote("b", "2")));
    for s in [&mut early, &mut late] {
        assert_eq!(keys(s).await, ["a/offloading", "b/offloading"]);
    }
    assert!(cache
        .store()
        .get(&ObjectRef::new(NSOFF_NAME).within("b"))
        .is_none());
}

#[tokio::test]
async fn an_observer_sees_every_version_in_order_while_subscribed() {
    let admission = Arc::new(state::Store::default());
    let (cache, mut feeder) = OffloadingCache::new(admission);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let observe: Observer = Arc::new(move |o: &NamespaceOffloading| {
        log.lock()
            .unwrap()
            .push(o.metadata.resource_version.clone().unwrap());
    });
    let subscription = cache.subscribe(Some(observe));
    feeder.apply(Event::Init);
    feeder.apply(Event::InitDone);
    for rv in ["1", "2", "3"] {
        feeder.apply(Event::Apply(remote("a", rv)));
    }
    assert_eq!(*seen.lock().unwrap(), ["1", "2", "3"]);
    drop(subscription);
    feeder.apply(Event::Apply(remote("a", "4")));
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "no observer after the stream is dropped"
    );
}

/// The list readiness waits for is served by the API server's watch cache: any version, and
/// no limit (with one, only the first page would come from the cache).
#[test]
fn listed_from_the_watch_cache_in_one_response() {
    let config = list_from_cache();
    assert_eq!(config.list_semantic, watcher::ListSemantic::Any);
    assert_eq!(config.page_size, None);
}
