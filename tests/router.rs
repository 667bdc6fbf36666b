//! The webhook router in process, fed with AdmissionReview bodies a real API server sent
//! (`tests/fixtures/`): every answer is checked whole, patches are applied to the request's
//! pod and the result compared with the expected pod.

mod common;

use common::router::*;
use serde_json::{json, Value};

fn tv() -> Value {
    json!({"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"})
}

fn vin() -> Value {
    json!({"key": "liqo.io/type", "operator": "In", "values": ["virtual-node"]})
}

fn region(v: &str) -> Value {
    json!({"key": "region", "operator": "In", "values": [v]})
}

#[tokio::test]
async fn kubectl_pod_is_mutated_for_remote() {
    let body = fixture("pod-create-kubectl-apply.json");
    let input = fixture_json("pod-create-kubectl-apply.json");
    let resp = review(&webhooks(), "/mutate/pod?timeout=10s", body).await;
    assert_eq!(resp["uid"], input["request"]["uid"]);
    assert_eq!(resp["allowed"], true);
    let pod = &input["request"]["object"];
    let mut want = pod.clone();
    want["spec"]["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(tv());
    want["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [region("europe"), vin()]}]}}});
    assert_eq!(apply_response(pod, &resp), want);
}

#[tokio::test]
async fn serviceaccount_pod_gets_only_the_toleration_for_local_and_remote() {
    let input = fixture_json("pod-create-with-serviceaccount.json");
    let resp = review(
        &webhooks(),
        "/mutate/pod",
        fixture("pod-create-with-serviceaccount.json"),
    )
    .await;
    let pod = &input["request"]["object"];
    let mut want = pod.clone();
    want["spec"]["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(tv());
    assert_eq!(apply_response(pod, &resp), want);
}

#[tokio::test]
async fn controller_pod_uses_the_request_namespace_and_keeps_anti_affinity() {
    let input = fixture_json("pod-create-replicaset-synthetic.json");
    let pod = &input["request"]["object"];
    assert!(
        pod["metadata"].get("namespace").is_none(),
        "fixture has no metadata.namespace"
    );
    let resp = review(
        &webhooks(),
        "/mutate/pod",
        fixture("pod-create-replicaset-synthetic.json"),
    )
    .await;
    let mut want = pod.clone();
    want["spec"]["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(tv());
    want["spec"]["affinity"]["nodeAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [region("europe"), vin()]},
        {"matchExpressions": [region("us-west"), vin()]},
    ]}});
    let got = apply_response(pod, &resp);
    assert_eq!(got, want);
    assert_eq!(
        got["spec"]["affinity"]["podAntiAffinity"],
        pod["spec"]["affinity"]["podAntiAffinity"]
    );
}

#[tokio::test]
async fn v1beta1_reviews_are_answered_in_v1beta1() {
    let mut input = fixture_json("pod-create-kubectl-apply.json");
    input["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (_, bytes) = call(
        &webhooks(),
        "POST",
        "/mutate/pod",
        Some("application/json"),
        serde_json::to_vec(&input).unwrap().into(),
    )
    .await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(v["response"]["uid"], input["request"]["uid"]);
}

#[tokio::test]
async fn pods_are_denied_until_offloading_is_ready() {
    for (ns, needle) in [
        ("nowhere", "has no NamespaceOffloading"),
        ("pending", "not been processed"),
    ] {
        let mut input = fixture_json("pod-create-kubectl-apply.json");
        input["request"]["namespace"] = json!(ns);
        let resp = review_value("/mutate/pod", &input).await;
        assert_eq!(resp["uid"], input["request"]["uid"]);
        assert_eq!(resp["allowed"], false);
        assert_eq!(resp["status"]["code"], 403);
        assert!(message(&resp).contains(needle), "{resp}");
        assert!(resp.get("patch").is_none());
    }
}

#[tokio::test]
async fn namespace_offloading_fixtures_are_validated() {
    let app = webhooks();
    let create = review(
        &app,
        "/validate/namespace-offloading",
        fixture("namespaceoffloading-create.json"),
    )
    .await;
    assert_eq!(
        create,
        json!({"uid": fixture_json("namespaceoffloading-create.json")["request"]["uid"], "allowed": true})
    );

    // LocalAndRemote → Remote: allowed with one warning.
    let update = review(
        &app,
        "/validate/namespace-offloading",
        fixture("namespaceoffloading-update.json"),
    )
    .await;
    assert_eq!(update["allowed"], true);
    assert_eq!(
        update["warnings"].as_array().map(Vec::len),
        Some(1),
        "{update}"
    );

    let status = review(
        &app,
        "/validate/namespace-offloading",
        fixture("namespaceoffloading-status-update.json"),
    )
    .await;
    assert_eq!(
        status,
        json!({"uid": fixture_json("namespaceoffloading-status-update.json")["request"]["uid"], "allowed": true})
    );
}

#[tokio::test]
async fn invalid_namespace_offloading_is_denied_with_the_field() {
    let mut input = fixture_json("namespaceoffloading-create.json");
    input["request"]["object"]["metadata"]["name"] = json!("foo");
    let resp = review_value("/validate/namespace-offloading", &input).await;
    assert_eq!(resp["allowed"], false);
    assert!(message(&resp).contains("metadata.name"), "{resp}");
}

#[tokio::test]
async fn a_misrouted_kind_is_answered_invalid_with_its_uid() {
    let input = fixture_json("namespaceoffloading-create.json");
    let resp = review(
        &webhooks(),
        "/mutate/pod",
        fixture("namespaceoffloading-create.json"),
    )
    .await;
    assert_eq!(resp["uid"], input["request"]["uid"]);
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 400);
    let resp = review(
        &webhooks(),
        "/validate/namespace-offloading",
        fixture("pod-create-kubectl-apply.json"),
    )
    .await;
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 400);
}

#[tokio::test]
async fn non_create_pod_operations_pass_untouched() {
    let mut input = fixture_json("pod-create-kubectl-apply.json");
    input["request"]["operation"] = json!("UPDATE");
    let resp = review_value("/mutate/pod", &input).await;
    assert_eq!(
        resp,
        json!({"uid": input["request"]["uid"], "allowed": true})
    );
}

#[tokio::test]
async fn unreadable_pods_are_answered_not_panicked() {
    let mut input = fixture_json("pod-create-kubectl-apply.json");
    input["request"]["namespace"] = json!("shop");
    input["request"]["object"]["spec"]["tolerations"] = json!("not a list");
    let resp = review_value("/mutate/pod", &input).await;
    assert_eq!(resp["allowed"], false);
    assert!(message(&resp).starts_with("cannot read the Pod"), "{resp}");
    input["request"]["object"] = Value::Null;
    let resp = review_value("/mutate/pod", &input).await;
    assert_eq!(resp["status"]["message"], "the request has no object");
}
