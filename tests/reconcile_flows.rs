//! Reconcile flows (SPEC §7) against scripted API servers: the home cluster and one per
//! remote cluster. Each script asserts every request it receives (method, path, body) and
//! ends with `expect_done`, so any call the reconciler should not make — above all a
//! DELETE of a namespace that is not ours — fails the test.

mod common;
#[path = "reconcile/world.rs"]
mod world;

use futures_util::FutureExt;
use http::Method;
use nsoffload::api::OffloadingPhase;
use serde_json::json;
use world::*;

use common::mock_api::ApiServer;

#[tokio::test]
async fn r1_no_selector_creates_twins_on_every_cluster() {
    let mut w = World::new(local_namespace(false));
    for (id, region) in [("r1", "eu"), ("r2", "us"), ("r3", "ap")] {
        w.node(vnode(id, region)).reachable(id);
    }
    let per_cluster = json!([
        required(true, SELECTED),
        ready("True", "NamespaceCreated", "namespace shop-home exists")
    ]);
    let expected = json!({
        "offloadingPhase": "Ready",
        "remoteNamespaceName": TWIN,
        "remoteNamespacesConditions": {"r1": per_cluster, "r2": per_cluster, "r3": per_cluster},
        "observedGeneration": 3,
        "conditions": top("True", "Ready", "namespace shop-home is ready on 3 remote cluster(s)"),
    });
    let report = w
        .run(
            &nsoff(json!({}), false),
            first_pass_home(expected),
            |_, s| creates_twin(s).boxed(),
        )
        .await
        .expect("reconciled");
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
    assert!(report.status_written);
    let reasons: Vec<_> = report.notices.iter().map(|n| n.reason).collect();
    assert_eq!(reasons, ["TwinReady", "TwinReady", "TwinReady", "Ready"]);
    assert!(report.reachable.values().all(|up| *up));
}

#[tokio::test]
async fn r2_selector_matching_one_cluster_leaves_the_others_alone() {
    let mut w = World::new(local_namespace(false));
    for (id, region) in [("r1", "eu"), ("r2", "us"), ("r3", "ap")] {
        w.node(vnode(id, region)).reachable(id);
    }
    let spec = json!({"clusterSelector": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}
    ]}});
    let not_selected = json!([required(false, NOT_SELECTED)]);
    let expected = json!({
        "offloadingPhase": "Ready",
        "remoteNamespaceName": TWIN,
        "remoteNamespacesConditions": {
            "r1": [required(true, SELECTED), ready("True", "NamespaceCreated", "namespace shop-home exists")],
            "r2": not_selected,
            "r3": not_selected,
        },
        "observedGeneration": 3,
        "conditions": top("True", "Ready", "namespace shop-home is ready on 1 remote cluster(s)"),
    });
    let remote = |id: String, mut s: ApiServer| {
        async move {
            if id == "r1" {
                creates_twin(s).await;
            } else {
                // Not selected: only checked for a twin of ours to delete; there is none.
                s.expect(Method::GET, TWIN_PATH).await.fail(404, "NotFound");
                s.expect_done().await;
            }
        }
        .boxed()
    };
    let report = w
        .run(&nsoff(spec, false), first_pass_home(expected), remote)
        .await
        .expect("reconciled");
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
}

#[tokio::test]
async fn r3_r8_nothing_selected_creates_nothing() {
    // R8: no virtual nodes at all.
    let w = World::new(local_namespace(true));
    let home = |mut home: ApiServer| {
        async move {
            home.expect(Method::PATCH, NSOFF_PATH)
                .await
                .ok(&nsoff_body());
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "NoClusterSelected");
            assert_eq!(status.get("remoteNamespacesConditions"), None);
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&nsoff(json!({}), false), home, |_, s| untouched(s).boxed())
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::NoClusterSelected));
    // A first phase that selects nothing is no news: no Event.
    assert!(report.notices.is_empty(), "{:?}", report.notices);

    // R3: clusters exist, the selector matches none of them.
    let mut w = World::new(local_namespace(true));
    w.node(vnode("r1", "eu")).reachable("r1");
    let spec = json!({"podOffloadingStrategy": "Remote", "clusterSelector": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "region", "operator": "In", "values": ["mars"]}]}
    ]}});
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "NoClusterSelected");
            assert_eq!(
                status["remoteNamespacesConditions"],
                json!({"r1": [required(false, NOT_SELECTED)]})
            );
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let remote = |_, mut s: ApiServer| {
        async move {
            s.expect(Method::GET, TWIN_PATH).await.fail(404, "NotFound");
            s.expect_done().await;
        }
        .boxed()
    };
    let report = w.run(&nsoff(spec, true), home, remote).await.unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::NoClusterSelected));
}

