//! Errors and exit statuses as an operator meets them through the binary: one line that says
//! what failed and what to do, each cause once; the kubeconfig search explained with the
//! paths tried; an unreachable API server named by its address; exit 0 success, 1 failure,
//! 2 usage error, as `--help` and the README say.

#![cfg(unix)]

#[path = "bin/kit.rs"]
mod kit;

use std::net::TcpListener;
use std::path::Path;

use kit::{command, run, text};

/// Expects exit `code` and exactly one stderr line, `error: ` followed by `message`.
fn expect_error(out: &std::process::Output, code: i32, message: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err, format!("error: {message}\n"));
}

fn kubeconfig(dir: &Path, server: &str) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: c, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn without_a_configuration_the_search_is_explained_once() {
    let home = tempfile::tempdir().unwrap();
    let out = command(home.path())
        .args(["unoffload", "namespace", "foo", "--yes"])
        .output()
        .unwrap();
    expect_error(
        &out,
        1,
        &format!(
            "no Kubernetes configuration found: {}/.kube/config does not exist; not in a pod \
             (KUBERNETES_SERVICE_HOST is not set); pass --kubeconfig FILE, set $KUBECONFIG, or \
             create ~/.kube/config",
            home.path().display()
        ),
    );
    let out = command(home.path())
        .env("KUBECONFIG", "/nonexistent/kc")
        .args(["unoffload", "namespace", "foo", "--yes"])
        .output()
        .unwrap();
    expect_error(
        &out,
        1,
        "no Kubernetes configuration found: $KUBECONFIG names /nonexistent/kc, which does not \
         exist; ~/.kube/config is not read when $KUBECONFIG is set; not in a pod \
         (KUBERNETES_SERVICE_HOST is not set); point $KUBECONFIG at a kubeconfig file, or pass \
         --kubeconfig FILE",
    );
    let out = run(&[
        "offload",
        "namespace",
        "shop",
        "--kubeconfig",
        "/nonexistent/kc",
    ]);
    expect_error(
        &out,
        1,
        "cannot read kubeconfig /nonexistent/kc (--kubeconfig): no such file",
    );
}

#[test]
fn a_refused_connection_names_the_server() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then closed.
    let server = format!("https://127.0.0.1:{}", kit::free_port());
    let kc = kubeconfig(dir.path(), &server);
    let out = run(&["offload", "namespace", "shop", "--kubeconfig", &kc]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: namespace shop: cannot read its NamespaceOffloading: cannot connect to the \
             API server at {server}: connection refused; check that the cluster is up and that \
             the kubeconfig (--kubeconfig, --context) points at it\n\
             error: 1 of 1 namespace(s) not offloaded: shop\n"
        )
    );
}

#[test]
fn a_server_that_never_answers_times_out_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // Accepted by the kernel, never answered: the TLS handshake hangs.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("https://{}", silent.local_addr().unwrap());
    let kc = kubeconfig(dir.path(), &server);
    let started = std::time::Instant::now();
    let out = run(&[
        "unoffload",
        "namespace",
        "shop",
        "--yes",
        "--timeout",
        "2s",
        "--kubeconfig",
        &kc,
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "error: namespace shop: cannot read the namespace: cannot connect to the API server \
             at {server}: timed out; "
        )),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2_and_say_what_to_change() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["offload", "namespace", "shop", "--selector", "a in ("],
            "--selector: invalid selector \"a in (\" at position 7: expected a value",
        ),
        (
            &[
                "offload",
                "namespace",
                "a",
                "b",
                "--remote-namespace-name",
                "x",
            ],
            "--remote-namespace-name gives one remote name, but 2 namespaces are named; offload \
             them one at a time",
        ),
        (
            &[
                "offload",
                "namespace",
                "shop",
                "--namespace-mapping-strategy",
                "SelectedName",
            ],
            "--namespace-mapping-strategy SelectedName needs --remote-namespace-name",
        ),
        (
            &[
                "offload",
                "namespace",
                "shop",
                "--namespace-mapping-strategy",
                "EnforceSameName",
                "--remote-namespace-name",
                "x",
            ],
            "--remote-namespace-name is used only with --namespace-mapping-strategy \
             SelectedName, not EnforceSameName",
        ),
        (
            &["unoffload", "namespace", "Shop", "--yes"],
            "\"Shop\" is not a namespace name: it must consist of lower case alphanumeric \
             characters or '-', and must start and end with an alphanumeric character",
        ),
        (
            &[
                "serve",
                "--cluster-id",
                "home",
                "--standalone",
                "state.yaml",
            ],
            "standalone mode needs --tls-cert-file and --tls-key-file (nsoffload certs writes a \
             development pair)",
        ),
        (
            &[
                "serve",
                "--cluster-id",
                "home",
                "--webhook-url",
                "http://192.0.2.1:8443",
            ],
            "--webhook-url must start with https:// (got \"http://192.0.2.1:8443\")",
        ),
    ];
    for (args, message) in cases {
        let out = run(args);
        expect_error(&out, 2, message);
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
    // clap's own usage errors, for the flags it checks.
    for args in [
        &["certs", "--days", "0"][..],
        &["manifests", "--replicas", "0"],
        &["manifests", "--image", "a b"],
        &["offload", "namespace"],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn a_file_that_cannot_be_read_fails_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.yaml");
    std::fs::write(&state, "kind: Namespace\nmetadata: {name: a}\n").unwrap();
    let missing = dir.path().join("missing.crt");
    let out = run(&[
        "serve",
        "--cluster-id",
        "home",
        "--standalone",
        state.to_str().unwrap(),
        "--tls-cert-file",
        missing.to_str().unwrap(),
        "--tls-key-file",
        missing.to_str().unwrap(),
        "--bind-address",
        "127.0.0.1:0",
        "--admin-address",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let last = err.lines().last().unwrap();
    let cause = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(
        last,
        format!(
            "error: cannot load the serving certificate: cannot read {}: {cause}",
            missing.display()
        )
    );
}

#[test]
fn help_lists_the_exit_statuses() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for line in [
        "Exit status:",
        "  0  success",
        "  1  the operation failed",
        "  2  usage error",
    ] {
        assert!(help.contains(line), "{line:?} not in:\n{help}");
    }
    assert!(!help.contains('\u{1b}'), "colour codes in a pipe");
}
