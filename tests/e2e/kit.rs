//! Bounded waiting, per-test namespaces with guaranteed cleanup, and the failure dump.
//!
//! A real API server is eventually consistent (the server's watch caches, the admission
//! plugins' informers, the ServiceAccount controller), so every wait here polls a condition
//! with a deadline and fails with `timed out after Xs waiting for …` plus the last error seen;
//! nothing sleeps a fixed time and hopes. Each test runs its body through [`check`], which
//! turns a panic into an error, dumps what a person needs to understand a failure (the
//! namespaces, their NamespaceOffloadings, the pods' scheduling fields, the server log), and
//! always deletes the test's namespaces before reporting, so a failed test leaves nothing
//! behind (the supervisor sweeps anything a crash left, see `supervisor.rs`).

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use futures_util::FutureExt as _;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use nsoffload::api::NamespaceOffloading;
use serde_json::{json, Value};

use crate::harness::{E2e, SUITE_LABEL};

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(200);

/// The outcome of one attempt of [`retry`].
pub enum Attempt<T> {
    /// Finished with this value.
    Done(T),
    /// Not yet; this is why (reported if the deadline passes).
    Retry(anyhow::Error),
    /// Failed for good: stop waiting.
    Fail(anyhow::Error),
}

/// Runs `attempt` every 200 ms until it is done or fails, for at most `timeout` (an attempt
/// still running at the deadline is abandoned).
pub async fn retry<T, F, Fut>(what: &str, timeout: Duration, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = anyhow!("no attempt finished");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, attempt()).await {
            Ok(Attempt::Done(v)) => return Ok(v),
            Ok(Attempt::Fail(e)) => return Err(e.context(format!("while waiting for {what}"))),
            Ok(Attempt::Retry(e)) => last = e,
            Err(_) => last = anyhow!("the last attempt was still running at the deadline"),
        }
        if Instant::now() + POLL >= deadline {
            bail!(
                "timed out after {}s waiting for {what}; last error: {last:#}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `poll` until it returns `Ok(true)`; errors are remembered and retried.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut poll: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    retry(what, timeout, || {
        let polled = poll();
        async move {
            match polled.await {
                Ok(true) => Attempt::Done(()),
                Ok(false) => Attempt::Retry(anyhow!("condition not met yet")),
                Err(e) => Attempt::Retry(e),
            }
        }
    })
    .await
}

/// The API status of a failed request (code and message), if it is one.
pub fn api_status(e: &kube::Error) -> Option<(u16, &str)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.message.as_str())),
        _ => None,
    }
}

/// Sets (`Some`) or removes (`None`) one label of namespace `ns` with a merge patch.
pub async fn label_namespace(
    client: &Client,
    ns: &str,
    key: &str,
    value: Option<&str>,
) -> Result<Namespace, kube::Error> {
    let patch = json!({"metadata": {"labels": {key: value}}});
    Api::<Namespace>::all(client.clone())
        .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// Expects `result` to be a denial by the admission webhook `webhook`: HTTP 403 and the API
/// server's `admission webhook "<webhook>" denied the request: ` prefix. Returns the message.
pub fn expect_denied<T>(result: Result<T, kube::Error>, webhook: &str) -> anyhow::Result<String> {
    let e = match result {
        Ok(_) => bail!("expected a denial by {webhook}, but the request succeeded"),
        Err(e) => e,
    };
    let Some((code, message)) = api_status(&e) else {
        bail!("expected a denial by {webhook}, got a transport error: {e}")
    };
    let prefix = format!("admission webhook \"{webhook}\" denied the request: ");
    if code != 403 || !message.starts_with(&prefix) {
        bail!("expected HTTP 403 starting with {prefix:?}, got {code}: {message}");
    }
    Ok(message.to_owned())
}

/// A short random hex string for unique names.
pub fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    h.write_u128(now.map_or(0, |d| d.as_nanos()));
    format!("{:08x}", h.finish() as u32)
}

/// The namespaces one test created; all of them are deleted when the test ends.
#[derive(Clone)]
pub struct Scope {
    pub client: Client,
    /// The test's short name: its namespaces are `e2e-<test>-<hex>`.
    pub test: &'static str,
    namespaces: Arc<Mutex<Vec<String>>>,
}

