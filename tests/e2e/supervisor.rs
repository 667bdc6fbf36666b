//! The supervisor: the process that owns the nsoffload server and cleans the cluster up after
//! the test process, however that process ends.
//!
//! Why a separate process: libtest has no "after all tests" hook and statics are never
//! dropped, so a test process cannot reliably stop a child or undo its cluster changes
//! (a filtered run, a panic in set-up, Ctrl-C, a CI timeout). Left behind, the webhook
//! configurations would point at a dead server with `failurePolicy: Fail` and block every
//! NamespaceOffloading write in the cluster. So the test process re-runs its own binary with
//! only the `supervisor_entry` test selected and a plan in an environment variable, holding
//! the write end of the supervisor's stdin. When the test process exits for any reason the
//! kernel closes that pipe; the supervisor sees end-of-file, kills the server, and deletes
//! what the suite created: the webhook configurations, every namespace, Node and Secret
//! labelled with the suite label (the server's namespace with its CA Secret included; the
//! reconciler suite's virtual nodes and credential Secrets), on each remote cluster of the
//! plan the namespaces the suite left there, and, only when they carry the suite's
//! annotation, the CRD and the RuntimeClass `liqo`. It runs in its own
//! process group so a Ctrl-C aimed at `cargo test` does not reach it, and holds a lock file
//! until it is done so that the next run waits for this cleanup instead of racing it.
//! Its output goes to `supervisor.log` next to `server.log`.

use std::fmt::Debug;
use std::fs::File;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Secret};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, Resource, ResourceExt};
use nsoffload::api::consts::OWNER_ANNOTATION;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::error::Elapsed;

use crate::harness::{
    client, is_owned, CRD_NAME, HOME_CLUSTER_ID, SERVER_NAMESPACE, SUITE_LABEL,
    WEBHOOK_CONFIGURATION,
};
use crate::kit::{release_finalizers, wait_until};

/// The test that is the supervisor's entry point; every test binary that starts the server
/// (`e2e.rs`, `e2e_reconcile.rs`) defines one of this name.
pub const ENTRY: &str = "supervisor_entry";
/// Carries the [`Plan`] as JSON; the entry point does nothing without it.
pub const PLAN_ENV: &str = "NSOFFLOAD_E2E_SUPERVISOR_PLAN";
/// The RuntimeClass the suite may create.
pub const RUNTIME_CLASS: &str = "liqo";

/// What the supervisor runs and where it writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The server's program and arguments.
    pub server: Vec<String>,
    /// The server's stdout and stderr.
    pub server_log: PathBuf,
    /// Written when the server exits early, with the reason (the test process watches it).
    pub exit_marker: PathBuf,
    /// Held for the supervisor's whole life.
    pub lock: PathBuf,
    pub kubeconfig: PathBuf,
    /// Remote clusters (id, kubeconfig) whose leftover suite namespaces are deleted at exit.
    #[serde(default)]
    pub remotes: Vec<(String, PathBuf)>,
}

/// The plan, when this process was started as the supervisor.
pub fn requested() -> Option<Plan> {
    let raw = std::env::var(PLAN_ENV).ok()?;
    Some(serde_json::from_str(&raw).expect("a valid supervisor plan"))
}

fn log(line: &str) {
    let _ = writeln!(std::io::stdout(), "supervisor: {line}");
}

/// Runs the server until stdin closes, then cleans up. Never returns early.
pub fn run(plan: Plan) {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&plan.lock);
    match &lock {
        Ok(f) => {
            if let Err(e) = f.lock() {
                log(&format!("cannot lock {}: {e}", plan.lock.display()));
            }
        }
        Err(e) => log(&format!("cannot open {}: {e}", plan.lock.display())),
    }
    let mut server = match start_server(&plan) {
        Ok(child) => Some(child),
        Err(e) => {
            let _ = std::fs::write(&plan.exit_marker, format!("cannot start: {e:#}"));
            None
        }
    };
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = tx.send(());
    });
    let mut reported = false;
    while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_millis(200)) {
        if let Some(Ok(Some(status))) = server.as_mut().filter(|_| !reported).map(Child::try_wait) {
            log(&format!("the server exited early: {status}"));
            let _ = std::fs::write(&plan.exit_marker, status.to_string());
            reported = true;
        }
    }
    log("the test process has exited");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let client = runtime.block_on(within(30, client(&plan.kubeconfig)));
    let client = match client {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            log(&format!("no client, nothing can be cleaned up: {e:#}"));
            None
        }
        Err(_) => None,
    };
    // Removing a finalizer is an UPDATE that our validating webhook must answer, so it is
    // done while the server still runs (the tests normally did it already).
    if let Some(client) = &client {
        let _ = runtime.block_on(within(60, release_suite_finalizers(client)));
    }
    log("stopping the server");
    if let Some(mut child) = server {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(client) = client {
        match runtime.block_on(within(180, clean_up(client, &plan.remotes))) {
            Ok(()) => log("cleanup finished (see above for anything that could not be deleted)"),
            Err(_) => log("cleanup timed out after 180s"),
        }
    }
    drop(lock);
}

/// `work`, given at most `secs` seconds.
async fn within<T>(secs: u64, work: impl Future<Output = T>) -> Result<T, Elapsed> {
    tokio::time::timeout(Duration::from_secs(secs), work).await
}

