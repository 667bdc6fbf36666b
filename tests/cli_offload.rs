//! `offload namespace` against a scripted API server: every request is asserted (apply body,
//! field manager, force), and the whole output is compared, on a pipe and on a terminal.

mod common;
#[path = "ctl/kit.rs"]
mod kit;

use http::{Method, StatusCode};
use nsoffload::ctl::intent::{Flags, Intent};
use nsoffload::ctl::offload::offload;
use nsoffload::ctl::{Outcome, WaitOptions};
use serde_json::{json, Value};

use common::mock_api::ApiServer;
use kit::{
    answer, capture, creating, failing, keep_answering, path, quick, ready, status, stored, Printed,
};

fn intent(flags: Flags, ns: &[&str]) -> Intent {
    let ns: Vec<String> = ns.iter().map(|n| (*n).to_owned()).collect();
    Intent::new(flags, &ns).unwrap()
}

async fn run_offload<S, Fut>(intent: Intent, wait: WaitOptions, tty: bool, script: S) -> Printed
where
    S: FnOnce(ApiServer) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    capture(
        tty,
        async |client, report| offload(client, &intent, wait, report).await,
        script,
    )
    .await
}

fn default_spec() -> Value {
    json!({
        "namespaceMappingStrategy": "DefaultName",
        "podOffloadingStrategy": "LocalAndRemote",
        "clusterSelector": {"nodeSelectorTerms": []},
    })
}

/// Expects the apply of `spec` in `ns` and answers with the object at `generation`.
async fn expect_apply(
    server: &mut ApiServer,
    ns: &str,
    spec: &Value,
    generation: i64,
    warnings: &[&str],
) {
    let call = server.expect(Method::PATCH, &path(ns)).await;
    assert_eq!(call.content_type, "application/apply-patch+yaml");
    assert!(
        call.has_param("fieldManager", "nsoffload-cli"),
        "{}",
        call.query
    );
    assert!(call.has_param("force", "true"), "{}", call.query);
    assert_eq!(
        call.body,
        json!({
            "apiVersion": "offloading.liqo.io/v1beta1",
            "kind": "NamespaceOffloading",
            "metadata": {"name": "offloading", "namespace": ns},
            "spec": spec,
        })
    );
    let headers: Vec<(&str, String)> = warnings
        .iter()
        .map(|w| ("warning", format!("299 - \"{w}\"")))
        .collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    call.reply_with_headers(
        StatusCode::OK,
        &stored(ns, generation, spec.clone(), Value::Null),
        &headers,
    );
}

/// Expects a first offload of `ns`: no object yet, then the apply of the default spec.
async fn expect_create(server: &mut ApiServer, ns: &str) {
    server
        .expect(Method::GET, &path(ns))
        .await
        .fail(404, "NotFound");
    expect_apply(server, ns, &default_spec(), 1, &[]).await;
}

#[tokio::test]
async fn creates_prints_warnings_and_waits_through_in_progress_to_ready() {
    let p = run_offload(
        intent(Flags::default(), &["shop"]),
        quick(900),
        false,
        |mut s| async move {
            s.expect(Method::GET, &path("shop"))
                .await
                .fail(404, "NotFound");
            expect_apply(&mut s, "shop", &default_spec(), 1, &["mind the pods"]).await;
            // Not processed yet, then in progress, then ready.
            let spec = default_spec();
            answer(
                &mut s,
                "shop",
                &stored("shop", 1, spec.clone(), Value::Null),
            )
            .await;
            let progress = status(1, "InProgress", json!({"r1": ready(), "r2": creating()}));
            answer(&mut s, "shop", &stored("shop", 1, spec.clone(), progress)).await;
            let done = status(1, "Ready", json!({"r1": ready(), "r2": ready()}));
            answer(&mut s, "shop", &stored("shop", 1, spec, done)).await;
            s.expect_done().await;
        },
    )
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)]);
    assert_eq!(
        p.out,
        "shop: NamespaceOffloading created (generation 1)\n\
         waiting up to 900ms for the twin namespaces\n\
         shop: cluster r1 ready\n\
         shop: cluster r2 ready\n\
         shop: Ready: namespace shop-home on r1, r2\n"
    );
    assert_eq!(p.err, "Warning: mind the pods\n");
}

#[tokio::test]
async fn a_terminal_gets_a_spinner_that_is_cleared_before_each_line() {
    let p = run_offload(
        intent(Flags::default(), &["shop"]),
        quick(900),
        true,
        |mut s| async move {
            expect_create(&mut s, "shop").await;
            let spec = default_spec();
            answer(
                &mut s,
                "shop",
                &stored("shop", 1, spec.clone(), Value::Null),
            )
            .await;
            let done = status(1, "Ready", json!({"r1": ready()}));
            answer(&mut s, "shop", &stored("shop", 1, spec, done)).await;
            s.expect_done().await;
        },
    )
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)]);
    assert_eq!(
        p.out,
        "shop: NamespaceOffloading created (generation 1)\n\
         waiting up to 900ms for the twin namespaces\n\
         ⠋ shop: waiting for the reconciler to process generation 1\r\x1b[K\
         shop: cluster r1 ready\n\
         shop: Ready: namespace shop-home on r1\n"
    );
}

