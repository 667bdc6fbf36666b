//! `nsoffload explain` as an operator runs it: the binary against a canned API server on
//! 127.0.0.1 (plain HTTP, chosen by `--kubeconfig`), for the exit status (0 when the pod may
//! run, 1 when not) and the printed text, which is the golden files' of the flow tests; and
//! the usage errors (exit 2) found before connecting.

#[path = "bin/kit.rs"]
mod bin;
mod common;
#[path = "ctl/explain_kit.rs"]
mod explain_kit;
#[path = "ctl/kit.rs"]
mod kit;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use explain_kit::{nodes, offloading, spec, NS};
use kit::{ready, status};
use serde_json::{json, Value};

/// Answers each `GET path` from `answers` (404 otherwise), recording every request line.
fn serve(answers: BTreeMap<String, Value>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap_or(0) > 2 {
                header.clear();
            }
            let mut parts = request.split_whitespace();
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            log.lock().unwrap().push(format!("{method} {target}"));
            let path = target.split('?').next().unwrap_or("");
            let (code, body) = match answers.get(path) {
                Some(body) if method == "GET" => ("200 OK", body.clone()),
                _ => (
                    "404 Not Found",
                    common::mock_api::status_body(404, "NotFound"),
                ),
            };
            let body = serde_json::to_vec(&body).unwrap();
            let head = format!(
                "HTTP/1.1 {code}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (port, seen)
}

fn kubeconfig(dir: &Path, port: u16) -> String {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters: [{{name: home, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n\
         users: [{{name: me, user: {{}}}}]\n\
         contexts: [{{name: home, context: {{cluster: home, user: me, namespace: {NS}}}}}]\n\
         current-context: home\n"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The home cluster: `shop` labelled and offloaded with `strategy`, ready on r1 and r2.
fn home(strategy: &str, extra: &[(&str, Value)]) -> BTreeMap<String, Value> {
    let st = status(1, "Ready", json!({"r1": ready(), "r2": ready()}));
    let mut answers = BTreeMap::from([
        (
            format!("/api/v1/namespaces/{NS}"),
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": NS, "labels": {"liqo.io/scheduling-enabled": "true"}}}),
        ),
        (kit::path(NS), offloading(spec(strategy, json!([])), st)),
        ("/api/v1/nodes".to_owned(), nodes()),
    ]);
    answers.extend(extra.iter().map(|(p, v)| ((*p).to_owned(), v.clone())));
    answers
}

/// Runs `explain ARGS --kubeconfig K` with `stdin`: (exit code, stdout, stderr).
fn explain(port: u16, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), port);
    let mut child = bin::command(dir.path())
        .arg("explain")
        .args(args)
        .args(["--kubeconfig", &config])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = bin::text;
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/explain");
    std::fs::read_to_string(path.join(name)).unwrap()
}

#[test]
fn a_pod_that_may_run_exits_0_reading_only() {
    let pod = explain_kit::stored_pod(
        "web-5d8f-x2x8p",
        "2026-12-01T11:00:00Z",
        json!({"containers": [{"name": "web", "image": "nginx"}],
               "tolerations": [explain_kit::tv()], "nodeName": "l1"}),
        json!({"phase": "Running"}),
    );
    let pod_path = format!("/api/v1/namespaces/{NS}/pods/web-5d8f-x2x8p");
    let (port, seen) = serve(home("LocalAndRemote", &[(&pod_path, pod)]));
    // No -n: the kubeconfig context's namespace.
    let (code, out, err) = explain(port, &["pod", "web-5d8f-x2x8p"], "");
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert_eq!(out, golden("existing-ready.txt"));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|r| r.starts_with("GET ")), "{seen:?}");
    // The ReplicaSet could not be read (404): the pod stands for its template.
    assert!(
        seen.iter().any(|r| r.contains("/replicasets/web-5d8f")),
        "{seen:?}"
    );
}

const TWO: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeSelector: {region: eu}
  containers: [{name: web, image: nginx}]
---
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

#[test]
fn a_file_where_one_pod_cannot_run_exits_1_in_both_forms() {
    let (port, _) = serve(home("Remote", &[]));
    let (code, out, err) = explain(port, &["-f", "-"], TWO);
    assert_eq!((code, err.as_str()), (Some(1), ""));
    assert_eq!(out, golden("two-documents.txt"));
    let (code, out, err) = explain(port, &["-f", "-", "-o", "json"], TWO);
    assert_eq!((code, err.as_str()), (Some(1), ""));
    assert_eq!(out, golden("two-documents.json"));
}

#[test]
fn a_missing_pod_is_one_line_and_exits_1() {
    let (port, _) = serve(home("Remote", &[]));
    let (code, out, err) = explain(port, &["pod", "nope", "-n", NS], "");
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert_eq!(
        err,
        "error: pod nope does not exist in namespace shop; list its pods with: kubectl get \
         pods -n shop\n"
    );
}

/// Runs the binary hermetically (no kubeconfig, not in a pod) with `stdin`.
fn hermetic(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let home = tempfile::tempdir().unwrap();
    let mut child = bin::command(home.path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        bin::text(&out.stdout),
        bin::text(&out.stderr),
    )
}

#[test]
fn usage_errors_exit_2_before_connecting_and_a_missing_kubeconfig_exits_1() {
    let service = "kind: Service\nmetadata: {name: s}\n";
    let cases: [(&[&str], &str, i32, &str); 6] = [
        (&["explain"], "", 2, "error: say what to explain: `pod NAME` (a pod that exists) or `-f FILE` (a manifest)\n"),
        (&["explain", "deployment", "web"], "", 2, "error: explain takes `pod NAME` or `-f FILE`, not \"deployment\"; for a workload, explain its manifest with -f\n"),
        (&["explain", "-f", "-"], service, 2, "error: stdin: document 1: kind Service has no pod to explain; explain takes a Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or CronJob\n"),
        (&["explain", "-f", "-", "-n", "other"], TWO, 2, "error: stdin: document 2: Deployment web is in namespace shop, but -n says other; drop -n or make them agree\n"),
        (&["explain", "-f", "-"], TWO, 1, "error: no Kubernetes configuration found: "),
        // Read like kubectl's kinds: any case.
        (&["explain", "Pod", "web"], "", 1, "error: no Kubernetes configuration found: "),
    ];
    for (args, stdin, code, want) in cases {
        let (status, out, err) = hermetic(args, stdin);
        assert_eq!(status, Some(code), "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}");
        assert!(err.starts_with(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let (status, _, err) = hermetic(&["explain", "-f", "/nonexistent/web.yaml"], "");
    assert_eq!(status, Some(2), "{err}");
    assert!(
        err.starts_with("error: cannot read /nonexistent/web.yaml: "),
        "{err}"
    );
}