#[tokio::test]
async fn r4_a_foreign_namespace_is_a_conflict_and_is_never_touched() {
    let mut w = World::new(local_namespace(true));
    for (id, region) in [("r1", "eu"), ("r2", "us")] {
        w.node(vnode(id, region)).reachable(id);
    }
    let spec = json!({"namespaceMappingStrategy": "EnforceSameName"});
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "SomeFailed");
            assert_eq!(status["remoteNamespaceName"], "shop");
            let r2 = &status["remoteNamespacesConditions"]["r2"][1];
            assert_eq!(
                (&r2["status"], &r2["reason"]),
                (&json!("False"), &json!("CreationLoopBackOff"))
            );
            let message = r2["message"].as_str().unwrap();
            assert!(
                message.contains("already exists") && message.contains("not owned"),
                "{message}"
            );
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let remote = |id: String, mut s: ApiServer| {
        async move {
            // Never seen created: created at once.
            let create = s.expect(Method::POST, "/api/v1/namespaces").await;
            assert_eq!(create.body["metadata"]["name"], "shop");
            if id == "r2" {
                // Someone else's `shop`: the name is taken; read, then left strictly alone
                // (nothing but that read and the refused create reached r2).
                create.fail(409, "AlreadyExists");
                s.expect(Method::GET, "/api/v1/namespaces/shop")
                    .await
                    .ok(&remote_namespace(
                        "shop",
                        json!({"team": "payments"}),
                        false,
                    ));
            } else {
                let body = create.body.clone();
                create.reply(http::StatusCode::CREATED, &body);
            }
            s.expect_done().await;
        }
        .boxed()
    };
    let report = w.run(&nsoff(spec, true), home, remote).await.unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::SomeFailed));
    assert!(report
        .notices
        .iter()
        .any(|n| n.warning && n.reason == "TwinFailed"));
}

#[tokio::test]
async fn losing_every_cluster_is_reported_as_an_event() {
    // Ready before; now no virtual node is left: the change of phase is news.
    let w = World::new(local_namespace(true));
    let mut before = nsoff(json!({}), true);
    before.status = Some(
        serde_json::from_value(json!({"observedGeneration": 1, "offloadingPhase": "Ready"}))
            .unwrap(),
    );
    let home = writes_phase("NoClusterSelected");
    let report = w
        .run(&before, home, |_, s| untouched(s).boxed())
        .await
        .unwrap();
    let reasons: Vec<_> = report.notices.iter().map(|n| n.reason).collect();
    assert_eq!(reasons, ["NoClusterSelected"]);
}

#[tokio::test]
async fn r5_missing_credentials_fail_one_cluster_while_the_others_proceed() {
    let mut w = World::new(local_namespace(true));
    w.node(vnode("r1", "eu")).reachable("r1");
    w.node(vnode("r3", "ap"))
        .broken("r3", "no credentials for cluster r3: no Secret labelled liqo.io/remote-cluster-id=r3 in namespace nsoffload-system");
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "SomeFailed");
            assert_eq!(
                status["remoteNamespacesConditions"]["r3"][1],
                ready("False", "CreationLoopBackOff",
                      "no credentials for cluster r3: no Secret labelled liqo.io/remote-cluster-id=r3 in namespace nsoffload-system")
            );
            let summary = status["conditions"][1]["message"].as_str().unwrap();
            assert!(summary.contains("r3 (no credentials"), "{summary}");
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&nsoff(json!({}), true), home, |_, s| {
            creates_twin(s).boxed()
        })
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::SomeFailed));
    assert_eq!(report.reachable.get("r3"), Some(&false));
    assert_eq!(report.reachable.get("r1"), Some(&true));
}

