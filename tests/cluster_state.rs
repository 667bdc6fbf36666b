//! Cluster-mode state without a cluster: the NamespaceOffloading cache against a scripted API
//! server (tower-test) — a malformed NamespaceOffloading is skipped by admission without
//! wedging the list, readiness follows the first list, and the pod webhook then answers from
//! the cache. Also the live read's requests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use nsoffload::cache::offloadings::OffloadingCache;
use nsoffload::state::cluster::KubeLookup;
use nsoffload::state::{LiveLookup, Store};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

fn nsoff(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7",
                     "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
        "spec": spec,
        "status": {"offloadingPhase": "Ready"}
    })
}

fn list(kind: &str, items: Vec<Value>) -> Response<Body> {
    let body = json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items});
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

#[tokio::test]
async fn watches_fill_the_store_and_report_readiness() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let store = Arc::new(Store::default());
    let cancel = CancellationToken::new();
    let cache = OffloadingCache::start(client, store.clone(), cancel.clone());
    let mut ready = cache.synced().receiver();
    assert!(!*ready.borrow());

    let api = tokio::spawn(async move {
        let mut held = Vec::new(); // watch requests are never answered: the watch stays open
        while let Some((req, respond)) = handle.next_request().await {
            let (path, query) = (
                req.uri().path().to_owned(),
                req.uri().query().unwrap_or_default().to_owned(),
            );
            if query.contains("watch=true") {
                held.push(respond);
            } else if path == "/apis/offloading.liqo.io/v1beta1/namespaceoffloadings" {
                respond.send_response(list(
                    "NamespaceOffloadingList",
                    vec![
                        nsoff(
                            "shop",
                            "offloading",
                            json!({"podOffloadingStrategy": "Remote"}),
                        ),
                        nsoff(
                            "broken",
                            "offloading",
                            json!({"podOffloadingStrategy": ["not", "a", "string"]}),
                        ),
                        nsoff("misnamed", "foo", json!({})),
                    ],
                ));
            } else {
                // Admission reads NamespaceOffloadings only: no other watch is started.
                panic!("unexpected request {path}?{query}");
            }
        }
    });

    tokio::time::timeout(Duration::from_secs(5), ready.wait_for(|r| *r))
        .await
        .expect("ready within 5 s")
        .unwrap();
    let snap = store.load();
    assert!(snap.offloading("shop").is_some_and(|e| e.gate.is_allowed()));
    assert!(
        snap.offloading("broken").is_none(),
        "a malformed object is skipped"
    );
    assert!(snap.offloading("misnamed").is_none());
    // The reconciler's view: every object, the malformed one marked, without managed fields.
    assert_eq!(cache.store().state().len(), 3);
    let shop = cache
        .store()
        .get(&kube::runtime::reflector::ObjectRef::new("offloading").within("shop"))
        .unwrap();
    assert!(shop.metadata.managed_fields.is_none());

    // The pod webhook answers from these caches.
    let app = Arc::new(nsoffload::server::router::App {
        admission: nsoffload::admission::Admission {
            store: store.clone(),
            runtime_class: "liqo".into(),
            live: None,
            validation: nsoffload::policy::validate::ValidationConfig {
                home_cluster_id: "home".into(),
            },
        },
        metrics: Arc::new(nsoffload::metrics::Metrics::new()),
    });
    let mut input = common::router::fixture_json("pod-create-kubectl-apply.json");
    input["request"]["namespace"] = json!("shop");
    let resp = common::router::review(
        &nsoffload::server::router::router(app),
        "/mutate/pod",
        serde_json::to_vec(&input).unwrap(),
    )
    .await;
    assert_eq!(resp["allowed"], true);
    assert!(resp["patch"].is_string());

    cancel.cancel();
    api.abort();
}

#[tokio::test]
async fn live_read_gets_the_offloading_or_nothing() {
    use common::mock_api::{pair, run, ApiServer};
    let path = |ns: &str| {
        format!("/apis/offloading.liqo.io/v1beta1/namespaces/{ns}/namespaceoffloadings/offloading")
    };
    let (client, server) = pair();
    let lookup = KubeLookup::new(client);
    let script = |mut server: ApiServer| async move {
        server
            .expect(http::Method::GET, &path("shop"))
            .await
            .ok(&nsoff("shop", "offloading", json!({})));
        server
            .expect(http::Method::GET, &path("gone"))
            .await
            .fail(404, "NotFound");
        server
            .expect(http::Method::GET, &path("down"))
            .await
            .fail(500, "InternalError");
        server.expect_done().await;
    };
    let (found, gone, down) = run(
        async {
            let found = lookup.namespace_offloading("shop").await;
            let gone = lookup.namespace_offloading("gone").await;
            let down = lookup.namespace_offloading("down").await;
            drop(lookup);
            (found, gone, down)
        },
        script(server),
    )
    .await;
    assert_eq!(
        found.unwrap().unwrap().metadata.namespace.as_deref(),
        Some("shop")
    );
    assert!(gone.unwrap().is_none());
    assert!(down.is_err());
}