impl Scope {
    /// Creates `e2e-<test>-<hex>` with `labels` (plus the suite label); returns it as stored.
    pub async fn namespace(&self, labels: &[(&str, &str)]) -> anyhow::Result<Namespace> {
        let name = format!("e2e-{}-{}", self.test, random_hex());
        self.namespaces.lock().unwrap().push(name.clone());
        let mut all: BTreeMap<&str, &str> = labels.iter().copied().collect();
        all.insert(SUITE_LABEL, "true");
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": all},
        }))?;
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))
    }

    /// Like [`Scope::namespace`], then waits until pods can be created there: the
    /// ServiceAccount admission plugin refuses pods until the `default` ServiceAccount exists.
    pub async fn pod_namespace(&self, labels: &[(&str, &str)]) -> anyhow::Result<String> {
        let ns = self.namespace(labels).await?;
        let name = ns.metadata.name.unwrap_or_default();
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &name);
        let what = format!("ServiceAccount {name}/default");
        wait_until(&what, Duration::from_secs(60), || {
            let sas = sas.clone();
            async move { Ok(sas.get_opt("default").await?.is_some()) }
        })
        .await?;
        Ok(name)
    }

    /// The namespaces created so far.
    pub fn names(&self) -> Vec<String> {
        self.namespaces.lock().unwrap().clone()
    }

    /// Deletes every namespace of the test (not waiting for them to be gone); one failure
    /// does not stop the others. Pods go first, at once (grace period 0): a pod bound to a
    /// node with no kubelet (the local control planes' fake nodes) would otherwise stay
    /// Terminating, and its namespace with it.
    async fn cleanup(&self) -> anyhow::Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut failures = Vec::new();
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        for ns in self.names() {
            if let Err(e) = release_finalizers(&self.client, &ns).await {
                failures.push(format!("{e:#}"));
            }
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            match pods.delete_collection(&now, &ListParams::default()).await {
                Ok(_) => {}
                Err(e) if api_status(&e).is_some_and(|(c, _)| c == 404) => {}
                Err(e) => failures.push(format!("deleting the pods of {ns}: {e}")),
            }
            match api.delete(&ns, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if api_status(&e).is_some_and(|(c, _)| c == 404) => {}
                Err(e) => failures.push(format!("deleting namespace {ns}: {e}")),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(failures.join("; ")))
        }
    }
}

/// Removes the finalizers of every NamespaceOffloading in `ns`: with no reconciler running,
/// a finalizer set by a test would keep the namespace Terminating forever. (The reconciler
/// suite deletes its NamespaceOffloadings and lets the reconciler release them first, so that
/// the twin namespaces are deleted too; see `remote.rs`.)
pub async fn release_finalizers(client: &Client, ns: &str) -> anyhow::Result<()> {
    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l,
        Err(e) if api_status(&e).is_some_and(|(c, _)| c == 404) => return Ok(()),
        Err(e) => return Err(e).context("listing NamespaceOffloadings"),
    };
    let patch = json!({"metadata": {"finalizers": null}});
    for o in list
        .items
        .iter()
        .filter(|o| o.metadata.finalizers.is_some())
    {
        let name = o.metadata.name.as_deref().unwrap_or_default();
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("removing the finalizers of {ns}/{name}"))?;
    }
    Ok(())
}

/// Runs one test body in its own [`Scope`]; on failure (error or panic) dumps the state,
/// then always cleans up, then fails the test with the error.
pub async fn check<F, Fut>(env: &E2e, test: &'static str, body: F)
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let scope = Scope {
        client: env.client.clone(),
        test,
        namespaces: Arc::default(),
    };
    let outcome = AssertUnwindSafe(body(scope.clone())).catch_unwind().await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(panic) => Some(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".to_owned()),
        ),
    };
    if let Some(e) = &failure {
        eprintln!("=== {test} FAILED: {e}");
        dump(&scope, &env.setup.server_log).await;
    }
    if let Err(e) = scope.cleanup().await {
        eprintln!("e2e: {test}: cleanup failed (the supervisor retries at exit): {e:#}");
    }
    if let Some(e) = failure {
        panic!("{test}: {e}");
    }
}

fn yaml(v: &impl serde::Serialize) -> String {
    serde_yaml::to_string(v).unwrap_or_else(|e| format!("<not serializable: {e}>"))
}

/// Prints the namespaces, their NamespaceOffloadings, their pods' scheduling fields and the
/// end of the server log.
async fn dump(scope: &Scope, server_log: &Path) {
    for ns in scope.names() {
        eprintln!("--- namespace {ns}");
        match Api::<Namespace>::all(scope.client.clone())
            .get_opt(&ns)
            .await
        {
            Ok(Some(n)) => eprint!("labels:\n{}", yaml(&n.metadata.labels)),
            Ok(None) => eprintln!("(not found)"),
            Err(e) => eprintln!("(cannot read: {e})"),
        }
        let nsoffs: Api<NamespaceOffloading> = Api::namespaced(scope.client.clone(), &ns);
        match nsoffs.list(&ListParams::default()).await {
            Ok(list) => {
                for mut o in list.items {
                    o.metadata.managed_fields = None;
                    eprint!("NamespaceOffloading:\n{}", yaml(&o));
                }
            }
            Err(e) => eprintln!("(cannot list NamespaceOffloadings: {e})"),
        }
        let pods: Api<Pod> = Api::namespaced(scope.client.clone(), &ns);
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                for p in list.items {
                    let spec = p.spec.unwrap_or_default();
                    let shown = json!({
                        "name": p.metadata.name,
                        "runtimeClassName": spec.runtime_class_name,
                        "nodeSelector": spec.node_selector,
                        "tolerations": spec.tolerations,
                        "affinity": spec.affinity,
                    });
                    eprint!("Pod:\n{}", yaml(&shown));
                }
            }
            Err(e) => eprintln!("(cannot list pods: {e})"),
        }
    }
    eprintln!("--- last 100 lines of {}", server_log.display());
    eprintln!("{}", log_tail(server_log, 100));
}

/// The last `n` lines of a log file (or why it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A JSON value without `metadata.managedFields`, for readable error messages.
pub fn trimmed(v: &impl serde::Serialize) -> Value {
    let mut v = serde_json::to_value(v).unwrap_or(Value::Null);
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}
