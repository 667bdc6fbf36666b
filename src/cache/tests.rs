use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeStatus, Secret};
use kube::runtime::watcher::Event;
use serde_json::json;

use super::*;

/// A virtual node whose status was last reported at second `heartbeat` of the minute.
fn node(name: &str, cluster: &str, heartbeat: u32) -> Node {
    let heartbeat = format!("2026-12-05T10:00:{heartbeat:02}Z");
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"liqo.io/type": "virtual-node",
            "liqo.io/remote-cluster-id": cluster}},
        "status": {"conditions": [{"type": "Ready", "status": "True",
            "lastHeartbeatTime": heartbeat}]},
    }))
    .unwrap()
}

fn secret(name: &str, cluster: &str, rv: &str) -> Secret {
    serde_json::from_value(
        json!({"metadata": {"name": name, "uid": format!("u-{name}"),
        "resourceVersion": rv, "labels": {"liqo.io/remote-cluster-id": cluster}}}),
    )
    .unwrap()
}

#[test]
fn a_status_heartbeat_is_not_a_selection_change() {
    let mut t = NodeTracker::default();
    assert!(t.changed(&Event::Apply(node("vk1", "r1", 0))));
    assert!(!t.changed(&Event::Apply(node("vk1", "r1", 10))));
    let mut moved = node("vk1", "r1", 20);
    moved
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("region".into(), "eu".into());
    assert!(t.changed(&Event::Apply(moved.clone())), "a new label");
    assert!(
        t.changed(&Event::Apply(node("vk1", "r2", 4))),
        "a new cluster id"
    );
    assert!(t.changed(&Event::Delete(node("vk1", "r2", 4))), "gone");
    assert!(
        !t.changed(&Event::Delete(node("vk1", "r2", 4))),
        "already gone"
    );
}

#[test]
fn a_relist_changes_selection_only_when_the_nodes_differ() {
    let mut t = NodeTracker::default();
    let list = |t: &mut NodeTracker, nodes: Vec<Node>| {
        let mut changed = t.changed(&Event::Init);
        for n in nodes {
            changed |= t.changed(&Event::InitApply(n));
        }
        changed | t.changed(&Event::InitDone)
    };
    assert!(list(
        &mut t,
        vec![node("vk1", "r1", 1), node("vk2", "r2", 1)]
    ));
    assert!(!list(
        &mut t,
        vec![node("vk2", "r2", 2), node("vk1", "r1", 2)]
    ));
    assert!(list(&mut t, vec![node("vk1", "r1", 3)]), "vk2 disappeared");
}

#[test]
fn secret_changes_name_their_cluster() {
    let mut t = SecretTracker::default();
    assert_eq!(t.changed(&Event::Apply(secret("c1", "r1", "1"))), ["r1"]);
    assert!(t.changed(&Event::Apply(secret("c1", "r1", "1"))).is_empty());
    assert_eq!(t.changed(&Event::Apply(secret("c1", "r1", "2"))), ["r1"]);
    assert_eq!(
        t.changed(&Event::Apply(secret("c1", "r3", "3"))),
        ["r1", "r3"]
    );
    assert_eq!(t.changed(&Event::Delete(secret("c1", "r3", "3"))), ["r3"]);
    t.changed(&Event::Init);
    t.changed(&Event::InitApply(secret("c2", "r2", "1")));
    assert_eq!(t.changed(&Event::InitDone), ["r2"]);
    t.changed(&Event::Init);
    t.changed(&Event::InitApply(secret("c2", "r2", "1")));
    assert!(t.changed(&Event::InitDone).is_empty(), "same list");
}

#[test]
fn trimming_keeps_what_selection_reads() {
    let mut n = node("vk1", "r1", 1);
    n.status = Some(NodeStatus::default());
    n.metadata.managed_fields = Some(vec![Default::default()]);
    let labels = n.metadata.labels.clone();
    trim_node(&mut n);
    assert_eq!(n.metadata.labels, labels);
    assert_eq!(n.metadata.name.as_deref(), Some("vk1"));
    assert!(n.status.is_none() && n.metadata.managed_fields.is_none());
}

/// Every waiter wakes when the store syncs, however many wait (the single-waker primitive
/// of kube-runtime woke only the last one).
#[tokio::test]
async fn every_waiter_sees_readiness() {
    let (tx, synced) = Synced::new();
    let woke = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let waiters: Vec<_> = (0..64)
        .map(|_| {
            let (s, woke) = (synced.clone(), woke.clone());
            tokio::spawn(async move {
                if s.wait(Duration::from_secs(5)).await {
                    woke.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    tx.send_replace(true);
    let all = tokio::time::timeout(
        Duration::from_secs(1),
        futures_util::future::join_all(waiters),
    );
    assert!(all.await.is_ok(), "some waiter did not wake within 1 s");
    assert_eq!(woke.load(std::sync::atomic::Ordering::SeqCst), 64);
    // Late waiters see it at once; an unsynced store's wait is bounded.
    assert!(synced.wait(Duration::from_millis(1)).await);
    let (_tx, never) = Synced::new();
    assert!(!never.wait(Duration::from_millis(10)).await);
}

#[tokio::test]
async fn all_synced_is_bounded_in_total() {
    let (_a, never) = Synced::new();
    let done = Synced::done();
    let start = tokio::time::Instant::now();
    assert!(!all_synced(&[&done, &never, &never], Duration::from_millis(50)).await);
    assert!(start.elapsed() < Duration::from_millis(500));
    assert!(all_synced(&[&done, &done], Duration::from_millis(1)).await);
}

#[test]
fn offloadings_are_cached_typed_and_trimmed_and_a_malformed_one_says_why() {
    let raw = |spec: serde_json::Value| -> kube::api::DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "offloading.liqo.io/v1beta1",
            "kind": "NamespaceOffloading",
            "metadata": {
                "name": "offloading", "namespace": "shop", "generation": 2,
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\":{}}",
                    "offloading.liqo.io/orphan-unreachable": "true",
                },
            },
            "spec": spec,
        }))
        .expect("object")
    };
    let good = typed_offloading(raw(serde_json::json!({"podOffloadingStrategy": "Remote"})));
    assert_eq!(
        good.spec.pod_offloading_strategy,
        crate::api::PodOffloadingStrategy::Remote
    );
    assert_eq!(good.metadata.managed_fields, None);
    let annotations = good.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.keys().collect::<Vec<_>>(),
        ["offloading.liqo.io/orphan-unreachable"]
    );
    let bad = typed_offloading(raw(serde_json::json!({"podOffloadingStrategy": 7})));
    assert_eq!(bad.metadata.name.as_deref(), Some("offloading"));
    assert_eq!(bad.metadata.generation, Some(2));
    let why = bad.metadata.annotations.unwrap_or_default();
    assert!(
        why.get(UNREADABLE_ANNOTATION)
            .is_some_and(|m| m.contains("podOffloadingStrategy") || m.contains("invalid type")),
        "{why:?}"
    );
}