fn start_server(plan: &Plan) -> anyhow::Result<Child> {
    let (program, args) = plan.server.split_first().context("empty server command")?;
    let out = File::create(&plan.server_log)
        .with_context(|| format!("creating {}", plan.server_log.display()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // Settings from the developer's environment (e.g. NSOFFLOAD_STANDALONE) would change
    // what the flags mean.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NSOFFLOAD_") {
            command.env_remove(key);
        }
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    log(&format!("server started (pid {})", child.id()));
    Ok(child)
}

/// The suite's namespaces (by label).
async fn suite_namespaces(client: &Client) -> Vec<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let suite = ListParams::default().labels(&format!("{SUITE_LABEL}=true"));
    match api.list(&suite).await {
        Ok(list) => list.items.iter().map(ResourceExt::name_any).collect(),
        Err(e) => {
            log(&format!("cannot list the suite's namespaces: {e}"));
            Vec::new()
        }
    }
}

async fn release_suite_finalizers(client: &Client) {
    for ns in suite_namespaces(client).await {
        if let Err(e) = release_finalizers(client, &ns).await {
            log(&format!("namespace {ns}: {e:#}"));
        }
    }
}

/// Deletes the webhook configurations first (the server is gone), then the namespaces, the
/// suite's Nodes and Secrets, what the suite left on remote clusters, then the cluster-scoped
/// objects the suite created.
async fn clean_up(client: Client, remotes: &[(String, PathBuf)]) {
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone());
    delete_if_owned(mutating, WEBHOOK_CONFIGURATION).await;
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    delete_if_owned(validating, WEBHOOK_CONFIGURATION).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in suite_namespaces(&client).await {
        // A finalizer left behind (the server died early) can be removed once the API server
        // has noticed that the validating webhook is gone.
        let what = format!("the NamespaceOffloadings of {name} to be released");
        let released = wait_until(&what, Duration::from_secs(30), || {
            let (client, name) = (client.clone(), name.clone());
            async move { release_finalizers(&client, &name).await.map(|()| true) }
        });
        if let Err(e) = released.await {
            log(&format!("{e:#}"));
        }
        match namespaces.delete(&name, &DeleteParams::default()).await {
            Ok(_) => log(&format!("deleting namespace {name}")),
            Err(e) => log(&format!("cannot delete namespace {name}: {e}")),
        }
    }
    delete_labelled(Api::<Node>::all(client.clone())).await;
    delete_labelled(Api::<Secret>::namespaced(client.clone(), SERVER_NAMESPACE)).await;
    for (id, kubeconfig) in remotes {
        match within(30, crate::harness::client(kubeconfig)).await {
            Ok(Ok(remote)) => {
                for line in sweep_remote(&remote, id, &left_by_suite).await {
                    log(&line);
                }
            }
            Ok(Err(e)) => log(&format!("remote cluster {id}: no client, not swept: {e:#}")),
            Err(_) => log(&format!(
                "remote cluster {id}: no client after 30s, not swept"
            )),
        }
    }
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    delete_if_owned(crds, CRD_NAME).await;
    delete_if_owned(Api::<RuntimeClass>::all(client), RUNTIME_CLASS).await;
}

/// Deletes `name` if it carries the suite's annotation.
async fn delete_if_owned<K>(api: Api<K>, name: &str)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let kind = K::kind(&());
    match api.get_opt(name).await {
        Ok(Some(o)) if is_owned(&o) => match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => log(&format!("deleted {kind} {name}")),
            Err(e) => log(&format!("cannot delete {kind} {name}: {e}")),
        },
        Ok(Some(_)) => log(&format!("kept {kind} {name}: not created by the suite")),
        Ok(None) => {}
        Err(e) => log(&format!("cannot read {kind} {name}: {e}")),
    }
}

/// Deletes every object of `api` labelled with the suite label.
async fn delete_labelled<K>(api: Api<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let kind = K::kind(&());
    let suite = ListParams::default().labels(&format!("{SUITE_LABEL}=true"));
    let list = match api.list(&suite).await {
        Ok(list) => list.items,
        Err(e) => {
            log(&format!("cannot list the suite's {kind}s: {e}"));
            return;
        }
    };
    for o in list {
        let name = o.meta().name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => log(&format!("deleted {kind} {name}")),
            Err(e) => log(&format!("cannot delete {kind} {name}: {e}")),
        }
    }
}

/// A namespace on a remote cluster that some run of the suite left behind: a twin owned by a
/// suite namespace (owner `<home-id>/e2e-…`), or a namespace a test created there itself
/// (suite label).
pub fn left_by_suite(ns: &Namespace) -> bool {
    let owner_prefix = format!("{HOME_CLUSTER_ID}/e2e-");
    let owned = ns
        .annotations()
        .get(OWNER_ANNOTATION)
        .is_some_and(|o| o.starts_with(&owner_prefix));
    let labelled = ns.labels().get(SUITE_LABEL).is_some_and(|v| v == "true");
    owned || labelled
}

/// Deletes the namespaces of the remote cluster `id` that `pick` selects (those already being
/// deleted are left alone); returns one line per namespace about what happened.
pub async fn sweep_remote(
    remote: &Client,
    id: &str,
    pick: &dyn Fn(&Namespace) -> bool,
) -> Vec<String> {
    let api: Api<Namespace> = Api::all(remote.clone());
    let list = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) => return vec![format!("remote cluster {id}: cannot list namespaces: {e}")],
    };
    let mut lines = Vec::new();
    for ns in list.iter().filter(|ns| pick(ns)) {
        let name = ns.name_any();
        if ns.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => lines.push(format!("remote cluster {id}: deleting namespace {name}")),
            Err(e) => lines.push(format!(
                "remote cluster {id}: cannot delete namespace {name}: {e}"
            )),
        }
    }
    lines
}
