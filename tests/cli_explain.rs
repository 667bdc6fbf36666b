//! `explain` against a scripted API server: every read is asserted in order (and nothing is
//! written), and the whole output, text and JSON, is compared with golden files in
//! tests/golden/explain/ (`NSOFFLOAD_BLESS=1` rewrites them). The README's examples are these
//! files.

mod common;
#[path = "ctl/explain_kit.rs"]
mod explain_kit;
#[path = "ctl/kit.rs"]
mod kit;

use explain_kit::*;
use kit::{creating, ready, status};
use nsoffload::cli::exit;
use nsoffload::ctl::explain::manifest::manifests;
use nsoffload::ctl::explain::Report;
use nsoffload::ctl::explain::{explain_manifests, explain_pod, render, ExplainError, Options};
use serde_json::{json, Value};

use common::mock_api::{self, ApiServer};

fn options() -> Options {
    Options {
        runtime_class: "liqo".to_owned(),
    }
}

async fn pod_flow<S, Fut>(name: &str, script: S) -> Result<Report, ExplainError>
where
    S: FnOnce(ApiServer) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, server) = mock_api::pair();
    mock_api::run(
        async {
            let out = explain_pod(&client, NS, name, &options()).await;
            drop(client);
            out
        },
        script(server),
    )
    .await
}

async fn file_flow<S, Fut>(file: &str, script: S) -> Vec<Report>
where
    S: FnOnce(ApiServer) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let found = manifests(file, None).expect("a valid file");
    let (client, server) = mock_api::pair();
    mock_api::run(
        async {
            let out = explain_manifests(&client, &found, NS, &options()).await;
            drop(client);
            out
        },
        script(server),
    )
    .await
    .expect("explained")
}

/// Checks both forms against `name.txt` and `name.json`; returns whether every pod may run.
fn check(name: &str, reports: &[Report]) -> bool {
    let text = render::human(reports, false);
    assert!(!text.contains('\x1b'), "no colour off a terminal");
    check_golden(&format!("{name}.txt"), &text);
    let json = render::json(reports);
    check_golden(&format!("{name}.json"), &json);
    let parsed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.is_array(), reports.len() > 1);
    reports.iter().all(|r| r.explanation.may_run())
}

fn web_spec(extra: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "web", "image": "nginx"}]});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    spec
}

#[tokio::test]
async fn existing_pod_in_a_ready_namespace_may_run() {
    let pod_spec = web_spec(json!({"tolerations": [tv()], "nodeName": "l1"}));
    let template = web_spec(json!({"tolerations": [tv()]}));
    let report = pod_flow("web-5d8f-x2x8p", |mut s| async move {
        expect_namespace(&mut s, true).await;
        let st = status(1, "Ready", json!({"r1": ready(), "r2": ready()}));
        expect_offloading(
            &mut s,
            Some(offloading(spec("LocalAndRemote", json!([])), st)),
        )
        .await;
        let pod = stored_pod(
            "web-5d8f-x2x8p",
            "2026-12-01T11:00:00Z",
            pod_spec,
            json!({"phase": "Running"}),
        );
        expect_pod(&mut s, "web-5d8f-x2x8p", &pod).await;
        expect_replica_set(&mut s, template).await;
        expect_nodes(&mut s).await;
        s.expect_done().await;
    })
    .await
    .unwrap();
    assert!(check("existing-ready", &[report]));
}

