//! Reconcile flows that remove things (SPEC §7 steps 5 and the deletion rules): deselected
//! clusters, unoffloading, unreachable clusters and the orphan annotation, and the rule that
//! no code path deletes a namespace without nsoffload's owner annotation. Also: a reconcile
//! that changes nothing writes nothing.

mod common;
#[path = "reconcile/world.rs"]
mod world;

use futures_util::FutureExt;
use http::Method;
use nsoffload::api::{NamespaceOffloading, NamespaceOffloadingStatus, OffloadingPhase};
use serde_json::{json, Value};
use world::*;

use common::mock_api::ApiServer;

const FINALIZER_REMOVAL: &str = r#"[
    {"op": "test", "path": "/metadata/finalizers/0", "value": "namespaceoffloading-controller.liqo.io/finalizer"},
    {"op": "remove", "path": "/metadata/finalizers/0"}
]"#;

fn three_ready() -> Value {
    let per_cluster = json!([
        required(true, SELECTED),
        ready("True", "NamespaceCreated", "namespace shop-home exists")
    ]);
    json!({
        "offloadingPhase": "Ready",
        "remoteNamespaceName": TWIN,
        "remoteNamespacesConditions": {"r1": per_cluster, "r2": per_cluster, "r3": per_cluster},
        "observedGeneration": 3,
        "conditions": top("True", "Ready", "namespace shop-home is ready on 3 remote cluster(s)"),
    })
}

fn with_status(mut nsoff: NamespaceOffloading, status: Value) -> NamespaceOffloading {
    nsoff.status =
        Some(serde_json::from_value::<NamespaceOffloadingStatus>(status).expect("status"));
    nsoff
}

fn deleting(mut nsoff: NamespaceOffloading, orphan: bool) -> NamespaceOffloading {
    nsoff.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        NOW.parse().unwrap(),
    ));
    if orphan {
        nsoff.metadata.annotations = Some(
            [(
                "offloading.liqo.io/orphan-unreachable".to_owned(),
                "true".to_owned(),
            )]
            .into(),
        );
    }
    nsoff
}

fn three_clusters(w: &mut World) {
    for (id, region) in [("r1", "eu"), ("r2", "us"), ("r3", "ap")] {
        w.node(vnode(id, region)).reachable(id);
    }
}

/// Our twin is there; expect exactly one guarded DELETE of it.
async fn deletes_twin(mut s: ApiServer) {
    s.expect(Method::GET, TWIN_PATH)
        .await
        .ok(&remote_namespace(TWIN, ours(), false));
    let call = s.expect(Method::DELETE, TWIN_PATH).await;
    assert_eq!(
        call.body["preconditions"],
        json!({"uid": "uid-shop-home", "resourceVersion": "7"}),
        "the DELETE is guarded by the uid and resourceVersion just read"
    );
    call.ok(&remote_namespace(TWIN, ours(), true));
    s.expect_done().await;
}

/// Our twin is already gone.
async fn twin_gone(mut s: ApiServer) {
    s.expect(Method::GET, TWIN_PATH).await.fail(404, "NotFound");
    s.expect_done().await;
}

#[tokio::test]
async fn r6_deselected_clusters_lose_their_twins() {
    let mut w = World::new(local_namespace(true));
    three_clusters(&mut w);
    let spec = json!({"clusterSelector": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}
    ]}});
    let nsoff = with_status(nsoff(spec, true), three_ready());
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            // Only r1 counts, and it is ready: the deletions elsewhere do not hold the phase.
            assert_eq!(status["offloadingPhase"], "Ready");
            let conditions = &status["remoteNamespacesConditions"];
            // r1's conditions keep their times (unchanged).
            assert_eq!(
                conditions["r1"],
                three_ready()["remoteNamespacesConditions"]["r1"]
            );
            for id in ["r2", "r3"] {
                assert_eq!(
                    conditions[id],
                    json!([
                        required(false, NOT_SELECTED),
                        ready(
                            "False",
                            "Terminating",
                            "namespace shop-home is being deleted"
                        )
                    ]),
                    "{id}"
                );
            }
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let remote = |id: String, mut s: ApiServer| {
        async move {
            if id == "r1" {
                s.expect(Method::GET, TWIN_PATH)
                    .await
                    .ok(&remote_namespace(TWIN, ours(), false));
                s.expect_done().await;
            } else {
                deletes_twin(s).await;
            }
        }
        .boxed()
    };
    let report = w.run(&nsoff, home, remote).await.unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
    assert!(report.settling, "deletions in flight: look again soon");
    let reasons: Vec<_> = report.notices.iter().map(|n| n.reason).collect();
    assert_eq!(reasons, ["TwinDeleting", "TwinDeleting"]);
}