#[tokio::test]
async fn an_unanswering_cluster_costs_one_timeout_and_is_reported() {
    let mut w = World::new(local_namespace(true));
    w.node(vnode("r1", "eu")).reachable("r1");
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "AllFailed");
            let message = status["remoteNamespacesConditions"]["r1"][1]["message"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                message.contains("unreachable") && message.contains("no answer"),
                "{message}"
            );
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let remote = |_, mut s: ApiServer| {
        async move {
            let call = s.expect(Method::POST, "/api/v1/namespaces").await;
            // Never answered within the reconciler's deadline.
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            drop(call);
        }
        .boxed()
    };
    let report = w.run(&nsoff(json!({}), true), home, remote).await.unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::AllFailed));
    assert_eq!(report.reachable.get("r1"), Some(&false));
}

#[tokio::test]
async fn a_twin_created_before_a_lost_status_write_is_found_by_its_name() {
    // The status never saw the twin, so it is created at once; the name is taken by our own
    // twin (created by a reconcile whose status write was lost): read, found ours, Ready.
    let mut w = World::new(local_namespace(true));
    w.node(vnode("r1", "eu")).reachable("r1");
    let home = writes_phase("Ready");
    let remote = |_, mut s: ApiServer| {
        async move {
            s.expect(Method::POST, "/api/v1/namespaces")
                .await
                .fail(409, "AlreadyExists");
            s.expect(Method::GET, TWIN_PATH)
                .await
                .ok(&remote_namespace(TWIN, ours(), false));
            s.expect_done().await;
        }
        .boxed()
    };
    let report = w.run(&nsoff(json!({}), true), home, remote).await.unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
}

#[tokio::test]
async fn a_twin_just_created_is_not_asked_about_again_by_the_next_pass() {
    // The controller's memory of twins found ready, shared by two reconciles in a row (the
    // second woken by the first one's own writes).
    let seen = std::sync::Arc::new(nsoffload::reconcile::seen::SeenTwins::new(
        std::time::Duration::from_secs(5),
    ));
    let home = writes_phase("Ready");
    let mut first = World::new(local_namespace(true));
    first
        .node(vnode("r1", "eu"))
        .reachable("r1")
        .seen(seen.clone());
    let report = first
        .run(&nsoff(json!({}), true), home, |_, s| {
            creates_twin(s).boxed()
        })
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
    // Second pass: no request reaches r1; the home cluster gets the same status again (the
    // object here still carries no status, so it is written).
    let mut second = World::new(local_namespace(true));
    second
        .node(vnode("r1", "eu"))
        .reachable("r1")
        .seen(seen.clone());
    let report = second
        .run(&nsoff(json!({}), true), home, |_, s| untouched(s).boxed())
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
}

#[tokio::test]
async fn a_server_error_is_a_failure_with_its_message() {
    let mut w = World::new(local_namespace(true));
    w.node(vnode("r1", "eu")).reachable("r1");
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            let r1 = &status["remoteNamespacesConditions"]["r1"][1];
            assert_eq!(r1["reason"], "CreationLoopBackOff");
            assert_eq!(
                r1["message"],
                "creating namespace shop-home: mock: Forbidden (403)"
            );
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let remote = |_, mut s: ApiServer| {
        async move {
            s.expect(Method::POST, "/api/v1/namespaces")
                .await
                .fail(403, "Forbidden");
            s.expect_done().await;
        }
        .boxed()
    };
    let report = w.run(&nsoff(json!({}), true), home, remote).await.unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::AllFailed));
    // A refusal is an answer: the cluster is reachable.
    assert_eq!(report.reachable.get("r1"), Some(&true));
}

#[tokio::test]
async fn a_home_write_failure_is_an_error_to_retry() {
    let w = World::new(local_namespace(true));
    let home = |mut home: ApiServer| {
        async move {
            home.expect(Method::PATCH, NSOFF_PATH)
                .await
                .fail(409, "Conflict");
            home.expect_done().await;
        }
        .boxed()
    };
    let error = w
        .run(&nsoff(json!({}), false), home, |_, s| untouched(s).boxed())
        .await
        .unwrap_err();
    assert_eq!(error.reason, "finalizer");
    assert!(
        error.to_string().starts_with("adding the finalizer"),
        "{error}"
    );
}
