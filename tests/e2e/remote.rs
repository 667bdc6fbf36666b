//! Remote clusters for the reconciler suite (`e2e_reconcile.rs`): which ones, how the home
//! cluster learns of them, and how each test leaves them clean.
//!
//! Each remote cluster `<id>` is made known to the reconciler the way Liqo would: one virtual
//! Node `e2e-virtual-<id>` in the home cluster and one credential Secret `e2e-remote-<id>` in
//! the server's namespace holding the cluster's kubeconfig. The Node is a plain API object
//! (no kubelet: it never becomes Ready, which the reconciler does not look at) labelled
//! `liqo.io/type=virtual-node` and `liqo.io/remote-cluster-id=<id>`, plus
//! `e2e.nsoffload/index=<n>` and `e2e.nsoffload/name=<id>` for the tests' cluster selectors,
//! and tainted like a virtual node so nothing is ever scheduled on it. Both objects carry the
//! suite label, so the supervisor deletes them at exit.
//!
//! Tests run through [`check_remote`]: after the body, pass or fail, it deletes the test's
//! NamespaceOffloadings, waits (bounded) for the reconciler to release them, which deletes
//! their twins, and then deletes whatever of the test is still on the remote clusters
//! (printing it: after a release nothing should be left). On failure it first prints the
//! test's namespaces as every remote cluster has them.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _};
use futures_util::FutureExt as _;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt as _};
use nsoffload::api::consts::OFFLOADING_ENABLED_LABEL;
use nsoffload::api::NamespaceOffloading;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::harness::{
    client, say, E2e, ServerMode, FIELD_MANAGER, HOME_CLUSTER_ID, KUBECONFIG_ENV, SERVER_NAMESPACE,
    SUITE_LABEL,
};
use crate::kit::{api_status, check, label_namespace, wait_until, Scope};
use crate::supervisor::sweep_remote;

/// Comma-separated `id=kubeconfig` pairs of 1 to 3 remote clusters; skipped without it.
pub const REMOTES_ENV: &str = "NSOFFLOAD_E2E_REMOTE_KUBECONFIGS";
/// Virtual-node label: the cluster's position in [`REMOTES_ENV`], from 0.
pub const INDEX_LABEL: &str = "e2e.nsoffload/index";
/// Virtual-node label: the cluster's id.
pub const NAME_LABEL: &str = "e2e.nsoffload/name";
/// SPEC §1, written out rather than imported so that the suite checks the contract.
pub const CLUSTER_ID_LABEL: &str = "liqo.io/remote-cluster-id";
pub const ORIGINAL_NAME_ANNOTATION: &str = "liqo.io/original-name";
pub const OWNER_ANNOTATION: &str = "offloading.liqo.io/owner";
pub const SCHEDULING_LABEL: &str = "liqo.io/scheduling-enabled";
pub const FINALIZER: &str = "namespaceoffloading-controller.liqo.io/finalizer";
/// The bound of every wait on the reconciler (it converges in seconds; periodic resyncs are
/// set to 5 minutes, so nothing here can pass by waiting for one).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// One remote cluster.
#[derive(Clone)]
pub struct Remote {
    pub id: String,
    pub kubeconfig: PathBuf,
    pub client: Client,
}

/// One test's handle on the reconciler suite.
pub struct ReconcileEnv {
    pub e2e: E2e,
    /// In the order of [`REMOTES_ENV`] (the index of [`INDEX_LABEL`]).
    pub remotes: Vec<Remote>,
}

/// The virtual nodes and Secrets, created once per process by the first test.
static PREPARED: OnceCell<Result<(), String>> = OnceCell::const_new();

fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn is_dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&s.len())
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// Parses `id=path,id=path`: 1 to 3 distinct DNS-1123 ids other than the home cluster's,
/// each with an existing file.
pub fn parse_remotes(raw: &str) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, path) = pair
            .split_once('=')
            .with_context(|| format!("{pair:?} is not id=path"))?;
        let (id, path) = (id.trim(), PathBuf::from(path.trim()));
        ensure!(
            is_dns_label(id),
            "cluster id {id:?} must be a DNS-1123 label (lower case alphanumerics and '-')"
        );
        ensure!(
            id != HOME_CLUSTER_ID,
            "cluster id {id:?} is the home cluster's id"
        );
        ensure!(
            out.iter().all(|(seen, _)| seen != id),
            "cluster id {id:?} is given twice"
        );
        ensure!(
            path.is_file(),
            "{}: no such file (cluster {id})",
            path.display()
        );
        out.push((id.to_owned(), path));
    }
    ensure!(
        (1..=3).contains(&out.len()),
        "expected 1 to 3 id=path pairs, got {}",
        out.len()
    );
    Ok(out)
}

/// The server with the reconciler on, leader-elected as in a real installation.
fn server_mode(remotes: &[(String, PathBuf)], log_prefix: &'static str) -> ServerMode {
    let extra = [
        "--leader-elect=true",
        "--lease-name=nsoffload-reconciler",
        "--resync-interval=5m",
        "--remote-timeout=10s",
    ];
    ServerMode {
        log_prefix,
        reconcile: true,
        extra_args: extra.map(str::to_owned).to_vec(),
        remotes: remotes.to_vec(),
    }
}

impl ReconcileEnv {
    /// The suite, set up on first use; fails unless both the home kubeconfig and the remote
    /// clusters are given (the tests are `#[ignore]`d: they run only when asked for).
    pub async fn get() -> ReconcileEnv {
        ReconcileEnv::get_as("reconcile-").await
    }

