//! The pod gate's live read (SPEC §4): on a cache miss, one read from the API server decides
//! before denying, so a NamespaceOffloading created a moment ago is honoured; a failed read is
//! a denial whose message carries no internal detail. Cache hits never call the API.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::http::app_with_live;
use common::router::*;
use nsoffload::api::NamespaceOffloading;
use nsoffload::server::router::router;
use nsoffload::state::{parse_standalone, LiveLookup, LookupError, LookupFuture};
use serde_json::{json, Value};

#[derive(Debug)]
struct FakeApi {
    answer: Result<Option<&'static str>, &'static str>,
    calls: AtomicUsize,
}

impl LiveLookup for FakeApi {
    fn namespace_offloading<'a>(&'a self, namespace: &'a str) -> LookupFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let result = match self.answer {
            Ok(None) => Ok(None),
            Ok(Some(yaml)) => {
                let mut n: NamespaceOffloading = serde_yaml::from_str(yaml).unwrap();
                n.metadata.namespace = Some(namespace.to_owned());
                Ok(Some(n))
            }
            Err(e) => Err(LookupError(e.to_owned())),
        };
        Box::pin(async move { result })
    }
}

const READY_REMOTE: &str = "kind: NamespaceOffloading\nmetadata: {name: offloading}\n\
    spec: {podOffloadingStrategy: Remote}\nstatus: {offloadingPhase: Ready}\n";

async fn pod_in(
    namespace: &str,
    answer: Result<Option<&'static str>, &'static str>,
) -> (Value, usize) {
    let api = Arc::new(FakeApi {
        answer,
        calls: AtomicUsize::new(0),
    });
    let app = router(app_with_live(
        parse_standalone(STATE).unwrap(),
        Some(api.clone()),
    ));
    let mut input = fixture_json("pod-create-kubectl-apply.json");
    input["request"]["namespace"] = json!(namespace);
    let resp = review(&app, "/mutate/pod", serde_json::to_vec(&input).unwrap()).await;
    (resp, api.calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_just_created_offloading_is_found_by_the_live_read() {
    let (resp, calls) = pod_in("fresh", Ok(Some(READY_REMOTE))).await;
    assert_eq!(calls, 1);
    assert_eq!(resp["allowed"], true);
    let pod = &fixture_json("pod-create-kubectl-apply.json")["request"]["object"];
    let got = apply_response(pod, &resp);
    assert_eq!(
        got["spec"]["affinity"],
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "liqo.io/type", "operator": "In", "values": ["virtual-node"]}]}
        ]}}})
    );
}

#[tokio::test]
async fn missing_everywhere_is_denied_after_one_read() {
    let (resp, calls) = pod_in("nowhere", Ok(None)).await;
    assert_eq!(calls, 1);
    assert_eq!(resp["allowed"], false);
    assert!(
        message(&resp).contains("has no NamespaceOffloading"),
        "{resp}"
    );
}

#[tokio::test]
async fn a_failed_read_denies_without_leaking_the_cause() {
    let (resp, calls) = pod_in(
        "nowhere",
        Err("secret internal detail: connection refused to 10.0.0.1"),
    )
    .await;
    assert_eq!(calls, 1);
    assert_eq!(resp["allowed"], false);
    assert!(message(&resp).contains("could not confirm"), "{resp}");
    assert!(!resp.to_string().contains("10.0.0.1"), "{resp}");
}

#[tokio::test]
async fn cache_hits_never_call_the_api() {
    let (resp, calls) = pod_in("capture-test", Err("must not be called")).await;
    assert_eq!(calls, 0);
    assert_eq!(resp["allowed"], true);
    // A cached but unprocessed offloading is denied from the cache, also without a call.
    let (resp, calls) = pod_in("pending", Err("must not be called")).await;
    assert_eq!((calls, resp["allowed"].clone()), (0, json!(false)));
}
