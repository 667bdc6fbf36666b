//! `evict namespace` against a scripted API server (SPEC §12): what is listed, what is
//! evicted through which Eviction API version, PodDisruptionBudget refusals retried until
//! the deadline, DaemonSet and unmanaged pods left alone, a dry run that writes nothing, and
//! replacements judged again.

mod common;
#[path = "ctl/kit.rs"]
mod kit;

use std::time::Duration;

use http::{Method, StatusCode};
use nsoffload::ctl::evict::{evict, EvictOptions};
use nsoffload::ctl::Outcome;
use serde_json::{json, Value};

use common::mock_api::ApiServer;
use kit::{capture, path, stored, Printed};

const PODS: &str = "/api/v1/namespaces/shop/pods";

fn options(timeout_ms: u64) -> EvictOptions {
    EvictOptions {
        dry_run: false,
        include_unmanaged: false,
        timeout: Duration::from_millis(timeout_ms),
        poll: Duration::from_millis(10),
        runtime_class: "liqo".to_owned(),
    }
}

async fn run_evict<S, Fut>(options: EvictOptions, confirm: bool, script: S) -> (Printed, usize)
where
    S: FnOnce(ApiServer) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let asked = std::cell::Cell::new(0);
    let namespaces = vec!["shop".to_owned()];
    let printed = capture(
        false,
        async |client, report| {
            let mut confirm = |n: usize| {
                asked.set(n);
                confirm
            };
            evict(client, &namespaces, &options, report, &mut confirm).await
        },
        script,
    )
    .await;
    (printed, asked.get())
}

/// A pod of `shop` on `node`, controlled by `owner` (`ReplicaSet/web`, `DaemonSet/agent`) or
/// by nothing.
fn pod(name: &str, uid: &str, node: &str, owner: Option<&str>) -> Value {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "shop", "uid": uid},
        "spec": {"containers": [], "nodeName": node},
        "status": {"phase": "Running"},
    });
    if let Some(owner) = owner {
        let (kind, name) = owner.split_once('/').unwrap();
        p["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "owner", "controller": true,
        }]);
    }
    p
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

/// One read of the namespace: the Local NamespaceOffloading, the virtual node of r1, `pods`.
async fn judged(s: &mut ApiServer, pods: Vec<Value>) {
    let nsoff = stored(
        "shop",
        2,
        json!({"podOffloadingStrategy": "Local"}),
        Value::Null,
    );
    s.expect(Method::GET, &path("shop")).await.ok(&nsoff);
    let call = s.expect(Method::GET, "/api/v1/nodes").await;
    assert!(
        call.has_param("labelSelector", "liqo.io%2Ftype%3Dvirtual-node"),
        "{}",
        call.query
    );
    let vk = json!({"metadata": {"name": "vk-r1", "labels": {
        "liqo.io/type": "virtual-node", "liqo.io/remote-cluster-id": "r1"}}});
    call.ok(&list("NodeList", vec![vk]));
    let call = s.expect(Method::GET, PODS).await;
    assert!(call.has_param("limit", "500"), "{}", call.query);
    call.ok(&list("PodList", pods));
}

/// Discovery of `policy/v1`: served or not.
async fn discovery(s: &mut ApiServer, v1: bool) {
    let call = s.expect(Method::GET, "/apis/policy/v1").await;
    if v1 {
        call.ok(&json!({"kind": "APIResourceList", "groupVersion": "policy/v1", "resources": []}));
    } else {
        call.fail(404, "NotFound");
    }
}

/// Expects an eviction of `name` with `version`, answered with `code`.
async fn eviction(s: &mut ApiServer, name: &str, version: &str, code: u16) {
    let call = s
        .expect(Method::POST, &format!("{PODS}/{name}/eviction"))
        .await;
    assert_eq!(
        call.body,
        json!({"apiVersion": version, "kind": "Eviction", "metadata": {"name": name, "namespace": "shop"}})
    );
    if code == 201 {
        call.reply(
            StatusCode::CREATED,
            &json!({"kind": "Status", "status": "Success"}),
        );
    } else {
        call.fail(code, "TooManyRequests");
    }
}

