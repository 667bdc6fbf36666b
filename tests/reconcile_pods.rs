//! The `PodsCompliant` condition in reconcile flows (SPEC §12) against scripted API servers:
//! the namespace's pods are listed page by page only when a look is due, the condition is
//! written only when it changes, a Warning comes when violations appear, and a failed list
//! keeps what was stored.

mod common;
#[path = "reconcile/world.rs"]
mod world;

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::FutureExt;
use http::Method;
use nsoffload::api::{NamespaceOffloading, NamespaceOffloadingStatus, OffloadingPhase};
use nsoffload::reconcile::pods::PodAudit;
use serde_json::{json, Value};
use world::*;

use common::mock_api::ApiServer;

const PODS_PATH: &str = "/api/v1/namespaces/shop/pods";
const RESYNC: Duration = Duration::from_secs(300);

/// A Local NamespaceOffloading whose twin on r1 is ready, with `pods` as its stored
/// `PodsCompliant` condition (if any).
fn local_nsoff(pods: Option<Value>) -> NamespaceOffloading {
    let mut nsoff = nsoff(json!({"podOffloadingStrategy": "Local"}), true);
    let status = ready_status(pods);
    nsoff.status = Some(serde_json::from_value::<NamespaceOffloadingStatus>(status).unwrap());
    nsoff
}

fn ready_status(pods: Option<Value>) -> Value {
    let mut conditions = top(
        "True",
        "Ready",
        "namespace shop-home is ready on 1 remote cluster(s)",
    );
    if let Some(c) = pods {
        conditions.as_array_mut().unwrap().push(c);
    }
    json!({
        "offloadingPhase": "Ready",
        "remoteNamespaceName": TWIN,
        "remoteNamespacesConditions": {"r1": [
            required(true, SELECTED),
            ready("True", "NamespaceCreated", "namespace shop-home exists"),
        ]},
        "observedGeneration": 3,
        "conditions": conditions,
    })
}

fn compliant(status: &str, message: &str, generation: i64, since: &str) -> Value {
    let reason = if status == "True" {
        "PodsFollowPolicy"
    } else {
        "PodsViolatePolicy"
    };
    json!({"type": "PodsCompliant", "status": status, "lastTransitionTime": since,
           "reason": reason, "message": message, "observedGeneration": generation})
}

const SEVEN: &str = "7 pod(s) do not follow the pod offloading policy: a1, a2, a3, a4, a5 \
                     and 2 more; move them with: nsoffload evict namespace shop";
const NONE: &str = "every pod follows the pod offloading policy";

fn pod(name: &str, node: &str, extra: Value) -> Value {
    let mut p = json!({"metadata": {"name": name, "namespace": NS},
                       "spec": {"containers": [], "nodeName": node},
                       "status": {"phase": "Running"}});
    json_patch::merge(&mut p, &extra);
    p
}

fn page(items: Vec<Value>, next: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList",
           "metadata": {"resourceVersion": "9", "continue": next}, "items": items})
}

/// Seven pods on the virtual node (a Local violation), one on a local node, one finished on
/// the virtual node, one with the RuntimeClass on the virtual node: over two pages.
async fn lists_two_pages(home: &mut ApiServer) {
    let call = home.expect(Method::GET, PODS_PATH).await;
    assert!(call.has_param("limit", "500"), "{}", call.query);
    assert!(!call.query.contains("continue"), "{}", call.query);
    let mut first: Vec<Value> = (1..=5)
        .map(|i| pod(&format!("a{i}"), "vk-r1", json!({})))
        .collect();
    first.push(pod("local", "worker-1", json!({})));
    call.ok(&page(first, "token-1"));
    let call = home.expect(Method::GET, PODS_PATH).await;
    assert!(call.has_param("continue", "token-1"), "{}", call.query);
    let second = vec![
        pod("a6", "vk-r1", json!({})),
        pod("a7", "vk-r1", json!({})),
        pod("done", "vk-r1", json!({"status": {"phase": "Succeeded"}})),
        pod("rc", "vk-r1", json!({"spec": {"runtimeClassName": "liqo"}})),
    ];
    call.ok(&page(second, ""));
}

