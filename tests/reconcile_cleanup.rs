//! Reconcile flows that remove things (SPEC §7 step 5): deselected clusters, clusters gone
//! for good, and the rule that no code path deletes a namespace without nsoffload's owner
//! annotation. Also: a reconcile that changes nothing writes nothing, and a twin deleted
//! behind our back comes back. Unoffloading is in `reconcile_release.rs`.

mod common;
#[path = "reconcile/removal.rs"]
mod removal;
#[path = "reconcile/world.rs"]
mod world;

use futures_util::FutureExt;
use http::Method;
use nsoffload::api::OffloadingPhase;
use removal::*;
use serde_json::{json, Value};
use world::*;

use common::mock_api::ApiServer;

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