    /// [`ReconcileEnv::get`], the server's log files named with `log_prefix` (one test
    /// binary, one server, one set of logs).
    pub async fn get_as(log_prefix: &'static str) -> ReconcileEnv {
        let home = setting(KUBECONFIG_ENV);
        let Some(raw) = setting(REMOTES_ENV).filter(|_| home.is_some()) else {
            panic!(
                "e2e_reconcile: set {KUBECONFIG_ENV} to a cluster-admin kubeconfig of the home \
                 cluster and {REMOTES_ENV} to id=kubeconfig pairs of 1 to 3 remote clusters \
                 (or run `make e2e-local`)"
            );
        };
        let listed = parse_remotes(&raw)
            .unwrap_or_else(|e| panic!("e2e: {REMOTES_ENV}={raw:?} is not usable: {e:#}"));
        let e2e = E2e::start(server_mode(&listed, log_prefix)).await;
        let mut remotes = Vec::new();
        for (id, kubeconfig) in listed {
            let client = client(&kubeconfig).await.unwrap_or_else(|e| {
                panic!("e2e: remote cluster {id} ({}): {e:#}", kubeconfig.display())
            });
            remotes.push(Remote {
                id,
                kubeconfig,
                client,
            });
        }
        let prepared = PREPARED
            .get_or_init(|| async {
                prepare(&e2e.client, &remotes)
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        if let Err(e) = prepared {
            panic!("e2e: remote-cluster set-up failed (every test fails with this): {e}");
        }
        ReconcileEnv { e2e, remotes }
    }
}

/// The uid of `kube-system`, which tells clusters apart.
async fn identity(client: &Client) -> anyhow::Result<String> {
    let ns = Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await
        .context("reading namespace kube-system")?;
    Ok(ns.metadata.uid.unwrap_or_default())
}

/// Checks the remote clusters, then creates one virtual Node and one credential Secret each.
async fn prepare(home: &Client, remotes: &[Remote]) -> anyhow::Result<()> {
    let mut seen = BTreeMap::from([(identity(home).await?, "the home cluster".to_owned())]);
    for r in remotes {
        let where_ = || format!("remote cluster {} ({})", r.id, r.kubeconfig.display());
        let version = r
            .client
            .apiserver_version()
            .await
            .with_context(|| format!("{} is not reachable from this machine", where_()))?;
        let uid = identity(&r.client).await.with_context(where_)?;
        if let Some(other) = seen.insert(uid, format!("remote cluster {}", r.id)) {
            bail!("{} is the same cluster as {other}", where_());
        }
        say(&format!(
            "e2e: remote cluster {}: API server {}",
            r.id, version.git_version
        ));
    }
    let nodes: Api<Node> = Api::all(home.clone());
    let virtual_nodes = ListParams::default().labels("liqo.io/type=virtual-node");
    for node in nodes.list(&virtual_nodes).await?.items {
        let name = node.name_any();
        if node.labels().get(SUITE_LABEL).is_none_or(|v| v != "true") {
            bail!(
                "the home cluster has a virtual node the suite did not create ({name}); its \
                 cluster would be selected too and the expected statuses would not hold. Use a \
                 home cluster without Liqo."
            );
        }
        if remotes
            .iter()
            .all(|r| name != format!("e2e-virtual-{}", r.id))
        {
            say(&format!(
                "e2e: deleting virtual node {name} left by a previous run"
            ));
            nodes.delete(&name, &DeleteParams::default()).await?;
        }
    }
    let secrets: Api<Secret> = Api::namespaced(home.clone(), SERVER_NAMESPACE);
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    for (index, r) in remotes.iter().enumerate() {
        let name = format!("e2e-virtual-{}", r.id);
        if let Some(existing) = nodes.get_opt(&name).await? {
            if existing
                .labels()
                .get(SUITE_LABEL)
                .is_none_or(|v| v != "true")
            {
                bail!("node {name} exists and was not created by the suite");
            }
        }
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name,
            "labels": {"liqo.io/type": "virtual-node", CLUSTER_ID_LABEL: r.id,
                INDEX_LABEL: index.to_string(), NAME_LABEL: r.id, SUITE_LABEL: "true"}},
            "spec": {"taints": [{"key": "virtual-node.liqo.io/not-allowed", "value": "true",
                "effect": "NoExecute"}]}});
        nodes
            .patch(&name, &apply, &Patch::Apply(&node))
            .await
            .with_context(|| format!("creating the virtual node {name}"))?;
        mark_ready(&nodes, &name, node["spec"]["taints"].clone()).await?;
        let kubeconfig = std::fs::read(&r.kubeconfig)
            .with_context(|| format!("reading {}", r.kubeconfig.display()))?;
        let name = format!("e2e-remote-{}", r.id);
        let mut secret: Secret = serde_json::from_value(json!({"metadata": {"name": name,
            "namespace": SERVER_NAMESPACE,
            "labels": {CLUSTER_ID_LABEL: r.id, SUITE_LABEL: "true"}}, "type": "Opaque"}))?;
        secret.data = Some(BTreeMap::from([(
            "kubeconfig".to_owned(),
            ByteString(kubeconfig),
        )]));
        secrets
            .patch(&name, &apply, &Patch::Apply(&secret))
            .await
            .with_context(|| format!("creating the credential Secret {name}"))?;
    }
    say(&format!(
        "e2e: virtual nodes and credential Secrets of {} remote cluster(s) created",
        remotes.len()
    ));
    Ok(())
}

