//! `unoffload namespace` against a scripted API server: delete, wait until the object is
//! gone with a line per deleted twin, and at the deadline the clusters still holding one.

mod common;
#[path = "ctl/kit.rs"]
mod kit;

use http::{Method, StatusCode};
use nsoffload::ctl::unoffload::unoffload;
use nsoffload::ctl::{Outcome, WaitOptions};
use serde_json::{json, Value};

use common::mock_api::ApiServer;
use kit::{
    answer, capture, deleting, expect_namespace, failing, keep_answering, not_selected, path,
    quick, ready, status, stored, Printed,
};

async fn run_unoffload<S, Fut>(ns: &[&str], wait: WaitOptions, script: S) -> Printed
where
    S: FnOnce(ApiServer) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let ns: Vec<String> = ns.iter().map(|n| (*n).to_owned()).collect();
    capture(
        false,
        async |client, report| unoffload(client, &ns, wait, report).await,
        script,
    )
    .await
}

fn spec() -> Value {
    json!({"namespaceMappingStrategy": "DefaultName", "podOffloadingStrategy": "LocalAndRemote"})
}

/// A NamespaceOffloading being deleted, with `status`.
fn terminating(status: Value) -> Value {
    let mut o = stored("shop", 1, spec(), status);
    o["metadata"]["deletionTimestamp"] = json!("2026-11-22T10:00:00Z");
    o["metadata"]["finalizers"] = json!(["namespaceoffloading-controller.liqo.io/finalizer"]);
    o
}

#[tokio::test]
async fn deletes_and_waits_until_gone_with_a_line_per_deleted_twin() {
    let p = run_unoffload(&["shop"], quick(900), |mut s| async move {
        expect_namespace(&mut s, "shop", json!({})).await;
        let call = s.expect(Method::DELETE, &path("shop")).await;
        call.reply_with_headers(
            StatusCode::OK,
            &terminating(status(1, "Ready", json!({"r1": ready(), "r2": ready()}))),
            &[("warning", "299 - \"twins go too\"")],
        );
        let first = status(1, "Terminating", json!({"r1": deleting("namespace shop-home is being deleted"), "r2": deleting("namespace shop-home is being deleted")}));
        answer(&mut s, "shop", &terminating(first)).await;
        let second = status(1, "Terminating", json!({"r1": not_selected(), "r2": deleting("namespace shop-home is being deleted")}));
        answer(&mut s, "shop", &terminating(second)).await;
        let third = status(1, "Terminating", json!({"r1": not_selected(), "r2": not_selected()}));
        answer(&mut s, "shop", &terminating(third)).await;
        s.expect(Method::GET, &path("shop")).await.fail(404, "NotFound");
        s.expect_done().await;
    })
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)]);
    assert_eq!(
        p.out,
        "shop: NamespaceOffloading deleted\n\
         waiting up to 900ms for the twin namespaces to be deleted\n\
         shop: cluster r1 twin namespace deleted\n\
         shop: cluster r2 twin namespace deleted\n\
         shop: unoffloaded\n"
    );
    assert_eq!(p.err, "Warning: twins go too\n");
}

#[tokio::test]
async fn a_namespace_that_is_not_offloaded_is_already_done() {
    let p = run_unoffload(&["plain"], quick(900), |mut s| async move {
        expect_namespace(&mut s, "plain", json!({})).await;
        s.expect(Method::DELETE, &path("plain"))
            .await
            .fail(404, "NotFound");
        s.expect_done().await;
    })
    .await;
    assert_eq!(p.outcomes, [("plain".to_owned(), Outcome::Done)]);
    assert_eq!(p.out, "plain: not offloaded (no NamespaceOffloading)\n");
}