#[tokio::test]
async fn a_deselected_twin_that_is_gone_leaves_no_stale_ready_condition() {
    let mut w = World::new(local_namespace(true));
    three_clusters(&mut w);
    let spec = json!({"clusterSelector": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}
    ]}});
    let nsoff = with_status(nsoff(spec, true), three_ready());
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let conditions = written_status(&call.body)["remoteNamespacesConditions"].clone();
            assert_eq!(conditions["r2"], json!([required(false, NOT_SELECTED)]));
            assert_eq!(conditions["r3"], json!([required(false, NOT_SELECTED)]));
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let remote = |id: String, mut s: ApiServer| {
        async move {
            if id == "r1" {
                s.expect(Method::GET, TWIN_PATH)
                    .await
                    .ok(&remote_namespace(TWIN, ours(), false));
                s.expect_done().await;
            } else {
                twin_gone(s).await;
            }
        }
        .boxed()
    };
    w.run(&nsoff, home, remote).await.unwrap();
}

/// SPEC §7.10: r3 lost its virtual nodes and its credentials Secret. It is not visited (there
/// is nothing to reach it with) and its entry leaves the status, instead of failing forever.
#[tokio::test]
async fn a_cluster_gone_for_good_leaves_the_status() {
    let mut w = World::new(local_namespace(true));
    for (id, region) in [("r1", "eu"), ("r2", "us")] {
        w.node(vnode(id, region)).reachable(id);
    }
    let nsoff = with_status(nsoff(json!({}), true), three_ready());
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "Ready");
            let clusters: Vec<&String> = status["remoteNamespacesConditions"]
                .as_object()
                .unwrap()
                .keys()
                .collect();
            assert_eq!(clusters, ["r1", "r2"]);
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let remote = |_: String, mut s: ApiServer| {
        async move {
            s.expect(Method::GET, TWIN_PATH)
                .await
                .ok(&remote_namespace(TWIN, ours(), false));
            s.expect_done().await;
        }
        .boxed()
    };
    let report = w.run(&nsoff, home, remote).await.unwrap();
    assert!(
        !report.reachable.contains_key("r3"),
        "{:?}",
        report.reachable
    );
}

#[tokio::test]
async fn r7_unoffload_deletes_twins_then_releases_the_finalizer() {
    // First pass: label removed, twins deleted, phase Terminating.
    let mut w = World::new(local_namespace(true));
    three_clusters(&mut w);
    let nsoff = deleting(with_status(nsoff(json!({}), true), three_ready()), false);
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, "/api/v1/namespaces/shop").await;
            assert_eq!(
                call.body,
                json!({"metadata": {"labels": {"liqo.io/scheduling-enabled": null}}})
            );
            call.ok(&remote_namespace(NS, json!({}), false));
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "Terminating");
            let message = status["conditions"][1]["message"].as_str().unwrap();
            assert_eq!(
                message,
                "waiting for namespace shop-home to be deleted on: r1, r2, r3"
            );
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&nsoff, home, |_, s| deletes_twin(s).boxed())
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Terminating));
    assert!(!report.released);

    // Second pass: every twin gone, the finalizer goes, no status is written.
    let mut w = World::new(local_namespace(false));
    three_clusters(&mut w);
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, NSOFF_PATH).await;
            assert_eq!(
                call.body,
                serde_json::from_str::<Value>(FINALIZER_REMOVAL).unwrap()
            );
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&nsoff, home, |_, s| twin_gone(s).boxed())
        .await
        .unwrap();
    assert!(report.released);
    assert_eq!(report.phase, None);
}

#[tokio::test]
async fn an_unreachable_cluster_holds_the_finalizer_and_is_named() {
    let mut w = World::new(local_namespace(false));
    w.node(vnode("r1", "eu")).reachable("r1");
    w.node(vnode("r3", "ap"))
        .broken("r3", "cluster r3 is unreachable: connection refused");
    let nsoff = deleting(nsoff(json!({}), true), false);
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "Terminating");
            assert_eq!(
                status["conditions"][1]["message"],
                "waiting for namespace shop-home to be deleted on: r3 (cluster r3 is unreachable: \
                 connection refused); to release the NamespaceOffloading without unreachable \
                 clusters, annotate it with offloading.liqo.io/orphan-unreachable=true"
            );
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&nsoff, home, |_, s| twin_gone(s).boxed())
        .await
        .unwrap();
    assert!(!report.released);
}