/// Expects the eviction mark on the NamespaceOffloading.
async fn marked(s: &mut ApiServer) {
    let call = s.expect(Method::PATCH, &path("shop")).await;
    assert_eq!(call.content_type, "application/merge-patch+json");
    let at = call.body["metadata"]["annotations"]["offloading.liqo.io/pods-evicted-at"]
        .as_str()
        .expect("the mark")
        .to_owned();
    assert!(at.parse::<k8s_openapi::jiff::Timestamp>().is_ok(), "{at}");
    call.ok(&stored(
        "shop",
        2,
        json!({"podOffloadingStrategy": "Local"}),
        Value::Null,
    ));
}

const ON_VK: &str = "runs on virtual node vk-r1 (cluster r1), but the strategy is Local";

#[tokio::test]
async fn a_refused_eviction_is_retried_and_the_namespace_ends_clean() {
    let (p, asked) = run_evict(options(900), true, |mut s| async move {
        judged(
            &mut s,
            vec![pod("web-1", "u1", "vk-r1", Some("ReplicaSet/web"))],
        )
        .await;
        discovery(&mut s, false).await;
        eviction(&mut s, "web-1", "policy/v1beta1", 429).await;
        eviction(&mut s, "web-1", "policy/v1beta1", 201).await;
        // Gone, and its replacement runs on a local node.
        judged(
            &mut s,
            vec![pod("web-2", "u2", "worker-1", Some("ReplicaSet/web"))],
        )
        .await;
        marked(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(asked, 1, "asked once, for one pod");
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)], "{p:?}");
    assert_eq!(
        p.out,
        format!(
            "shop: 1 pod(s) do not follow the policy:\n  web-1 {ON_VK} [evict]\n\
             shop: eviction of pod web-1 refused for now, retrying: mock: TooManyRequests\n\
             shop: evicted pod web-1\nshop: every pod follows the policy now\n"
        )
    );
    assert_eq!(p.err, "");
}

#[tokio::test]
async fn waits_until_the_evicted_pod_is_gone_and_uses_policy_v1_when_served() {
    let (p, _) = run_evict(options(900), true, |mut s| async move {
        judged(
            &mut s,
            vec![pod("web-1", "u1", "vk-r1", Some("ReplicaSet/web"))],
        )
        .await;
        discovery(&mut s, true).await;
        eviction(&mut s, "web-1", "policy/v1", 201).await;
        // Still there (terminating), then gone.
        let mut terminating = pod("web-1", "u1", "vk-r1", Some("ReplicaSet/web"));
        terminating["metadata"]["deletionTimestamp"] = json!("2026-12-05T10:00:00Z");
        judged(&mut s, vec![terminating]).await;
        judged(&mut s, vec![]).await;
        marked(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)], "{p:?}");
}