fn twin_exists(mut s: ApiServer) -> futures_util::future::BoxFuture<'static, ()> {
    async move {
        s.expect(Method::GET, TWIN_PATH)
            .await
            .ok(&remote_namespace(TWIN, ours(), false));
        s.expect_done().await;
    }
    .boxed()
}

fn world(audit: PodAudit) -> World {
    let mut w = World::new(local_namespace(false));
    w.node(vnode("r1", "eu")).reachable("r1").audit_pods(audit);
    w
}

#[tokio::test]
async fn violations_are_counted_over_every_page_and_named_in_the_condition() {
    let w = world(PodAudit::new("liqo", RESYNC));
    let home = |mut h: ApiServer| {
        async move {
            lists_two_pages(&mut h).await;
            let call = h.expect(Method::PATCH, STATUS_PATH).await;
            let want = ready_status(Some(compliant("False", SEVEN, 3, NOW)));
            assert_eq!(written_status(&call.body), want);
            call.ok(&nsoff_body());
            h.expect_done().await;
        }
        .boxed()
    };
    let report = w
        .run(&local_nsoff(None), home, |_, s| twin_exists(s))
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
    assert_eq!(report.violating, Some(7));
    assert!(report.status_written);
    let warnings: Vec<_> = report
        .notices
        .iter()
        .map(|n| (n.warning, n.reason))
        .collect();
    assert_eq!(warnings, [(true, "PodsViolatePolicy")]);
    assert_eq!(report.notices[0].message, SEVEN);
}

#[tokio::test]
async fn the_same_verdict_a_resync_later_writes_nothing_and_warns_nothing() {
    let audit = PodAudit::new("liqo", RESYNC);
    let earlier = tokio::time::Instant::now() - RESYNC;
    let selected: BTreeSet<String> = ["r1".to_owned()].into();
    audit.record(NS, Some(3), &(&selected, None::<&String>), earlier);
    let stored = compliant("False", SEVEN, 3, "2026-11-01T00:00:00Z");
    let home = |mut h: ApiServer| {
        async move {
            lists_two_pages(&mut h).await;
            h.expect_done().await;
        }
        .boxed()
    };
    let report = world(audit)
        .run(&local_nsoff(Some(stored)), home, |_, s| twin_exists(s))
        .await
        .unwrap();
    assert_eq!(report.violating, Some(7));
    assert!(!report.status_written);
    assert!(report.notices.is_empty(), "{:?}", report.notices);
}

#[tokio::test]
async fn an_eviction_mark_makes_a_look_due_at_once() {
    let audit = PodAudit::new("liqo", RESYNC);
    let selected: BTreeSet<String> = ["r1".to_owned()].into();
    audit.record(
        NS,
        Some(3),
        &(&selected, None::<&String>),
        tokio::time::Instant::now(),
    );
    let stored = compliant("False", SEVEN, 3, "2026-11-01T00:00:00Z");
    let mut nsoff = local_nsoff(Some(stored));
    nsoff.metadata.annotations = Some(
        [(
            "offloading.liqo.io/pods-evicted-at".to_owned(),
            "2026-12-05T10:00:00Z".to_owned(),
        )]
        .into(),
    );
    let home = |mut h: ApiServer| {
        async move {
            let call = h.expect(Method::GET, PODS_PATH).await;
            call.ok(&page(vec![pod("local", "worker-1", json!({}))], ""));
            let call = h.expect(Method::PATCH, STATUS_PATH).await;
            let want = ready_status(Some(compliant("True", NONE, 3, NOW)));
            assert_eq!(written_status(&call.body), want);
            call.ok(&nsoff_body());
            h.expect_done().await;
        }
        .boxed()
    };
    let report = world(audit)
        .run(&nsoff, home, |_, s| twin_exists(s))
        .await
        .unwrap();
    assert_eq!(report.violating, Some(0));
}