#[tokio::test]
async fn pending_pod_created_before_offloading_shows_the_scheduler_message() {
    // It asks for the EU cluster but was created before the namespace was offloaded, so it
    // lacks the toleration the webhook would give it now.
    let pod_spec = web_spec(json!({"nodeSelector": {"region": "eu"}}));
    let template = pod_spec.clone();
    let report = pod_flow("web-5d8f-x2x8p", |mut s| async move {
        expect_namespace(&mut s, true).await;
        let st = status(1, "Ready", json!({"r1": ready(), "r2": ready()}));
        expect_offloading(
            &mut s,
            Some(offloading(spec("LocalAndRemote", json!([])), st)),
        )
        .await;
        let pod = stored_pod(
            "web-5d8f-x2x8p",
            "2026-12-01T09:00:00Z",
            pod_spec,
            json!({"phase": "Pending"}),
        );
        expect_pod(&mut s, "web-5d8f-x2x8p", &pod).await;
        expect_replica_set(&mut s, template).await;
        expect_nodes(&mut s).await;
        let older = "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.";
        let last = "0/4 nodes are available: 1 node(s) had untolerated taint \
                    {virtual-node.liqo.io/not-allowed: true}, 3 node(s) didn't match Pod's node \
                    affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not \
                    helpful for scheduling.";
        let events = [
            ("FailedScheduling", last, "2026-12-01T09:05:00Z"),
            ("FailedScheduling", older, "2026-12-01T09:00:01Z"),
            ("Scheduled", "ignored", "2026-12-01T09:10:00Z"),
        ];
        expect_events(&mut s, "web-5d8f-x2x8p", &events).await;
        s.expect_done().await;
    })
    .await
    .unwrap();
    assert!(report
        .scheduler_message
        .as_deref()
        .unwrap()
        .contains("untolerated taint"));
    assert!(!check("pending-created-before-offloading", &[report]));
}

const PREFERS_EU: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeSelector: {region: eu}
  containers: [{name: web, image: nginx}]
";