#[tokio::test]
async fn an_update_keeps_the_immutable_fields_and_ignores_a_stale_status() {
    let flags = Flags {
        selectors: vec!["region=eu".into()],
        ..Flags::default()
    };
    let p = run_offload(intent(flags, &["shop"]), quick(900), false, |mut s| async move {
        let old_spec = json!({"namespaceMappingStrategy": "EnforceSameName", "podOffloadingStrategy": "Remote"});
        let old = stored("shop", 1, old_spec, status(1, "Ready", json!({"r1": ready()})));
        answer(&mut s, "shop", &old).await;
        let spec = json!({
            "namespaceMappingStrategy": "EnforceSameName",
            "podOffloadingStrategy": "LocalAndRemote",
            "clusterSelector": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}
            ]},
        });
        expect_apply(&mut s, "shop", &spec, 2, &[]).await;
        // The status still describes generation 1: not an answer.
        let stale = status(1, "Ready", json!({"r1": ready()}));
        answer(&mut s, "shop", &stored("shop", 2, spec.clone(), stale)).await;
        let done = status(2, "Ready", json!({"r1": ready(), "r2": kit::not_selected()}));
        answer(&mut s, "shop", &stored("shop", 2, spec, done)).await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)]);
    assert_eq!(
        p.out,
        "shop: NamespaceOffloading configured (generation 2)\n\
         waiting up to 900ms for the twin namespaces\n\
         shop: cluster r1 ready\n\
         shop: Ready: namespace shop-home on r1\n"
    );
    assert_eq!(p.err, "");
}

#[tokio::test]
async fn some_failed_fails_and_names_each_failing_cluster() {
    let p = run_offload(intent(Flags::default(), &["shop"]), quick(900), false, |mut s| async move {
        expect_create(&mut s, "shop").await;
        let failed = status(
            1,
            "SomeFailed",
            json!({"r1": ready(), "r2": failing("namespace shop-home exists on r2 and is not ours"), "r3": creating()}),
        );
        answer(&mut s, "shop", &stored("shop", 1, default_spec(), failed)).await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert_eq!(
        p.out,
        "shop: NamespaceOffloading created (generation 1)\n\
         waiting up to 900ms for the twin namespaces\n\
         shop: cluster r1 ready\n\
         shop: cluster r2 failing: namespace shop-home exists on r2 and is not ours\n"
    );
    assert_eq!(
        p.err,
        "shop: SomeFailed: the twin namespace cannot be created on 1 cluster(s):\n  \
         r2: namespace shop-home exists on r2 and is not ours\n"
    );
}

#[tokio::test]
async fn no_cluster_selected_succeeds_with_a_warning() {
    let flags = Flags {
        selectors: vec!["region=mars".into()],
        ..Flags::default()
    };
    let p = run_offload(
        intent(flags, &["shop"]),
        quick(900),
        false,
        |mut s| async move {
            s.expect(Method::GET, &path("shop"))
                .await
                .fail(404, "NotFound");
            let call = s.expect(Method::PATCH, &path("shop")).await;
            let spec = call.body["spec"].clone();
            call.ok(&stored("shop", 1, spec.clone(), Value::Null));
            let mut none = status(1, "NoClusterSelected", json!({"r1": kit::not_selected()}));
            none["conditions"] = json!([{
                "type": "Ready", "status": "False", "reason": "NoClusterSelected",
                "lastTransitionTime": "2026-11-22T10:00:00Z",
                "message": "no remote cluster is selected: pods can run only on local nodes",
            }]);
            answer(&mut s, "shop", &stored("shop", 1, spec, none)).await;
            s.expect_done().await;
        },
    )
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)]);
    assert!(p.out.ends_with("shop: NoClusterSelected\n"), "{}", p.out);
    assert_eq!(
        p.err,
        "Warning: shop: no remote cluster is selected: pods can run only on local nodes\n"
    );
}

#[tokio::test]
async fn a_timeout_fails_and_says_what_was_awaited() {
    let p = run_offload(
        intent(Flags::default(), &["shop"]),
        quick(150),
        false,
        |mut s| async move {
            expect_create(&mut s, "shop").await;
            let mut slow = status(1, "InProgress", json!({"r1": ready(), "r2": creating()}));
            slow["conditions"] = json!([{
                "type": "Ready", "status": "False", "reason": "InProgress",
                "lastTransitionTime": "2026-11-22T10:00:00Z",
                "message": "waiting for namespace shop-home on: r2",
            }]);
            keep_answering(&mut s, "shop", &stored("shop", 1, default_spec(), slow)).await;
        },
    )
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert_eq!(
        p.err,
        "shop: not offloaded within 150ms: waiting for namespace shop-home on: r2\n  \
         r2: creating namespace shop-home\n"
    );
}

