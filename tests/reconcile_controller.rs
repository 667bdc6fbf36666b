//! The controllers' wiring, end to end in-process: `reconcile::run` against a fake API server
//! that answers lists, holds watches open, and records writes. It proves that the watches,
//! caches and triggers feed a reconcile, that its status is written, that metrics follow,
//! and that cancellation stops everything.

mod common;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use nsoffload::cache::offloadings::OffloadingCache;
use nsoffload::metrics::Metrics;
use nsoffload::reconcile::{run, ReconcilerConfig};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_test::mock;

fn list(items: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "10"}, "items": items})
}

fn nsoff() -> Value {
    json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": "offloading", "namespace": "shop", "uid": "u1", "generation": 1, "resourceVersion": "5"},
        "spec": {},
    })
}

fn respond(send: mock::SendResponse<Response<Body>>, status: StatusCode, body: &Value) {
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    send.send_response(response);
}

/// Answers by path, whatever the order the controllers ask in; sends each status write.
async fn fake_api(
    mut handle: mock::Handle<Request<Body>, Response<Body>>,
    statuses: mpsc::UnboundedSender<Value>,
) {
    let mut watches = Vec::new();
    while let Some((request, send)) = handle.next_request().await {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().unwrap_or_default().to_owned();
        if query.contains("watch=true") {
            watches.push(send); // held open: an idle watch
            continue;
        }
        let node = json!({"metadata": {"name": "vk-r1", "labels": {"liqo.io/type": "virtual-node", "liqo.io/remote-cluster-id": "r1"}}});
        let shop = json!({"metadata": {"name": "shop", "labels": {}}});
        match (&parts.method, path.as_str()) {
            (&Method::GET, "/apis/offloading.liqo.io/v1beta1/namespaceoffloadings") => respond(send, StatusCode::OK, &list(json!([nsoff()]))),
            (&Method::GET, "/api/v1/nodes") => {
                assert!(query.contains("labelSelector=liqo.io%2Ftype%3Dvirtual-node"), "{query}");
                respond(send, StatusCode::OK, &list(json!([node])))
            }
            (&Method::GET, "/api/v1/namespaces/nsoffload-system/secrets") => respond(send, StatusCode::OK, &list(json!([]))),
            (&Method::GET, "/api/v1/namespaces") => respond(send, StatusCode::OK, &list(json!([shop]))),
            (&Method::PATCH, "/apis/offloading.liqo.io/v1beta1/namespaces/shop/namespaceoffloadings/offloading") => {
                respond(send, StatusCode::OK, &nsoff())
            }
            (&Method::PATCH, "/apis/offloading.liqo.io/v1beta1/namespaces/shop/namespaceoffloadings/offloading/status") => {
                let _ = statuses.send(body[0]["value"].clone());
                respond(send, StatusCode::OK, &nsoff())
            }
            (&Method::PATCH, "/api/v1/namespaces/shop") => respond(send, StatusCode::OK, &shop),
            (&Method::POST, p) if p.ends_with("/events") => respond(send, StatusCode::CREATED, &body),
            (method, p) => panic!("unexpected request {method} {p}?{query}"),
        }
    }
}

#[tokio::test]
async fn a_listed_offloading_is_reconciled_and_cancellation_stops_the_controllers() {
    nsoffload::server::tls::install_crypto_provider();
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let (tx, mut statuses) = mpsc::unbounded_channel();
    let server = tokio::spawn(fake_api(handle, tx));
    let metrics = Arc::new(Metrics::new());
    let cancel = CancellationToken::new();
    let config = ReconcilerConfig {
        home_id: "home".to_owned(),
        namespace: "nsoffload-system".to_owned(),
        resync: Duration::from_secs(300),
        remote_timeout: Duration::from_secs(1),
        instance: "test".to_owned(),
        concurrency: 4,
        runtime_class: "liqo".to_owned(),
        remote_limits: nsoffload::reconcile::ratelimit::ApiLimits {
            qps: 100.0,
            burst: 100,
        },
    };
    // The NamespaceOffloading cache is the process's (admission's too), started beside it.
    let admission = Arc::new(nsoffload::state::Store::default());
    let offloadings = OffloadingCache::start(client.clone(), admission.clone(), cancel.clone());
    let controllers = tokio::spawn(run(
        client,
        config,
        metrics.reconcile.clone(),
        offloadings,
        cancel.clone(),
    ));

    let status = tokio::time::timeout(Duration::from_secs(10), statuses.recv())
        .await
        .expect("a status written within 10 s")
        .expect("status");
    // r1 has a virtual node but no credentials: every selected cluster fails.
    assert_eq!(status["offloadingPhase"], "AllFailed", "{status}");
    assert_eq!(
        status["remoteNamespacesConditions"]["r1"][1]["message"],
        "no credentials for cluster r1: no Secret labelled liqo.io/remote-cluster-id=r1 in namespace nsoffload-system"
    );
    // Admission reads the same cache: the namespace has its entry.
    assert!(admission.load().offloading("shop").is_some());
    // Metrics follow the reconcile (the report is recorded right after the write).
    let text = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let text = metrics.encode();
            if text.contains("nsoffload_reconciles_total{outcome=\"ok\"} 1") {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the reconcile counted");
    assert!(
        text.contains("nsoffload_namespace_offloadings{phase=\"AllFailed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("nsoffload_namespace_offloadings{phase=\"Ready\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("nsoffload_remote_cluster_reachable{cluster=\"r1\"} 0"),
        "{text}"
    );

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), controllers)
        .await
        .expect("the controllers stop within 10 s of cancellation")
        .expect("no panic");
    server.abort();
}
