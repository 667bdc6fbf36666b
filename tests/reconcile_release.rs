//! Unoffloading (SPEC §7, deletion): twins deleted, then the finalizer released; a cluster
//! that stays unreachable holds the finalizer and is named, unless the orphan annotation
//! lets the user release it (which never skips a cluster that answers).

mod common;
#[path = "reconcile/removal.rs"]
mod removal;
#[path = "reconcile/world.rs"]
mod world;

use futures_util::FutureExt;
use http::Method;
use nsoffload::api::OffloadingPhase;
use removal::*;
use serde_json::json;
use world::*;

use common::mock_api::ApiServer;

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
    let home = |home: ApiServer| releases_finalizer(home).boxed();
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
    let home = |home: ApiServer| releases_finalizer(home).boxed();
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