#[tokio::test]
async fn a_timeout_without_any_status_points_at_the_reconciler() {
    let p = run_offload(
        intent(Flags::default(), &["shop"]),
        quick(100),
        false,
        |mut s| async move {
            expect_create(&mut s, "shop").await;
            keep_answering(
                &mut s,
                "shop",
                &stored("shop", 1, default_spec(), Value::Null),
            )
            .await;
        },
    )
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert_eq!(
        p.err,
        "shop: not offloaded within 100ms: waiting for the reconciler to process \
         generation 1\n  the status was never written for this generation: is the nsoffload \
         reconciler running (serve --reconcile=true)?\n"
    );
}

#[tokio::test]
async fn a_denied_namespace_is_reported_and_the_others_proceed() {
    let p = run_offload(intent(Flags::default(), &["bad", "shop"]), quick(900), false, |mut s| async move {
        s.expect(Method::GET, &path("bad")).await.fail(404, "NotFound");
        let denial = json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400,
            "message": "admission webhook \"validate.nsoffload.liqo.io\" denied the request: spec.remoteNamespaceName: too long",
        });
        s.expect(Method::PATCH, &path("bad")).await.reply(StatusCode::BAD_REQUEST, &denial);
        expect_create(&mut s, "shop").await;
        let done = status(1, "Ready", json!({"r1": ready()}));
        answer(&mut s, "shop", &stored("shop", 1, default_spec(), done)).await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(
        p.outcomes,
        [
            ("bad".to_owned(), Outcome::Failed),
            ("shop".to_owned(), Outcome::Done)
        ]
    );
    assert_eq!(
        p.err,
        "error: namespace bad: cannot apply its NamespaceOffloading: admission webhook \
         \"validate.nsoffload.liqo.io\" denied the request: spec.remoteNamespaceName: too long \
         (HTTP 400)\n"
    );
    assert!(
        p.out.ends_with("shop: Ready: namespace shop-home on r1\n"),
        "{}",
        p.out
    );
}

#[tokio::test]
async fn changing_the_mapping_strategy_is_refused_before_applying() {
    let flags = Flags {
        mapping: Some(nsoffload::api::NamespaceMappingStrategy::EnforceSameName),
        ..Flags::default()
    };
    let p = run_offload(
        intent(flags, &["shop"]),
        quick(900),
        false,
        |mut s| async move {
            let old = stored("shop", 1, default_spec(), status(1, "Ready", json!({})));
            answer(&mut s, "shop", &old).await;
            s.expect_done().await;
        },
    )
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert_eq!(p.out, "");
    assert_eq!(
        p.err,
        "error: namespace shop: it is offloaded with namespace mapping strategy DefaultName, \
         which cannot change; to use EnforceSameName, unoffload it first\n"
    );
}

#[tokio::test]
async fn a_missing_namespace_is_named() {
    let p = run_offload(
        intent(Flags::default(), &["nope"]),
        quick(900),
        false,
        |mut s| async move {
            s.expect(Method::GET, &path("nope"))
                .await
                .fail(404, "NotFound");
            s.expect(Method::PATCH, &path("nope"))
                .await
                .fail(404, "NotFound");
            s.expect_done().await;
        },
    )
    .await;
    assert_eq!(p.outcomes, [("nope".to_owned(), Outcome::Failed)]);
    assert_eq!(
        p.err,
        "error: namespace nope: cannot apply its NamespaceOffloading: namespace \"nope\" not \
         found (HTTP 404)\n"
    );
}

/// A Ready status of `observed` whose `PodsCompliant` condition was judged at `judged`.
fn ready_with_pods(observed: i64, judged: i64, compliant: bool) -> Value {
    let mut s = status(observed, "Ready", json!({"r1": ready()}));
    let (status, reason, message) = if compliant {
        (
            "True",
            "PodsFollowPolicy",
            "every pod follows the pod offloading policy",
        )
    } else {
        (
            "False",
            "PodsViolatePolicy",
            "2 pod(s) do not follow the pod offloading policy: web-1, web-2; move them with: \
             nsoffload evict namespace shop",
        )
    };
    s["conditions"] = json!([{"type": "PodsCompliant", "status": status, "reason": reason,
        "message": message, "observedGeneration": judged,
        "lastTransitionTime": "2026-12-05T10:00:00Z"}]);
    s
}

#[tokio::test]
async fn pods_that_violate_the_new_generation_are_named_with_the_way_to_move_them() {
    for (judged, compliant, warned) in [(2, false, true), (1, false, false), (2, true, false)] {
        let p = run_offload(
            intent(Flags::default(), &["shop"]),
            quick(900),
            false,
            move |mut s| async move {
                let old = stored("shop", 1, default_spec(), ready_with_pods(1, 1, false));
                answer(&mut s, "shop", &old).await;
                expect_apply(&mut s, "shop", &default_spec(), 2, &[]).await;
                let status = ready_with_pods(2, judged, compliant);
                answer(&mut s, "shop", &stored("shop", 2, default_spec(), status)).await;
                s.expect_done().await;
            },
        )
        .await;
        assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)]);
        let warning = "Warning: shop: 2 pod(s) do not follow the pod offloading policy: web-1, \
                       web-2; move them with: nsoffload evict namespace shop\n";
        let want = if warned { warning } else { "" };
        assert_eq!(p.err, want, "judged at {judged}, compliant {compliant}");
    }
}