#[tokio::test]
async fn a_recent_look_is_not_repeated() {
    let audit = PodAudit::new("liqo", RESYNC);
    let selected: BTreeSet<String> = ["r1".to_owned()].into();
    audit.record(
        NS,
        Some(3),
        &(&selected, None::<&String>),
        tokio::time::Instant::now(),
    );
    let stored = compliant("False", SEVEN, 3, "2026-11-01T00:00:00Z");
    let report = world(audit)
        .run(
            &local_nsoff(Some(stored)),
            |h| untouched(h).boxed(),
            |_, s| twin_exists(s),
        )
        .await
        .unwrap();
    assert_eq!(report.violating, None);
    assert!(!report.status_written);
}

#[tokio::test]
async fn after_a_restart_the_stored_condition_of_this_generation_stands() {
    let stored = compliant("False", SEVEN, 3, "2026-11-01T00:00:00Z");
    let report = world(PodAudit::new("liqo", RESYNC))
        .run(
            &local_nsoff(Some(stored)),
            |h| untouched(h).boxed(),
            |_, s| twin_exists(s),
        )
        .await
        .unwrap();
    assert_eq!(report.violating, None, "no pod was listed");
    assert!(!report.status_written);
}

#[tokio::test]
async fn pods_that_follow_a_new_generation_turn_the_condition_true_without_a_warning() {
    let stored = compliant("False", SEVEN, 2, "2026-11-01T00:00:00Z");
    let home = |mut h: ApiServer| {
        async move {
            let call = h.expect(Method::GET, PODS_PATH).await;
            call.ok(&page(vec![pod("local", "worker-1", json!({}))], ""));
            let call = h.expect(Method::PATCH, STATUS_PATH).await;
            let want = ready_status(Some(compliant("True", NONE, 3, NOW)));
            assert_eq!(written_status(&call.body), want);
            call.ok(&nsoff_body());
            h.expect_done().await;
        }
        .boxed()
    };
    let report = world(PodAudit::new("liqo", RESYNC))
        .run(&local_nsoff(Some(stored)), home, |_, s| twin_exists(s))
        .await
        .unwrap();
    assert_eq!(report.violating, Some(0));
    assert!(report.notices.is_empty(), "{:?}", report.notices);
}

#[tokio::test]
async fn pods_are_not_judged_while_the_twins_are_not_ready() {
    let stored = compliant("True", NONE, 2, "2026-11-01T00:00:00Z");
    let nsoff = local_nsoff(Some(stored.clone()));
    // r1 cannot be reached: the phase is AllFailed, no pod is listed, and the stored
    // condition is carried into the new status as it was.
    let home = move |mut h: ApiServer| {
        async move {
            let call = h.expect(Method::PATCH, STATUS_PATH).await;
            let status = written_status(&call.body);
            assert_eq!(status["offloadingPhase"], "AllFailed");
            assert_eq!(status["conditions"][2], stored);
            call.ok(&nsoff_body());
            h.expect_done().await;
        }
        .boxed()
    };
    let mut w = World::new(local_namespace(false));
    w.node(vnode("r1", "eu")).broken("r1", "no route to host");
    w.audit_pods(PodAudit::new("liqo", RESYNC));
    let report = w.run(&nsoff, home, |_, s| untouched(s).boxed());
    let report = report.await.unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::AllFailed));
    assert_eq!(report.violating, None);
}

#[tokio::test]
async fn a_failed_list_keeps_the_stored_condition() {
    let stored = compliant("True", NONE, 2, "2026-11-01T00:00:00Z");
    let home = |mut h: ApiServer| {
        async move {
            h.expect(Method::GET, PODS_PATH)
                .await
                .fail(403, "Forbidden");
            h.expect_done().await;
        }
        .boxed()
    };
    let report = world(PodAudit::new("liqo", RESYNC))
        .run(&local_nsoff(Some(stored)), home, |_, s| twin_exists(s))
        .await
        .unwrap();
    assert_eq!(report.phase, Some(OffloadingPhase::Ready));
    assert_eq!(report.violating, None);
    assert!(!report.status_written);
}