#[tokio::test]
async fn the_orphan_annotation_releases_without_unreachable_clusters() {
    let mut w = World::new(local_namespace(false));
    w.node(vnode("r1", "eu")).reachable("r1");
    w.node(vnode("r3", "ap"))
        .broken("r3", "cluster r3 is unreachable: connection refused");
    let nsoff = deleting(nsoff(json!({}), true), true);
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, NSOFF_PATH).await;
            assert_eq!(
                call.body,
                serde_json::from_str::<Value>(FINALIZER_REMOVAL).unwrap()
            );
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&nsoff, home, |_, s| twin_gone(s).boxed())
        .await
        .unwrap();
    assert!(report.released);
    let orphaned = report
        .notices
        .iter()
        .find(|n| n.reason == "OrphanedUnreachable")
        .expect("a warning event");
    assert!(
        orphaned.warning && orphaned.message.ends_with("r3"),
        "{orphaned:?}"
    );
}

#[tokio::test]
async fn the_orphan_annotation_does_not_skip_a_reachable_cluster() {
    let mut w = World::new(local_namespace(false));
    w.node(vnode("r1", "eu")).reachable("r1");
    let nsoff = deleting(nsoff(json!({}), true), true);
    let home = |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            assert_eq!(written_status(&call.body)["offloadingPhase"], "Terminating");
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&nsoff, home, |_, s| deletes_twin(s).boxed())
        .await
        .unwrap();
    assert!(!report.released);
}

/// The proof asked for: whatever the flow (deselected, unoffloaded), a namespace whose owner
/// annotation is missing, empty, another local namespace's or another home cluster's is read
/// and never deleted or modified — each script fails on any request after the GET.
#[tokio::test]
async fn no_flow_deletes_a_namespace_without_our_owner_annotation() {
    let foreign = [
        Value::Null,
        json!({}),
        json!({"offloading.liqo.io/owner": ""}),
        json!({"offloading.liqo.io/owner": "home/other"}),
        json!({"offloading.liqo.io/owner": "elsewhere/shop", "liqo.io/original-name": "shop"}),
        json!({"offloading.liqo.io/owner": "home/shop/extra"}),
    ];
    let selector = json!({"clusterSelector": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "region", "operator": "In", "values": ["mars"]}]}
    ]}});
    for annotations in foreign {
        for unoffload in [false, true] {
            let mut w = World::new(local_namespace(!unoffload));
            w.node(vnode("r1", "eu")).reachable("r1");
            let mut status = three_ready();
            status["remoteNamespacesConditions"] =
                json!({"r1": status["remoteNamespacesConditions"]["r1"].clone()});
            let mut nsoff = with_status(nsoff(selector.clone(), true), status);
            if unoffload {
                nsoff = deleting(nsoff, false);
            }
            let home = |mut home: ApiServer| {
                async move {
                    // Not ours means no twin: released (unoffload) or a status without one.
                    let call = home
                        .expect(
                            Method::PATCH,
                            if unoffload { NSOFF_PATH } else { STATUS_PATH },
                        )
                        .await;
                    call.ok(&nsoff_body());
                    home.expect_done().await;
                }
                .boxed()
            };
            let seen = annotations.clone();
            let remote = move |_, mut s: ApiServer| {
                let seen = seen.clone();
                async move {
                    s.expect(Method::GET, TWIN_PATH)
                        .await
                        .ok(&remote_namespace(TWIN, seen, false));
                    s.expect_done().await;
                }
                .boxed()
            };
            let report = w.run(&nsoff, home, remote).await.unwrap();
            assert_eq!(report.released, unoffload, "{annotations}");
        }
    }
}

#[tokio::test]
async fn a_converged_object_is_read_but_nothing_is_written() {
    let mut w = World::new(local_namespace(true));
    three_clusters(&mut w);
    let nsoff = with_status(nsoff(json!({}), true), three_ready());
    let remote = |_, mut s: ApiServer| {
        async move {
            s.expect(Method::GET, TWIN_PATH)
                .await
                .ok(&remote_namespace(TWIN, ours(), false));
            s.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&nsoff, |h| untouched(h).boxed(), remote)
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
    assert!(!report.status_written);
    assert!(report.notices.is_empty(), "{:?}", report.notices);
}

#[tokio::test]
async fn a_twin_deleted_behind_our_back_is_recreated() {
    let mut w = World::new(local_namespace(true));
    w.node(vnode("r1", "eu")).reachable("r1");
    let mut status = three_ready();
    status["remoteNamespacesConditions"] =
        json!({"r1": status["remoteNamespacesConditions"]["r1"].clone()});
    status["conditions"] = top(
        "True",
        "Ready",
        "namespace shop-home is ready on 1 remote cluster(s)",
    );
    let nsoff = with_status(nsoff(json!({}), true), status);
    let report = w
        .run(
            &nsoff,
            |h| untouched(h).boxed(),
            |_, s| recreates_twin(s).boxed(),
        )
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
    assert!(
        !report.status_written,
        "recreated within the pass: the status still holds"
    );
}
