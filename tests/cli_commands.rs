//! The client commands as an operator runs the binary: `--output` against golden files (and
//! the printed objects pass the validating webhook's own checks), flag errors, the
//! unoffload confirmation rule, completions and help. Nothing here reaches a cluster: every
//! run sets `KUBECONFIG` to a missing file and hides any in-cluster configuration, so a
//! command that tried to connect would fail with a different message.
//!
//! Set `NSOFFLOAD_BLESS=1` to rewrite the golden files after an intended change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kube::core::admission::Operation;
use nsoffload::policy::validate::{validate_nsoff, ValidationConfig};
use nsoffload::policy::Verdict;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_nsoffload");

fn nsoffload(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("KUBECONFIG", "/nonexistent/nsoffload-test-kubeconfig")
        // Not in-cluster either, even when the tests themselves run in a pod.
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/offload")
        .join(name)
}

/// Runs `args`, compares stdout with the golden file and returns the printed objects.
fn check_golden(name: &str, args: &[&str]) -> Vec<Value> {
    let out = nsoffload(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "{args:?}");
    let printed = text(&out.stdout);
    let path = golden(name);
    if std::env::var_os("NSOFFLOAD_BLESS").is_some() {
        std::fs::write(&path, &printed).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (NSOFFLOAD_BLESS=1 writes it)", path.display()));
    assert_eq!(
        printed,
        expected,
        "{args:?} differs from {}",
        path.display()
    );
    if name.ends_with(".json") {
        let v: Value = serde_json::from_str(&printed).unwrap();
        match v["kind"].as_str() {
            Some("List") => v["items"].as_array().unwrap().clone(),
            _ => vec![v],
        }
    } else {
        printed
            .split("---\n")
            .map(|doc| serde_yaml::from_str(doc).unwrap())
            .collect()
    }
}

/// What the validating webhook would answer to creating `object`.
fn webhook_verdict(object: &Value) -> Verdict {
    let ns = object["metadata"]["namespace"].as_str().unwrap();
    let cfg = ValidationConfig {
        home_cluster_id: "home".into(),
    };
    validate_nsoff(&Operation::Create, None, ns, Some(object), None, &cfg)
}

/// Two namespaces, two ORed terms, `Remote`, printed as `format`.
fn two_namespaces(format: &str) -> Vec<&str> {
    let mut args = vec!["offload", "namespace", "shop", "web"];
    args.extend(["--selector", "region in (europe, us-west),!staging"]);
    args.extend([
        "--selector",
        "provider=aws",
        "--pod-offloading-strategy",
        "Remote",
    ]);
    args.extend(["--output", format]);
    args
}

#[test]
fn output_prints_golden_objects_the_webhook_accepts() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "default.yaml",
            &["offload", "namespace", "shop", "-o", "yaml"],
        ),
        ("two-namespaces.yaml", &two_namespaces("yaml")),
        ("two-namespaces.json", &two_namespaces("json")),
        (
            "selected-name.json",
            &[
                "offload",
                "namespace",
                "shop",
                "--remote-namespace-name",
                "shop-eu",
                "--selector",
                "tier!=free,env notin (test,dev,dev)",
                "-o",
                "json",
            ],
        ),
        (
            "enforce-same-name.yaml",
            &[
                "offload",
                "namespace",
                "shop",
                "--namespace-mapping-strategy",
                "EnforceSameName",
                "--pod-offloading-strategy",
                "Local",
                "--selector",
                "gpu",
                "-o",
                "yaml",
            ],
        ),
    ];
    for (name, args) in cases {
        let objects = check_golden(name, args);
        assert!(!objects.is_empty(), "{name}");
        for object in &objects {
            let verdict = webhook_verdict(object);
            assert!(
                matches!(verdict, Verdict::Allow { ref warnings } if warnings.is_empty()),
                "{name}: the webhook would answer {verdict:?}"
            );
        }
    }
}

