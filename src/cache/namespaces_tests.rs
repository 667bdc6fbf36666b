//! The namespaces cache: facts, readiness, and which changes are told.

use std::time::Duration;

use futures_util::StreamExt;
use kube::runtime::watcher::Event;
use serde_json::json;

use super::*;

fn ns(name: &str, labels: serde_json::Value, deleting: bool) -> NamespaceMeta {
    let mut meta = json!({"name": name, "labels": labels, "uid": format!("uid-{name}")});
    if deleting {
        meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    serde_json::from_value(json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": meta,
    }))
    .expect("valid metadata")
}

/// The names told to `changes` within a short wait, sorted.
async fn told(changes: &mut (impl Stream<Item = String> + Unpin)) -> Vec<String> {
    let mut names = Vec::new();
    while let Ok(Some(name)) = tokio::time::timeout(Duration::from_millis(50), changes.next()).await
    {
        names.push(name);
    }
    names.sort();
    names
}

#[test]
fn facts_read_the_two_labels_and_the_deletion() {
    let cases = [
        (json!({}), false, NamespaceFacts::default()),
        (
            json!({"liqo.io/scheduling-enabled": "true", "team": "a"}),
            false,
            NamespaceFacts {
                scheduling_enabled: true,
                ..Default::default()
            },
        ),
        (
            json!({"liqo.io/enabled": "true", "liqo.io/scheduling-enabled": "false"}),
            true,
            NamespaceFacts {
                offloading_enabled: true,
                terminating: true,
                ..Default::default()
            },
        ),
        (
            json!({"liqo.io/enabled": "TRUE"}),
            false,
            NamespaceFacts::default(),
        ),
    ];
    for (labels, deleting, want) in cases {
        let meta = ns("a", labels.clone(), deleting);
        assert_eq!(NamespaceFacts::of(&meta.metadata), want, "{labels}");
    }
}

#[tokio::test]
async fn only_changes_of_what_is_read_are_told() {
    let cache = Namespaces::new();
    let mut changes = Box::pin(cache.subscribe());
    assert!(!cache.synced().is_synced());
    cache.apply(Event::Init);
    cache.apply(Event::InitApply(ns("a", json!({}), false)));
    cache.apply(Event::InitApply(ns(
        "b",
        json!({"liqo.io/enabled": "true"}),
        false,
    )));
    assert_eq!(cache.get("a"), None, "a list is visible only once complete");
    cache.apply(Event::InitDone);
    assert!(cache.synced().is_synced());
    assert_eq!(told(&mut changes).await, ["a", "b"]);
    assert!(cache.get("b").is_some_and(|f| f.offloading_enabled));

    // Another tool's label: nothing to tell.
    cache.apply(Event::Apply(ns("a", json!({"team": "x"}), false)));
    assert_eq!(told(&mut changes).await, Vec::<String>::new());
    // The scheduling label, a deletion starting, a namespace gone: each told.
    let labelled = json!({"liqo.io/scheduling-enabled": "true"});
    cache.apply(Event::Apply(ns("a", labelled.clone(), false)));
    cache.apply(Event::Apply(ns(
        "b",
        json!({"liqo.io/enabled": "true"}),
        true,
    )));
    assert_eq!(told(&mut changes).await, ["a", "b"]);
    cache.apply(Event::Delete(ns("b", json!({}), true)));
    assert_eq!(told(&mut changes).await, ["b"]);
    assert_eq!(cache.get("b"), None);
    assert!(cache.get("a").is_some_and(|f| f.scheduling_enabled));
}

#[tokio::test]
async fn a_relist_tells_what_differs_from_before_it() {
    let cache = Namespaces::filled([
        ("same", NamespaceFacts::default()),
        ("gone", NamespaceFacts::default()),
        (
            "relabelled",
            NamespaceFacts {
                scheduling_enabled: true,
                ..Default::default()
            },
        ),
    ]);
    let mut changes = Box::pin(cache.subscribe());
    cache.apply(Event::Init);
    cache.apply(Event::InitApply(ns("same", json!({}), false)));
    cache.apply(Event::InitApply(ns("relabelled", json!({}), false)));
    cache.apply(Event::InitApply(ns("new", json!({}), false)));
    // Until the relist completes, readers see the previous list.
    assert!(cache.get("gone").is_some());
    cache.apply(Event::InitDone);
    assert_eq!(told(&mut changes).await, ["gone", "new", "relabelled"]);
    assert_eq!(cache.get("gone"), None);
    assert_eq!(cache.get("relabelled"), Some(NamespaceFacts::default()));
}

#[tokio::test]
async fn feed_applies_a_watch_until_it_ends() {
    let cache = Namespaces::new();
    let events = futures_util::stream::iter([
        Ok(Event::Init),
        Ok(Event::InitApply(ns(
            "a",
            json!({"liqo.io/enabled": "true"}),
            false,
        ))),
        Err(kube::runtime::watcher::Error::NoResourceVersion),
        Ok(Event::InitDone),
    ]);
    cache.clone().feed(events).await;
    assert!(cache.synced().is_synced());
    assert!(cache.get("a").is_some_and(|f| f.offloading_enabled));
}