#[tokio::test]
async fn daemonset_and_unmanaged_pods_are_reported_and_never_evicted() {
    let (p, asked) = run_evict(options(900), true, |mut s| async move {
        judged(
            &mut s,
            vec![
                pod("agent-x", "u1", "vk-r1", Some("DaemonSet/agent")),
                pod("bare", "u2", "vk-r1", None),
                pod("ok", "u3", "worker-1", Some("ReplicaSet/web")),
            ],
        )
        .await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(asked, 0, "nothing to evict, nothing to confirm");
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert!(
        p.out.contains("shop: 2 pod(s) do not follow the policy:"),
        "{}",
        p.out
    );
    assert!(
        p.out.contains(&format!(
            "  agent-x {ON_VK} [skip: DaemonSet agent would recreate it on the same node"
        )),
        "{}",
        p.out
    );
    assert!(
        p.out.contains(&format!(
            "  bare {ON_VK} [skip: no controller would recreate it"
        )),
        "{}",
        p.out
    );
    assert!(
        p.err.contains("no violating pod can be evicted"),
        "{}",
        p.err
    );
}

#[tokio::test]
async fn include_unmanaged_evicts_pods_without_a_controller() {
    let mut o = options(900);
    o.include_unmanaged = true;
    let (p, asked) = run_evict(o, true, |mut s| async move {
        judged(&mut s, vec![pod("bare", "u2", "vk-r1", None)]).await;
        discovery(&mut s, true).await;
        eviction(&mut s, "bare", "policy/v1", 201).await;
        judged(&mut s, vec![]).await;
        marked(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(asked, 1);
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)], "{p:?}");
}

#[tokio::test]
async fn a_dry_run_lists_and_writes_nothing() {
    let mut o = options(900);
    o.dry_run = true;
    let (p, asked) = run_evict(o, true, |mut s| async move {
        judged(
            &mut s,
            vec![pod("web-1", "u1", "vk-r1", Some("ReplicaSet/web"))],
        )
        .await;
        // No discovery, no eviction.
        s.expect_done().await;
    })
    .await;
    assert_eq!(asked, 0);
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert!(
        p.out
            .ends_with("dry run: 1 pod(s) would be evicted; nothing was\n"),
        "{}",
        p.out
    );
}

#[tokio::test]
async fn not_confirmed_evicts_nothing() {
    let (p, asked) = run_evict(options(900), false, |mut s| async move {
        judged(
            &mut s,
            vec![pod("web-1", "u1", "vk-r1", Some("ReplicaSet/web"))],
        )
        .await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(asked, 1);
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)]);
    assert_eq!(p.err, "not confirmed; nothing was evicted\n");
}

#[tokio::test]
async fn a_budget_that_never_allows_is_reported_at_the_deadline() {
    let (p, _) = run_evict(options(150), true, |mut s| async move {
        judged(&mut s, vec![pod("web-1", "u1", "vk-r1", Some("ReplicaSet/web"))]).await;
        discovery(&mut s, false).await;
        // Refused on every try until the deadline; then the pods are read again.
        loop {
            let call = s.next_call().await.expect("a call");
            if call.method == Method::POST {
                call.fail(429, "TooManyRequests");
                continue;
            }
            assert_eq!(call.path, path("shop"));
            let nsoff = stored("shop", 2, json!({"podOffloadingStrategy": "Local"}), Value::Null);
            call.ok(&nsoff);
            break;
        }
        let vk = json!({"metadata": {"name": "vk-r1", "labels": {"liqo.io/type": "virtual-node", "liqo.io/remote-cluster-id": "r1"}}});
        s.expect(Method::GET, "/api/v1/nodes").await.ok(&list("NodeList", vec![vk]));
        let still = pod("web-1", "u1", "vk-r1", Some("ReplicaSet/web"));
        s.expect(Method::GET, PODS).await.ok(&list("PodList", vec![still]));
        s.expect_done().await;
    })
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)], "{p:?}");
    assert!(
        p.err
            .contains("shop: pod web-1 not evicted within 150ms: mock: TooManyRequests"),
        "{}",
        p.err
    );
    assert!(
        p.err.contains(&format!("  web-1 {ON_VK} [not evicted]")),
        "{}",
        p.err
    );
}

#[tokio::test]
async fn a_replacement_that_violates_again_is_reported_not_evicted() {
    let (p, _) = run_evict(options(900), true, |mut s| async move {
        judged(
            &mut s,
            vec![pod("web-1", "u1", "vk-r1", Some("ReplicaSet/web"))],
        )
        .await;
        discovery(&mut s, true).await;
        eviction(&mut s, "web-1", "policy/v1", 201).await;
        judged(
            &mut s,
            vec![pod("web-2", "u2", "vk-r1", Some("ReplicaSet/web"))],
        )
        .await;
        // No eviction of the replacement.
        marked(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Failed)], "{p:?}");
    assert!(
        p.err.contains(&format!(
            "  web-2 {ON_VK} [a replacement that violates the policy again"
        )),
        "{}",
        p.err
    );
}

#[tokio::test]
async fn a_namespace_that_is_not_offloaded_has_nothing_to_evict() {
    let (p, asked) = run_evict(options(900), true, |mut s| async move {
        s.expect(Method::GET, &path("shop"))
            .await
            .fail(404, "NotFound");
        s.expect_done().await;
    })
    .await;
    assert_eq!(asked, 0);
    assert_eq!(p.outcomes, [("shop".to_owned(), Outcome::Done)]);
    assert_eq!(p.out, "shop: not offloaded; no pod to judge\n");
}