#[tokio::test]
async fn a_timeout_lists_the_clusters_still_holding_twins_and_the_way_out() {
    let p = run_unoffload(&["shop"], quick(150), |mut s| async move {
        expect_namespace(&mut s, "shop", json!({})).await;
        s.expect(Method::DELETE, &path("shop")).await.ok(&terminating(Value::Null));
        let stuck = status(
            1,
            "Terminating",
            json!({
                "r1": not_selected(),
                "r2": deleting("cannot delete namespace shop-home: cluster r2 unreachable: connection refused"),
            }),
        );
        keep_answering(&mut s, "shop", &terminating(stuck)).await;
    })
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert_eq!(
        p.err,
        "shop: still offloaded after 150ms: waiting for the twin namespaces on r2\n  \
         clusters still holding a twin namespace:\n  \
         r2: cannot delete namespace shop-home: cluster r2 unreachable: connection refused\n  \
         if a cluster is gone for good, release it with: kubectl annotate namespaceoffloading \
         -n shop offloading offloading.liqo.io/orphan-unreachable=true\n"
    );
}

#[tokio::test]
async fn a_timeout_before_the_reconciler_acts_points_at_it() {
    let p = run_unoffload(&["shop"], quick(100), |mut s| async move {
        expect_namespace(&mut s, "shop", json!({})).await;
        s.expect(Method::DELETE, &path("shop"))
            .await
            .ok(&terminating(Value::Null));
        keep_answering(&mut s, "shop", &terminating(Value::Null)).await;
    })
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert_eq!(
        p.err,
        "shop: still offloaded after 100ms: waiting for the finalizer to be released\n  the \
         reconciler has not started the deletion: is the nsoffload reconciler running \
         (serve --reconcile=true)?\n"
    );
}

#[tokio::test]
async fn a_refused_delete_is_reported_and_the_others_proceed() {
    let p = run_unoffload(&["locked", "shop"], quick(900), |mut s| async move {
        expect_namespace(&mut s, "locked", json!({})).await;
        s.expect(Method::DELETE, &path("locked"))
            .await
            .fail(403, "Forbidden");
        expect_namespace(&mut s, "shop", json!({})).await;
        s.expect(Method::DELETE, &path("shop"))
            .await
            .ok(&terminating(Value::Null));
        let failing_status = status(1, "Terminating", json!({"r1": failing("boom")}));
        answer(&mut s, "shop", &terminating(failing_status)).await;
        s.expect(Method::GET, &path("shop"))
            .await
            .fail(404, "NotFound");
        s.expect_done().await;
    })
    .await;
    assert_eq!(
        p.outcomes,
        [
            ("locked".to_owned(), Outcome::Failed),
            ("shop".to_owned(), Outcome::Done)
        ]
    );
    assert_eq!(
        p.err,
        "error: namespace locked: cannot delete its NamespaceOffloading: mock: Forbidden \
         (HTTP 403)\n"
    );
    assert_eq!(
        p.out,
        "shop: NamespaceOffloading deleted\n\
         waiting up to 900ms for the twin namespaces to be deleted\n\
         shop: cluster r1 failing: boom\n\
         shop: unoffloaded\n"
    );
}

#[tokio::test]
async fn the_quick_offloading_label_is_removed_first_so_nothing_comes_back() {
    let p = run_unoffload(&["quick"], quick(900), |mut s| async move {
        expect_namespace(
            &mut s,
            "quick",
            json!({"liqo.io/enabled": "true", "team": "a"}),
        )
        .await;
        let call = s.expect(Method::PATCH, "/api/v1/namespaces/quick").await;
        assert_eq!(call.content_type, "application/json-patch+json");
        assert_eq!(
            call.body,
            json!([
                {"op": "test", "path": "/metadata/labels/liqo.io~1enabled", "value": "true"},
                {"op": "remove", "path": "/metadata/labels/liqo.io~1enabled"},
            ])
        );
        call.ok(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "quick"}}));
        s.expect(Method::DELETE, &path("quick"))
            .await
            .fail(404, "NotFound");
        s.expect_done().await;
    })
    .await;
    assert_eq!(p.outcomes, [("quick".to_owned(), Outcome::Done)]);
    assert_eq!(
        p.out,
        "quick: label liqo.io/enabled=true removed (quick offloading would recreate the \
         NamespaceOffloading)\n\
         quick: not offloaded (no NamespaceOffloading)\n"
    );
}