/// Makes a Node without a kubelet schedulable, as a virtual kubelet would: Ready with room
/// for pods (`nodes/status`), and exactly `taints` (the API server adds a `not-ready` taint to
/// a Node created without a Ready condition).
pub async fn mark_ready(nodes: &Api<Node>, name: &str, taints: Value) -> anyhow::Result<()> {
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let room = json!({"cpu": "64", "memory": "256Gi", "pods": "1000"});
    let status = json!({"status": {"capacity": room, "allocatable": room, "conditions": [{
        "type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "fake virtual node of the e2e suite",
        "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .with_context(|| format!("marking node {name} Ready"))?;
    nodes
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": taints}})),
        )
        .await
        .with_context(|| format!("setting the taints of node {name}"))?;
    Ok(())
}

/// Whether a remote namespace belongs to test `test`: a twin of one of its namespaces
/// (`e2e-<test>-…`), or a namespace the test created there (suite label).
pub fn of_test(ns: &Namespace, test: &str) -> bool {
    let prefix = format!("e2e-{test}-");
    let owner = format!("{HOME_CLUSTER_ID}/{prefix}");
    let owned = ns
        .annotations()
        .get(OWNER_ANNOTATION)
        .is_some_and(|o| o.starts_with(&owner));
    let created = ns.labels().get(SUITE_LABEL).is_some_and(|v| v == "true")
        && ns.name_any().starts_with(&prefix);
    owned || created
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned())
}

/// [`check`], plus the remote clusters: their state on failure, and cleaning them up.
pub async fn check_remote<F, Fut>(env: &ReconcileEnv, test: &'static str, body: F)
where
    F: FnOnce(Scope, Vec<Remote>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let remotes = env.remotes.clone();
    let log = env.e2e.setup.server_log.clone();
    check(&env.e2e, test, |s| async move {
        let outcome = AssertUnwindSafe(body(s.clone(), remotes.clone()))
            .catch_unwind()
            .await;
        let result = outcome.unwrap_or_else(|panic| Err(anyhow!(panic_text(&*panic))));
        let result = result.map_err(|e| {
            anyhow!(
                "{e:#}\n(the reconciler logs to {}; its last lines are printed below)",
                log.display()
            )
        });
        if result.is_err() {
            dump_remotes(test, &remotes).await;
        }
        leave_clean(&s, &remotes).await;
        result
    })
    .await;
}

/// Prints the test's namespaces on every remote cluster.
async fn dump_remotes(test: &str, remotes: &[Remote]) {
    for r in remotes {
        eprintln!("--- remote cluster {}: namespaces of this test", r.id);
        let list = match Api::<Namespace>::all(r.client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(list) => list.items,
            Err(e) => {
                eprintln!("(cannot list: {e})");
                continue;
            }
        };
        let mine: Vec<_> = list.iter().filter(|ns| of_test(ns, test)).collect();
        if mine.is_empty() {
            eprintln!("(none)");
        }
        for ns in mine {
            let shown = json!({
                "name": ns.name_any(),
                "uid": ns.metadata.uid,
                "deletionTimestamp": ns.metadata.deletion_timestamp,
                "phase": ns.status.as_ref().and_then(|s| s.phase.clone()),
                "labels": ns.metadata.labels,
                "annotations": ns.metadata.annotations,
            });
            eprintln!("{shown}");
        }
    }
}

/// Deletes the test's NamespaceOffloadings and gives the reconciler [`TIMEOUT`] to release
/// them (deleting their twins); then deletes what of the test is left on the remote clusters.
/// The quick-offloading label goes first: while a namespace carries it, the reconciler makes
/// a deleted NamespaceOffloading again (SPEC §6), and the wait could never end.
async fn leave_clean(s: &Scope, remotes: &[Remote]) {
    let test = s.test;
    let names = s.names();
    for ns in &names {
        match label_namespace(&s.client, ns, OFFLOADING_ENABLED_LABEL, None).await {
            Ok(_) => {}
            Err(e) if api_status(&e).is_some_and(|(c, _)| c == 404) => {}
            Err(e) => say(&format!("e2e: {test}: cleanup: unlabelling {ns}: {e}")),
        }
    }
    for ns in &names {
        let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), ns);
        match api.delete("offloading", &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if api_status(&e).is_some_and(|(c, _)| c == 404) => {}
            Err(e) => say(&format!(
                "e2e: {test}: cleanup: deleting {ns}/offloading: {e}"
            )),
        }
    }
    let what = "the test's NamespaceOffloadings to be released by the reconciler";
    let released = wait_until(what, TIMEOUT, || {
        let (client, names) = (s.client.clone(), names.clone());
        async move {
            for ns in &names {
                let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
                if api.get_opt("offloading").await?.is_some() {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    });
    if let Err(e) = released.await {
        say(&format!(
            "e2e: {test}: cleanup: {e:#}; the namespace cleanup releases them, and their twins \
             are deleted below"
        ));
    }
    for r in remotes {
        for line in sweep_remote(&r.client, &r.id, &|ns: &Namespace| of_test(ns, test)).await {
            say(&format!("e2e: {test}: cleanup: {line}"));
        }
    }
}
