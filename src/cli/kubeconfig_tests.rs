use std::path::{Path, PathBuf};

use super::*;

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://192.0.2.1:6443', insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
";

fn env(kubeconfig: Option<&str>, home: Option<&Path>, in_cluster: bool) -> Environment {
    Environment {
        kubeconfig: kubeconfig.map(Into::into),
        home: home.map(Path::to_owned),
        in_cluster,
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn load_error(flag: Option<&Path>, context: Option<&str>, env: &Environment) -> String {
    run(load(flag, context, env)).unwrap_err().to_string()
}

#[test]
fn the_search_follows_kubectl() {
    let home = Path::new("/home/u");
    let config = PathBuf::from("/home/u/.kube/config");
    let cases = [
        (
            Some("/f"),
            None,
            env(Some("/e"), Some(home), true),
            vec![Source::Flag("/f".into())],
        ),
        (
            None,
            None,
            env(Some("/a:/b"), Some(home), false),
            vec![
                Source::Env(vec!["/a".into(), "/b".into()]),
                Source::InCluster,
            ],
        ),
        (
            None,
            None,
            env(Some(""), Some(home), false),
            vec![Source::Home(config.clone()), Source::InCluster],
        ),
        (
            None,
            Some("ctx"),
            env(None, Some(home), true),
            vec![Source::Home(config)],
        ),
        (None, None, env(None, None, true), vec![Source::InCluster]),
    ];
    for (flag, context, env, want) in cases {
        assert_eq!(search(flag.map(Path::new), context, &env), want, "{env:?}");
    }
}

#[test]
fn nothing_found_names_every_place_tried_once() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let config = home.join(".kube/config");
    assert_eq!(
        load_error(None, None, &env(None, Some(home), false)),
        format!(
            "no Kubernetes configuration found: {} does not exist; not in a pod \
             (KUBERNETES_SERVICE_HOST is not set); pass --kubeconfig FILE, set $KUBECONFIG, or \
             create ~/.kube/config",
            config.display()
        )
    );
    assert_eq!(
        load_error(None, None, &env(Some("/nonexistent/kc"), Some(home), false)),
        "no Kubernetes configuration found: $KUBECONFIG names /nonexistent/kc, which does not \
         exist; ~/.kube/config is not read when $KUBECONFIG is set; not in a pod \
         (KUBERNETES_SERVICE_HOST is not set); point $KUBECONFIG at a kubeconfig file, or pass \
         --kubeconfig FILE"
    );
    let message = load_error(None, Some("prod"), &env(Some("/x:/y"), None, true));
    assert!(
        message.contains("$KUBECONFIG names /x, /y, none of which exists")
            && message.contains("--context prod needs a kubeconfig"),
        "{message}"
    );
    let message = load_error(None, None, &env(None, None, false));
    assert!(message.contains("no home directory"), "{message}");
}

#[test]
fn a_named_file_is_the_only_place_looked_at() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".kube")).unwrap();
    std::fs::write(dir.path().join(".kube/config"), KUBECONFIG).unwrap();
    let env = env(None, Some(dir.path()), true);
    assert_eq!(
        load_error(Some(Path::new("/nonexistent/kc")), None, &env),
        "cannot read kubeconfig /nonexistent/kc (--kubeconfig): no such file"
    );
}

#[test]
fn a_broken_file_stops_the_search() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".kube")).unwrap();
    let config = dir.path().join(".kube/config");
    std::fs::write(&config, "clusters: [oops").unwrap();
    // In a pod too: a broken kubeconfig is reported, not skipped for another cluster.
    let message = load_error(None, None, &env(None, Some(dir.path()), true));
    let prefix = format!(
        "cannot read kubeconfig {} (~/.kube/config): ",
        config.display()
    );
    assert!(message.starts_with(&prefix), "{message}");
    assert!(!message.contains("in-cluster"), "{message}");
}

#[test]
fn files_of_kubeconfig_are_merged_and_missing_ones_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("present.yaml");
    std::fs::write(&present, KUBECONFIG).unwrap();
    let list = format!(
        "{}:{}",
        dir.path().join("missing").display(),
        present.display()
    );
    let config = run(load(None, None, &env(Some(&list), None, false))).unwrap();
    assert_eq!(config.cluster_url.to_string(), "https://192.0.2.1:6443/");
    let message = load_error(None, Some("nope"), &env(Some(&list), None, false));
    let prefix = format!(
        "cannot use kubeconfig {}, {}: ",
        dir.path().join("missing").display(),
        present.display()
    );
    assert!(
        message.starts_with(&prefix) && message.contains("nope"),
        "{message}"
    );
}
