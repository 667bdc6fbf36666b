//! Shared by the `offload`/`unoffload` flow tests: stored objects as the API server returns
//! them, and a runner that captures what the command prints.
// Each flow test binary uses a different part of the kit.
#![allow(dead_code)]

use std::time::Duration;

use nsoffload::ctl::progress::Reporter;
use nsoffload::ctl::{Outcome, WaitOptions};
use serde_json::{json, Value};

use crate::common::mock_api::{self, ApiServer};

/// Path of the NamespaceOffloading of `ns`.
pub fn path(ns: &str) -> String {
    format!("/apis/offloading.liqo.io/v1beta1/namespaces/{ns}/namespaceoffloadings/offloading")
}

/// Waits in tests: short polls, a timeout well inside the mock's 1 s.
pub fn quick(timeout_ms: u64) -> WaitOptions {
    WaitOptions {
        timeout: Duration::from_millis(timeout_ms),
        poll: Duration::from_millis(10),
    }
}

/// A stored NamespaceOffloading at `generation`, with `spec` and `status` (omitted when null).
pub fn stored(ns: &str, generation: i64, spec: Value, status: Value) -> Value {
    let mut o = json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceOffloading",
        "metadata": {
            "name": "offloading",
            "namespace": ns,
            "uid": format!("uid-{ns}"),
            "resourceVersion": format!("{generation}0"),
            "generation": generation,
        },
        "spec": spec,
    });
    if !status.is_null() {
        o["status"] = status;
    }
    o
}

/// Per-cluster conditions: selected and ready.
pub fn ready() -> Value {
    json!([
        {"type": "OffloadingRequired", "status": "True", "reason": "ClusterSelected"},
        {"type": "Ready", "status": "True", "reason": "NamespaceCreated", "message": "namespace shop-home exists"},
    ])
}

/// Per-cluster conditions: selected, twin being created.
pub fn creating() -> Value {
    json!([
        {"type": "OffloadingRequired", "status": "True", "reason": "ClusterSelected"},
        {"type": "Ready", "status": "False", "reason": "Creating", "message": "creating namespace shop-home"},
    ])
}

/// Per-cluster conditions: selected, creation failing with `message`.
pub fn failing(message: &str) -> Value {
    json!([
        {"type": "OffloadingRequired", "status": "True", "reason": "ClusterSelected"},
        {"type": "Ready", "status": "False", "reason": "CreationLoopBackOff", "message": message},
    ])
}

/// Per-cluster conditions: not selected, no twin.
pub fn not_selected() -> Value {
    json!([{"type": "OffloadingRequired", "status": "False", "reason": "ClusterNotSelected"}])
}

/// Per-cluster conditions: twin being deleted, with `message`.
pub fn deleting(message: &str) -> Value {
    json!([
        {"type": "OffloadingRequired", "status": "False", "reason": "ClusterNotSelected"},
        {"type": "Ready", "status": "False", "reason": "Terminating", "message": message},
    ])
}

/// A status for `observed` with `phase` and per-cluster conditions.
pub fn status(observed: i64, phase: &str, clusters: Value) -> Value {
    json!({
        "offloadingPhase": phase,
        "remoteNamespaceName": "shop-home",
        "remoteNamespacesConditions": clusters,
        "observedGeneration": observed,
    })
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Printed {
    pub outcomes: Vec<(String, Outcome)>,
    pub out: String,
    pub err: String,
}

/// Runs a flow against a scripted API server, capturing stdout and stderr (`tty` as given).
pub async fn capture<F, S, Fut>(tty: bool, flow: F, script: S) -> Printed
where
    F: for<'r> AsyncFnOnce(&kube::Client, &mut Reporter<'r>) -> Vec<(String, Outcome)>,
    S: FnOnce(ApiServer) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, server) = mock_api::pair();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcomes = mock_api::run(
        async {
            let mut report = Reporter::new(&mut out, &mut err, tty);
            let outcomes = flow(&client, &mut report).await;
            drop(client);
            outcomes
        },
        script(server),
    )
    .await;
    Printed {
        outcomes,
        out: String::from_utf8(out).expect("UTF-8 output"),
        err: String::from_utf8(err).expect("UTF-8 errors"),
    }
}

/// Expects a read of the NamespaceOffloading of `ns` and answers with `object`.
pub async fn answer(server: &mut ApiServer, ns: &str, object: &Value) {
    server.expect(http::Method::GET, &path(ns)).await.ok(object);
}

/// Expects a read of the namespace `ns` and answers with a Namespace labelled `labels`.
pub async fn expect_namespace(server: &mut ApiServer, ns: &str, labels: Value) {
    let namespace = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "uid": format!("ns-{ns}"), "labels": labels},
    });
    let call = server
        .expect(http::Method::GET, &format!("/api/v1/namespaces/{ns}"))
        .await;
    call.ok(&namespace);
}

/// Answers every remaining GET of `ns` with `object` until the client goes away.
pub async fn keep_answering(server: &mut ApiServer, ns: &str, object: &Value) {
    while let Some(call) = server.next_call().await {
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            ("GET", path(ns).as_str())
        );
        call.ok(object);
    }
}