#[tokio::test]
async fn manifest_in_a_namespace_not_offloaded() {
    let reports = file_flow(PREFERS_EU, |mut s| async move {
        expect_namespace(&mut s, false).await;
        expect_offloading(&mut s, None).await;
        expect_nodes(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert!(!check("not-offloaded", &reports));
}

#[tokio::test]
async fn manifest_while_the_offloading_is_not_ready() {
    let reports = file_flow(PREFERS_EU, |mut s| async move {
        expect_namespace(&mut s, true).await;
        let st = status(1, "InProgress", json!({"r1": creating(), "r2": ready()}));
        expect_offloading(
            &mut s,
            Some(offloading(spec("LocalAndRemote", json!([])), st)),
        )
        .await;
        expect_nodes(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert!(!check("offloading-not-ready", &reports));
}

#[tokio::test]
async fn manifest_when_the_selector_matches_no_cluster() {
    let reports = file_flow(PREFERS_EU, |mut s| async move {
        expect_namespace(&mut s, true).await;
        let terms = json!([{"matchExpressions": [{"key": "region", "operator": "In", "values": ["asia"]}]}]);
        let st = status(1, "NoClusterSelected", json!({}));
        expect_offloading(&mut s, Some(offloading(spec("LocalAndRemote", terms), st))).await;
        expect_nodes(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert!(!check("no-cluster-selected", &reports));
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {disk: ssd}
      containers: [{name: web, image: nginx}]
";

fn remote_only() -> Value {
    let st = status(1, "Ready", json!({"r1": ready(), "r2": ready()}));
    offloading(spec("Remote", json!([])), st)
}

#[tokio::test]
async fn deployment_whose_node_selector_contradicts_the_strategy() {
    let reports = file_flow(DEPLOYMENT, |mut s| async move {
        expect_namespace(&mut s, true).await;
        expect_offloading(&mut s, Some(remote_only())).await;
        expect_nodes(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert!(!check("deployment-node-selector", &reports));
}

#[tokio::test]
async fn two_documents_are_explained_in_turn_reading_the_cluster_once() {
    let file = format!("{PREFERS_EU}---\n{DEPLOYMENT}");
    let reports = file_flow(&file, |mut s| async move {
        expect_namespace(&mut s, true).await;
        expect_offloading(&mut s, Some(remote_only())).await;
        expect_nodes(&mut s).await;
        s.expect_done().await;
    })
    .await;
    assert_eq!(reports.len(), 2);
    assert!(reports[0].explanation.may_run() && !reports[1].explanation.may_run());
    assert!(!check("two-documents", &reports));
}

#[tokio::test]
async fn a_runtime_class_pod_reads_its_runtime_class() {
    let file = "kind: Pod\nmetadata: {name: batch}\n\
                spec: {runtimeClassName: liqo, containers: [{name: b, image: busybox}]}\n";
    let reports = file_flow(file, |mut s| async move {
        expect_namespace(&mut s, true).await;
        let st = status(1, "Ready", json!({"r1": ready(), "r2": ready()}));
        let nsoff = offloading(spec("LocalAndRemote", json!([])), st);
        expect_offloading(&mut s, Some(nsoff)).await;
        expect_nodes(&mut s).await;
        let class = json!({
            "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": "liqo"}, "handler": "liqo",
            "scheduling": {"nodeSelector": {"liqo.io/type": "virtual-node"}, "tolerations": [tv()]},
        });
        let path = "/apis/node.k8s.io/v1/runtimeclasses/liqo";
        s.expect(http::Method::GET, path).await.ok(&class);
        s.expect_done().await;
    })
    .await;
    assert!(check("runtime-class", &reports));
}

/// Checks that `error` is one line, says `want` and exits 1.
fn one_line_failure(error: ExplainError, want: &str) {
    let error = anyhow::Error::from(error);
    assert_eq!(exit::message(&error), want);
    assert!(!want.contains('\n'));
    assert_eq!(exit::status(&error), exit::FAILED);
}

#[tokio::test]
async fn no_such_pod_is_one_line() {
    let error = pod_flow("nope", |mut s| async move {
        expect_namespace(&mut s, true).await;
        expect_offloading(&mut s, Some(remote_only())).await;
        let path = format!("/api/v1/namespaces/{NS}/pods/nope");
        s.expect(http::Method::GET, &path)
            .await
            .fail(404, "NotFound");
        s.expect_done().await;
    })
    .await
    .unwrap_err();
    one_line_failure(
        error,
        "pod nope does not exist in namespace shop; list its pods with: kubectl get pods -n shop",
    );
}

#[tokio::test]
async fn no_such_namespace_is_one_line() {
    let error = pod_flow("web", |mut s| async move {
        let path = format!("/api/v1/namespaces/{NS}");
        s.expect(http::Method::GET, &path)
            .await
            .fail(404, "NotFound");
        s.expect_done().await;
    })
    .await
    .unwrap_err();
    one_line_failure(
        error,
        "namespace shop does not exist; check the name (-n) and the cluster (--context): \
         kubectl get namespaces",
    );
}

#[tokio::test]
async fn a_forbidden_node_list_is_one_line() {
    let reports = {
        let found = manifests(PREFERS_EU, None).unwrap();
        let (client, server) = mock_api::pair();
        mock_api::run(
            async {
                let out = explain_manifests(&client, &found, NS, &options()).await;
                drop(client);
                out
            },
            async move {
                let mut s = server;
                expect_namespace(&mut s, true).await;
                expect_offloading(&mut s, Some(remote_only())).await;
                s.expect(http::Method::GET, "/api/v1/nodes")
                    .await
                    .fail(403, "Forbidden");
                s.expect_done().await;
            },
        )
        .await
    };
    one_line_failure(
        reports.unwrap_err(),
        "cannot list nodes: forbidden; explain needs permission to list nodes (ask for a role \
         that allows it, or use another --context)",
    );
}

/// The README's examples are these golden files: every line shown (`…` marks lines left
/// out) appears, in order, in one of them.
#[test]
fn readme_examples_are_the_golden_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Why is my pod Pending?"))
        .expect("the README's explain section");
    let goldens: Vec<String> = std::fs::read_dir(root.join("tests/golden/explain"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let blocks: Vec<&str> = section
        .split("```console\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 5, "one example per common case");
    for block in blocks {
        let shown: Vec<&str> = block
            .lines()
            .filter(|l| !l.starts_with("$ ") && l.trim() != "…")
            .collect();
        let found = goldens.iter().any(|g| {
            let mut lines = g.lines();
            shown.iter().all(|s| lines.any(|l| l == *s))
        });
        assert!(found, "no golden file shows:\n{block}");
    }
}
