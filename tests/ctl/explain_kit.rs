//! Shared by the `explain` flow tests: the home cluster as the API server returns it, the
//! expected reads, and golden-file checks.
//!
//! The home cluster has local nodes l1 (`disk=ssd`) and l2 (`disk=hdd`) and one virtual node
//! per peered cluster: v1 on r1 (`region=eu`) and v2 on r2 (`region=us`, `gpu`).
//! Set `NSOFFLOAD_BLESS=1` to rewrite the golden files after an intended change.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use http::Method;
use serde_json::{json, Value};

use crate::common::mock_api::ApiServer;

pub const NS: &str = "shop";

fn node(name: &str, labels: Value, taints: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    })
}

fn virtual_node(name: &str, cluster: &str, extra: Value) -> Value {
    let mut labels = json!({"liqo.io/type": "virtual-node", "liqo.io/remote-cluster-id": cluster});
    labels
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let taint = json!([{"key": "virtual-node.liqo.io/not-allowed", "value": "true", "effect": "NoExecute"}]);
    node(name, labels, taint)
}

/// The home cluster's nodes, listed out of order (the explanation sorts them).
pub fn nodes() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "NodeList",
        "metadata": {"resourceVersion": "1"},
        "items": [
            virtual_node("v2", "r2", json!({"region": "us", "gpu": "true"})),
            node("l2", json!({"disk": "hdd"}), json!([])),
            virtual_node("v1", "r1", json!({"region": "eu"})),
            node("l1", json!({"disk": "ssd"}), json!([])),
        ],
    })
}

/// The NamespaceOffloading of `NS`, created at 10:00, with `spec` and `status`.
pub fn offloading(spec: Value, status: Value) -> Value {
    let mut o = crate::kit::stored(NS, 1, spec, status);
    o["metadata"]["creationTimestamp"] = json!("2026-12-01T10:00:00Z");
    o
}

/// A spec with `strategy` and the selector `terms` (each a list of requirements).
pub fn spec(strategy: &str, terms: Value) -> Value {
    json!({
        "namespaceMappingStrategy": "DefaultName",
        "podOffloadingStrategy": strategy,
        "clusterSelector": {"nodeSelectorTerms": terms},
    })
}

/// The virtual-node toleration the webhook adds.
pub fn tv() -> Value {
    json!({"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"})
}

/// Expects `GET /api/v1/namespaces/NS` and answers with it, labelled for scheduling or not.
pub async fn expect_namespace(s: &mut ApiServer, scheduling: bool) {
    let labels = if scheduling {
        json!({"liqo.io/scheduling-enabled": "true"})
    } else {
        json!({})
    };
    crate::kit::expect_namespace(s, NS, labels).await;
}

/// Expects the read of the NamespaceOffloading; `None` answers 404.
pub async fn expect_offloading(s: &mut ApiServer, object: Option<Value>) {
    let call = s.expect(Method::GET, &crate::kit::path(NS)).await;
    match object {
        Some(o) => call.ok(&o),
        None => call.fail(404, "NotFound"),
    }
}

/// Expects the list of every node and answers with [`nodes`].
pub async fn expect_nodes(s: &mut ApiServer) {
    s.expect(Method::GET, "/api/v1/nodes").await.ok(&nodes());
}

/// Expects the read of pod `name` and answers with `pod`.
pub async fn expect_pod(s: &mut ApiServer, name: &str, pod: &Value) {
    let path = format!("/api/v1/namespaces/{NS}/pods/{name}");
    s.expect(Method::GET, &path).await.ok(pod);
}

/// A stored pod of `NS` owned by ReplicaSet `web-5d8f`, created at `created`, with `spec` and
/// `status`.
pub fn stored_pod(name: &str, created: &str, spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": created,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f",
                "uid": "rs-uid", "controller": true,
            }],
        },
        "spec": spec,
        "status": status,
    })
}

/// Expects the read of ReplicaSet `web-5d8f` and answers with its pod template `spec`.
pub async fn expect_replica_set(s: &mut ApiServer, template_spec: Value) {
    let path = format!("/apis/apps/v1/namespaces/{NS}/replicasets/web-5d8f");
    let set = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-5d8f", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": template_spec},
        },
    });
    s.expect(Method::GET, &path).await.ok(&set);
}

/// Expects the list of the pod's events (by field selector) and answers with `events`, each
/// `(reason, message, lastTimestamp)`.
pub async fn expect_events(s: &mut ApiServer, pod: &str, events: &[(&str, &str, &str)]) {
    let call = s
        .expect(Method::GET, &format!("/api/v1/namespaces/{NS}/events"))
        .await;
    let want = format!("involvedObject.name%3D{pod}%2CinvolvedObject.kind%3DPod");
    assert!(
        call.has_param("fieldSelector", &want),
        "events listed with {}",
        call.query
    );
    let items: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (reason, message, at))| {
            json!({
                "metadata": {"name": format!("{pod}.{i}"), "namespace": NS},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": NS},
                "reason": reason, "message": message, "lastTimestamp": at, "type": "Warning",
            })
        })
        .collect();
    call.ok(&json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": items}));
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/explain")
        .join(name)
}

/// Compares `printed` with the golden file `name` (rewritten under `NSOFFLOAD_BLESS`).
pub fn check_golden(name: &str, printed: &str) {
    let path = golden(name);
    if std::env::var_os("NSOFFLOAD_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, printed).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (NSOFFLOAD_BLESS=1 writes it)", path.display()));
    assert_eq!(
        printed,
        expected,
        "differs from {}:\n{printed}",
        path.display()
    );
}
