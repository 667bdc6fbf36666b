//! `/mutate/namespace` in process: the scheduling label is added when quick offloading is
//! switched on (on CREATE, or by an UPDATE that adds the label), and nowhere else.

mod common;

use common::router::*;
use serde_json::{json, Value};

fn review_body(operation: &str, object: Value, old: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3f1c2f0e-8e53-4a5c-9f8e-2f9b8f6a7d10",
            "kind": {"group": "", "version": "v1", "kind": "Namespace"},
            "resource": {"group": "", "version": "v1", "resource": "namespaces"},
            "name": "shop",
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

fn namespace(labels: Value) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "shop", "labels": labels}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

#[tokio::test]
async fn created_with_quick_offloading_gets_the_scheduling_label() {
    let ns = namespace(json!({"liqo.io/enabled": "true", "kubernetes.io/metadata.name": "shop"}));
    let resp = review_value(
        "/mutate/namespace",
        &review_body("CREATE", ns.clone(), Value::Null),
    )
    .await;
    assert_eq!(resp["uid"], "3f1c2f0e-8e53-4a5c-9f8e-2f9b8f6a7d10");
    let mut want = ns.clone();
    want["metadata"]["labels"]["liqo.io/scheduling-enabled"] = json!("true");
    assert_eq!(apply_response(&ns, &resp), want);
}

#[tokio::test]
async fn update_adding_the_label_gets_it_other_updates_do_not() {
    let plain = namespace(json!({"team": "a"}));
    let enabled = namespace(json!({"team": "a", "liqo.io/enabled": "true"}));
    let resp = review_value(
        "/mutate/namespace",
        &review_body("UPDATE", enabled.clone(), plain.clone()),
    )
    .await;
    let mut want = enabled.clone();
    want["metadata"]["labels"]["liqo.io/scheduling-enabled"] = json!("true");
    assert_eq!(apply_response(&enabled, &resp), want);

    // Already enabled before: the reconciler may have removed the label on purpose.
    let resp = review_value(
        "/mutate/namespace",
        &review_body("UPDATE", enabled.clone(), enabled.clone()),
    )
    .await;
    assert_eq!(
        resp,
        json!({"uid": "3f1c2f0e-8e53-4a5c-9f8e-2f9b8f6a7d10", "allowed": true})
    );
    // The label is being removed.
    let resp = review_value(
        "/mutate/namespace",
        &review_body("UPDATE", plain.clone(), enabled),
    )
    .await;
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none());
}

#[tokio::test]
async fn bad_namespace_objects_are_answered_invalid() {
    let mut body = review_body(
        "CREATE",
        namespace(json!({"liqo.io/enabled": 5})),
        Value::Null,
    );
    let resp = review_value("/mutate/namespace", &body).await;
    assert_eq!(resp["allowed"], false);
    assert!(
        message(&resp).starts_with("cannot read the Namespace"),
        "{resp}"
    );
    body["request"]["kind"]["kind"] = json!("Pod");
    let resp = review_value("/mutate/namespace", &body).await;
    assert!(
        message(&resp).contains("only reviews Namespace objects"),
        "{resp}"
    );
}