#[test]
fn bad_flags_fail_before_connecting_and_say_why() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["offload", "namespace", "shop", "--selector", "a in ("],
            "error: --selector: invalid selector \"a in (\" at position 7: expected a value\n",
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
            "error: --remote-namespace-name gives one remote name, but 2 namespaces are named; \
             offload them one at a time\n",
        ),
        (
            &[
                "offload",
                "namespace",
                "shop",
                "--namespace-mapping-strategy",
                "SelectedName",
                "-o",
                "yaml",
            ],
            "error: --namespace-mapping-strategy SelectedName needs --remote-namespace-name\n",
        ),
        (
            &["offload", "namespace", "Shop", "-o", "yaml"],
            "error: \"Shop\" is not a namespace name: it must consist of lower case alphanumeric \
             characters or '-', and must start and end with an alphanumeric character\n",
        ),
        (
            &["unoffload", "namespace", "shop"],
            "error: unoffloading deletes the twin namespaces and everything in them; stdin is \
             not a terminal to confirm, so pass --yes\n",
        ),
        (
            &["evict", "namespace", "shop"],
            "error: evicting stops running pods; stdin is not a terminal to confirm, so pass \
             --yes (or --dry-run to only list them)\n",
        ),
        (
            &["evict", "namespace", "shop", "--timeout", "5x"],
            "error: invalid value '5x' for '--timeout <DURATION>': invalid duration \"5x\": \
             the unit must be ms, s, m or h\n\nFor more information, try '--help'.\n",
        ),
        (
            &["unoffload", "namespace", "bad_name", "--yes"],
            "error: \"bad_name\" is not a namespace name: it must consist of lower case \
             alphanumeric characters or '-', and must start and end with an alphanumeric \
             character\n",
        ),
    ];
    for (args, message) in cases {
        let out = nsoffload(args);
        // Usage errors: exit 2, like clap's own.
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr), message, "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
}

#[test]
fn usage_errors_list_the_accepted_values() {
    let out = nsoffload(&[
        "offload",
        "namespace",
        "shop",
        "--pod-offloading-strategy",
        "Remotely",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("[possible values: LocalAndRemote, Remote, Local]"),
        "{err}"
    );
    let out = nsoffload(&["offload", "namespace"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("<NAME>..."),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn without_a_cluster_the_error_says_how_to_point_at_one() {
    let out = nsoffload(&["unoffload", "namespace", "shop", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "error: no Kubernetes configuration found: $KUBECONFIG names \
             /nonexistent/nsoffload-test-kubeconfig, which does not exist"
        ),
        "{err}"
    );
    let out = nsoffload(&[
        "offload",
        "namespace",
        "shop",
        "--kubeconfig",
        "/nonexistent/kc",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(
        err,
        "error: cannot read kubeconfig /nonexistent/kc (--kubeconfig): no such file\n"
    );
}

#[test]
fn completions_cover_the_client_commands() {
    for (shell, marker) in [
        ("bash", "complete"),
        ("zsh", "#compdef nsoffload"),
        ("fish", "complete -c nsoffload"),
    ] {
        let out = nsoffload(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}");
        for word in [
            "offload",
            "unoffload",
            "pod-offloading-strategy",
            "LocalAndRemote",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = nsoffload(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_shows_examples() {
    let out = nsoffload(&["offload", "namespace", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("Examples:"), "{help}");
    assert!(
        help.contains("--selector 'region in (europe),!staging'"),
        "{help}"
    );
    let out = nsoffload(&["unoffload", "namespace", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("--yes"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
}

/// Every command's help ends with examples, each a command line of that command.
#[test]
fn every_command_has_examples() {
    for command in [
        &["serve"][..],
        &["certs"],
        &["manifests"],
        &["offload", "namespace"],
        &["unoffload", "namespace"],
        &["evict", "namespace"],
        &["explain"],
        &["completions"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let out = nsoffload(&args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        let examples = help
            .split_once("Examples:\n")
            .unwrap_or_else(|| panic!("no examples in {args:?}:\n{help}"))
            .1;
        let invocation = format!("nsoffload {}", command[0]);
        assert!(
            examples.lines().any(|l| l.contains(&invocation)),
            "{args:?}: no example runs `{invocation}`:\n{examples}"
        );
    }
}
