//! Leader election against a scripted API server: create, renew, follow another holder,
//! lose a write race, release on shutdown.

mod common;

use common::mock_api::{pair, run};
use http::{Method, StatusCode};
use nsoffload::reconcile::leader::{Elector, Timing};
use serde_json::{json, Value};

const PATH: &str =
    "/apis/coordination.k8s.io/v1/namespaces/nsoffload-system/leases/nsoffload-reconciler";
const COLLECTION: &str = "/apis/coordination.k8s.io/v1/namespaces/nsoffload-system/leases";

fn lease(holder: Option<&str>, renewed: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "nsoffload-reconciler", "namespace": "nsoffload-system", "resourceVersion": "41"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "renewTime": renewed, "acquireTime": "2026-11-22T09:00:00.000000Z", "leaseTransitions": 2},
    })
}

#[tokio::test]
async fn create_renew_follow_race_and_release() {
    let (client, mut api) = pair();
    let mut elector = Elector::new(
        client,
        "nsoffload-system",
        "nsoffload-reconciler",
        "me".to_owned(),
        Timing::default(),
    );
    let script = async move {
        // No Lease yet: created, held by us.
        api.expect(Method::GET, PATH).await.fail(404, "NotFound");
        let call = api.expect(Method::POST, COLLECTION).await;
        assert_eq!(call.body["spec"]["holderIdentity"], "me");
        assert_eq!(call.body["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(call.body["spec"]["leaseTransitions"], 0);
        let body = call.body.clone();
        call.reply(StatusCode::CREATED, &body);
        // Ours: renewed with the resourceVersion read (optimistic concurrency).
        api.expect(Method::GET, PATH)
            .await
            .ok(&lease(Some("me"), "2026-11-22T10:00:00.000000Z"));
        let call = api.expect(Method::PUT, PATH).await;
        assert_eq!(call.body["metadata"]["resourceVersion"], "41");
        assert_eq!(call.body["spec"]["holderIdentity"], "me");
        assert_eq!(
            call.body["spec"]["leaseTransitions"], 2,
            "a renewal is not a transition"
        );
        assert_ne!(
            call.body["spec"]["renewTime"],
            "2026-11-22T10:00:00.000000Z"
        );
        let body = call.body.clone();
        call.ok(&body);
        // Someone else renewed it meanwhile: we follow, and write nothing.
        api.expect(Method::GET, PATH)
            .await
            .ok(&lease(Some("other"), "2026-11-22T10:00:05.000000Z"));
        // Free again: taken over, but another replica wins the write race.
        api.expect(Method::GET, PATH)
            .await
            .ok(&lease(None, "2026-11-22T10:00:05.000000Z"));
        let call = api.expect(Method::PUT, PATH).await;
        assert_eq!(call.body["spec"]["leaseTransitions"], 3);
        call.fail(409, "Conflict");
        // Released on shutdown only when ours.
        api.expect(Method::GET, PATH)
            .await
            .ok(&lease(Some("other"), "2026-11-22T10:00:06.000000Z"));
        api.expect(Method::GET, PATH)
            .await
            .ok(&lease(Some("me"), "2026-11-22T10:00:07.000000Z"));
        let call = api.expect(Method::PUT, PATH).await;
        assert_eq!(call.body["spec"]["holderIdentity"], Value::Null);
        assert_eq!(call.body["spec"]["leaseDurationSeconds"], 1);
        let body = call.body.clone();
        call.ok(&body);
        api.expect_done().await;
    };
    let rounds = async move {
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(elector.round().await.expect("round"));
        }
        elector.release().await.expect("release (not ours)");
        elector.release().await.expect("release (ours)");
        seen
    };
    assert_eq!(run(rounds, script).await, [true, true, false, false]);
}

#[tokio::test]
async fn an_api_error_is_reported_not_hidden() {
    let (client, mut api) = pair();
    let mut elector = Elector::new(
        client,
        "nsoffload-system",
        "nsoffload-reconciler",
        "me".to_owned(),
        Timing::default(),
    );
    let script = async move {
        api.expect(Method::GET, PATH).await.fail(403, "Forbidden");
        api.expect_done().await;
    };
    let result = run(
        async move { elector.round().await.map_err(|e| e.to_string()) },
        script,
    )
    .await;
    assert!(result.unwrap_err().contains("Forbidden"));
}
