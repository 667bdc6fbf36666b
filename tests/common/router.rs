//! In-process calls to the webhook router (no sockets), and the state the tests share.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt;
use nsoffload::state::parse_standalone;
use serde_json::Value;
use tower::ServiceExt;

/// State for the fixtures' namespaces: `capture-test` is Remote to Europe, `sa-test` is
/// LocalAndRemote to every cluster, `shop` is Remote to Europe or the US west; `pending` was
/// never processed.
pub const STATE: &str = r#"
kind: NamespaceOffloading
metadata: {name: offloading, namespace: capture-test}
spec:
  podOffloadingStrategy: Remote
  clusterSelector: {nodeSelectorTerms: [{matchExpressions: [{key: region, operator: In, values: [europe]}]}]}
status: {offloadingPhase: Ready}
---
kind: NamespaceOffloading
metadata: {name: offloading, namespace: sa-test}
spec: {podOffloadingStrategy: LocalAndRemote}
status: {offloadingPhase: Ready}
---
kind: NamespaceOffloading
metadata: {name: offloading, namespace: shop}
spec:
  podOffloadingStrategy: Remote
  clusterSelector:
    nodeSelectorTerms:
    - matchExpressions: [{key: region, operator: In, values: [europe]}]
    - matchExpressions: [{key: region, operator: In, values: [us-west]}]
status: {offloadingPhase: Ready}
---
kind: NamespaceOffloading
metadata: {name: offloading, namespace: pending}
spec: {}
"#;

/// The webhook router over [`STATE`].
pub fn webhooks() -> Router {
    nsoffload::server::router::router(super::http::app(
        parse_standalone(STATE).expect("test state parses"),
    ))
}

/// A fixture's bytes, from `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture exists")
}

/// A fixture as JSON.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// Sends one request through the router.
pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Body,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

/// POSTs a JSON body and expects an AdmissionReview answer (HTTP 200); returns its `response`.
pub async fn review(app: &Router, path: &str, body: Vec<u8>) -> Value {
    let (status, bytes) = call(
        app,
        "POST",
        path,
        Some("application/json"),
        Body::from(body),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let v: Value = serde_json::from_slice(&bytes).expect("answer is JSON");
    assert_eq!(v["kind"], "AdmissionReview");
    v["response"].clone()
}

/// Applies the response's patch (if any) to `object` and returns the result.
pub fn apply_response(object: &Value, response: &Value) -> Value {
    let mut out = object.clone();
    if let Some(p) = response["patch"].as_str() {
        assert_eq!(response["patchType"], "JSONPatch");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(p)
            .expect("patch is base64");
        let patch: json_patch::Patch = serde_json::from_slice(&raw).expect("patch is a JSON Patch");
        json_patch::patch(&mut out, &patch).expect("patch applies");
    }
    out
}

/// Reviews a JSON request (a fixture after edits) through a fresh router.
pub async fn review_value(path: &str, input: &Value) -> Value {
    review(&webhooks(), path, serde_json::to_vec(input).unwrap()).await
}

/// The status message of a refused answer ("" when there is none).
pub fn message(response: &Value) -> &str {
    response["status"]["message"].as_str().unwrap_or("")
}
