//! Suite set-up, done once per test process: the CRD, the server's namespace, one
//! `nsoffload serve` in cluster mode, and proof that the API server really calls it.
//!
//! Each `#[tokio::test]` has its own runtime and a `kube::Client` is tied to the runtime it
//! was built on, so only plain data is shared (`tokio::sync::OnceCell`, initialized by the
//! first test) and every test builds its own client. A failed set-up is stored too, so every
//! test fails with the same message instead of retrying it. The server is started through
//! the supervisor process (`supervisor.rs`), which outlives this process to clean up, and
//! set-up ends only once the API server is seen calling it (`startup.rs`).
//!
//! The suite leaves a cluster as it found it: what it creates is marked (a label on
//! namespaces, an annotation on cluster-scoped objects), objects that existed before are never
//! deleted, and webhook configurations of a real installation are never taken over.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::kit::{retry, wait_until, Attempt};
use crate::startup::{
    free_port, mark_webhooks_owned, spawn_supervisor, wait_effective, wait_ready,
};
use crate::supervisor::Plan;

/// A cluster-admin kubeconfig; the suite fails without it.
pub const KUBECONFIG_ENV: &str = "NSOFFLOAD_E2E_KUBECONFIG";
/// An address of this machine the API server can reach (default 127.0.0.1).
pub const HOST_ENV: &str = "NSOFFLOAD_E2E_WEBHOOK_HOST";
/// The webhook port (default: a free port), for firewalls that open only one.
pub const PORT_ENV: &str = "NSOFFLOAD_E2E_WEBHOOK_PORT";
/// Label on every namespace the suite creates; the supervisor deletes them all at exit.
pub const SUITE_LABEL: &str = "e2e.nsoffload.liqo.io/suite";
/// Annotation on cluster-scoped objects the suite created (CRD, RuntimeClass, webhook
/// configurations): only those are deleted at exit.
pub const OWNED_ANNOTATION: &str = "e2e.nsoffload.liqo.io/created-by-e2e";
/// The server's own namespace (holds its CA Secret; excluded from the webhooks).
pub const SERVER_NAMESPACE: &str = "nsoffload-e2e";
/// Field manager of the suite's server-side applies.
pub const FIELD_MANAGER: &str = "nsoffload-e2e";
/// The NamespaceOffloading CRD.
pub const CRD_NAME: &str = "namespaceoffloadings.offloading.liqo.io";
/// Name of both webhook configurations the server registers.
pub const WEBHOOK_CONFIGURATION: &str = "nsoffload";
/// The webhooks, as named in the API server's denial messages.
pub const POD_WEBHOOK: &str = "pod.mutate.nsoffload.liqo.io";
pub const NSOFF_WEBHOOK: &str = "namespaceoffloading.validate.nsoffload.liqo.io";

/// The home cluster id the server is started with (`--cluster-id`); it names twin namespaces
/// (`<local-namespace>-e2e`) and their owner annotation (`e2e/<local-namespace>`).
pub const HOME_CLUSTER_ID: &str = "e2e";

/// How one test binary runs the server. Each binary is its own process with its own set-up,
/// so the mode of the first test is the mode of the whole binary.
pub struct ServerMode {
    /// Prefix of the log file names (`<prefix>server.log`, `<prefix>supervisor.log`), so the
    /// binaries of one `cargo test` run do not overwrite each other's logs.
    pub log_prefix: &'static str,
    /// `serve --reconcile=<this>`: whether the twin-namespace reconciler runs.
    pub reconcile: bool,
    /// More `serve` arguments.
    pub extra_args: Vec<String>,
    /// Remote clusters (id, kubeconfig): at exit the supervisor deletes the namespaces the
    /// suite left there (see `supervisor.rs`).
    pub remotes: Vec<(String, PathBuf)>,
}

impl ServerMode {
    /// Only the webhooks: tests write NamespaceOffloading statuses themselves, which a running
    /// reconciler would overwrite.
    pub fn webhooks_only() -> ServerMode {
        ServerMode {
            log_prefix: "",
            reconcile: false,
            extra_args: Vec::new(),
            remotes: Vec::new(),
        }
    }
}

/// What the tests share: where things are.
pub struct Setup {
    pub kubeconfig: PathBuf,
    pub server_log: PathBuf,
    /// The server's admin port (`/readyz`, `/metrics`; read by the fault tests).
    #[allow(dead_code)]
    pub admin: SocketAddr,
    /// The webhook base URL registered with the API server (read by the fault tests).
    #[allow(dead_code)]
    pub url: String,
}

/// One test's handle on the suite.
pub struct E2e {
    pub client: Client,
    pub setup: &'static Setup,
}

static SETUP: OnceCell<Result<Setup, String>> = OnceCell::const_new();

/// Writes a progress line that `cargo test` output capture does not swallow.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

impl E2e {
    /// The suite with the webhooks only ([`ServerMode::webhooks_only`]).
    pub async fn get() -> E2e {
        E2e::start(ServerMode::webhooks_only()).await
    }

    /// The suite, set up on first use with `mode`. The tests are `#[ignore]`d, so they run
    /// only when asked for (`make e2e`, `make e2e-local`); asked for without a kubeconfig,
    /// they fail rather than pass without testing anything.
    pub async fn start(mode: ServerMode) -> E2e {
        let Some(kubeconfig) = std::env::var_os(KUBECONFIG_ENV).filter(|v| !v.is_empty()) else {
            panic!(
                "e2e: set {KUBECONFIG_ENV} to a cluster-admin kubeconfig \
                 (or run `make e2e-local`, which starts local clusters)"
            );
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = PathBuf::from(kubeconfig);
        let setup = SETUP
            .get_or_init(|| async { set_up(kubeconfig, mode).await.map_err(|e| format!("{e:#}")) })
            .await;
        match setup {
            Ok(setup) => match client(&setup.kubeconfig).await {
                Ok(client) => E2e { client, setup },
                Err(e) => panic!("e2e: cannot build a client: {e:#}"),
            },
            Err(e) => panic!("e2e set-up failed (every test fails with this): {e}"),
        }
    }
}

/// A client from the kubeconfig, with bounded connect/read/write timeouts.
pub async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .context("invalid kubeconfig")?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    config.write_timeout = Some(Duration::from_secs(30));
    Client::try_from(config).context("cannot build a client")
}

pub fn is_owned<K: Resource>(o: &K) -> bool {
    o.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(OWNED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

async fn set_up(kubeconfig: PathBuf, mode: ServerMode) -> anyhow::Result<Setup> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nsoffload-e2e");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = dir.join("supervisor.lock");
    wait_for_previous_run(&lock).await?;
    let client = client(&kubeconfig).await?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the API server")?;
    say(&format!("e2e: API server {}", version.git_version));
    refuse_foreign_webhooks(&client).await?;
    install_crd(&client).await?;
    ensure_server_namespace(&client).await?;

    let setting = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    let host = setting(HOST_ENV).unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = match setting(PORT_ENV) {
        Some(p) => p.parse().with_context(|| format!("{PORT_ENV}={p:?}"))?,
        None => free_port("0.0.0.0")?,
    };
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1")?).parse()?;
    let url_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let url = format!("https://{url_host}:{port}");
    let mut server: Vec<String> = [
        env!("CARGO_BIN_EXE_nsoffload"),
        "serve",
        "--cluster-id",
        HOME_CLUSTER_ID,
        "--kubeconfig",
        &kubeconfig.to_string_lossy(),
        "--namespace",
        SERVER_NAMESPACE,
        "--webhook-url",
        &url,
        "--bind-address",
        &format!("0.0.0.0:{port}"),
        "--admin-address",
        &admin.to_string(),
        "--log-format",
        "json",
    ]
    .map(str::to_owned)
    .to_vec();
    server.push(format!("--reconcile={}", mode.reconcile));
    server.extend(mode.extra_args);
    let prefix = mode.log_prefix;
    let plan = Plan {
        server,
        server_log: dir.join(format!("{prefix}server.log")),
        exit_marker: dir.join(format!("{prefix}server.exit")),
        lock,
        kubeconfig: kubeconfig.clone(),
        remotes: mode.remotes,
    };
    let _ = std::fs::remove_file(&plan.exit_marker);
    spawn_supervisor(&plan, &dir.join(format!("{prefix}supervisor.log")))?;
    say(&format!(
        "e2e: server at {url}, admin {admin}; log {}",
        plan.server_log.display()
    ));
    wait_ready(admin, &plan).await?;
    mark_webhooks_owned(&client).await?;
    wait_effective(&client, &url).await?;
    say("e2e: webhooks effective");
    Ok(Setup {
        kubeconfig,
        server_log: plan.server_log,
        admin,
        url,
    })
}

/// A previous run's supervisor may still be cleaning up; it holds the lock until it is done.
async fn wait_for_previous_run(lock: &Path) -> anyhow::Result<()> {
    let what = format!("the previous run's cleanup (lock {})", lock.display());
    retry(&what, Duration::from_secs(180), || async move {
        let file = match std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock)
        {
            Ok(f) => f,
            Err(e) => return Attempt::Fail(e.into()),
        };
        match file.try_lock() {
            Ok(()) => Attempt::Done(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                Attempt::Retry(anyhow!("a previous run is still cleaning up"))
            }
            Err(std::fs::TryLockError::Error(e)) => Attempt::Fail(e.into()),
        }
    })
    .await
}

/// The server would take over configurations named `nsoffload` that a real installation
/// owns; only leftovers of this suite (annotated) may be reused.
async fn refuse_foreign_webhooks(client: &Client) -> anyhow::Result<()> {
    let m: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let v: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let foreign = [
        (
            "mutatingwebhookconfiguration",
            m.get_opt(WEBHOOK_CONFIGURATION)
                .await?
                .map(|o| is_owned(&o)),
        ),
        (
            "validatingwebhookconfiguration",
            v.get_opt(WEBHOOK_CONFIGURATION)
                .await?
                .map(|o| is_owned(&o)),
        ),
    ];
    for (kind, owned) in foreign {
        if owned == Some(false) {
            bail!(
                "{kind} {WEBHOOK_CONFIGURATION} exists and was not created by this suite (a real \
                 nsoffload installation?); the e2e server would take it over. Use a cluster \
                 without nsoffload, or delete it: kubectl delete {kind} {WEBHOOK_CONFIGURATION}"
            );
        }
    }
    Ok(())
}

/// Server-side applies `crd.yaml` from the install manifests and waits until it is served.
/// A CRD that existed before is updated but marked (and later deleted) only if it is ours.
async fn install_crd(client: &Client) -> anyhow::Result<()> {
    let (_, yaml) = nsoffload::install::all()
        .into_iter()
        .find(|(file, _)| *file == "crd.yaml")
        .context("install::all() has no crd.yaml")?;
    let mut crd: Value = serde_yaml::from_str(&yaml).context("crd.yaml is not YAML")?;
    let name = CRD_NAME;
    if crd["metadata"]["name"] != name {
        bail!(
            "crd.yaml names {}, expected {name}",
            crd["metadata"]["name"]
        );
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Applying to a CRD a previous run is deleting would not stop the deletion.
    let what = "the CRD deleted by a previous run to be gone";
    let existing = retry(what, Duration::from_secs(120), || {
        let api = api.clone();
        async move {
            match api.get_opt(name).await {
                Ok(Some(crd)) if crd.metadata.deletion_timestamp.is_some() => {
                    Attempt::Retry(anyhow!("still terminating"))
                }
                Ok(existing) => Attempt::Done(existing),
                Err(e) => Attempt::Retry(e.into()),
            }
        }
    })
    .await?;
    if existing.as_ref().is_none_or(is_owned) {
        crd["metadata"]["annotations"][OWNED_ANNOTATION] = json!("true");
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(&crd))
        .await
        .context("applying the CRD")?;
    wait_until("the CRD to be Established", Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let crd = api.get(name).await?;
            let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
            Ok(conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True"))
        }
    })
    .await
}

/// Creates the server's namespace, waiting first for a previous run's copy to be deleted.
async fn ensure_server_namespace(client: &Client) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let what = format!("namespace {SERVER_NAMESPACE} to be usable");
    retry(&what, Duration::from_secs(180), || {
        let api = api.clone();
        async move {
            match api.get_opt(SERVER_NAMESPACE).await {
                Ok(Some(ns)) if ns.metadata.deletion_timestamp.is_some() => {
                    Attempt::Retry(anyhow!("still terminating (left by a previous run)"))
                }
                Ok(Some(_)) => Attempt::Done(()),
                Ok(None) => {
                    // The name label lets the webhooks exclude the namespace also on API
                    // servers older than 1.21, which do not set it themselves.
                    let labels = json!({SUITE_LABEL: "true",
                        "kubernetes.io/metadata.name": SERVER_NAMESPACE});
                    let ns: Namespace = serde_json::from_value(json!({"metadata": {
                        "name": SERVER_NAMESPACE, "labels": labels}}))
                    .expect("a valid namespace");
                    match api.create(&PostParams::default(), &ns).await {
                        Ok(_) => Attempt::Done(()),
                        Err(e) => Attempt::Retry(e.into()),
                    }
                }
                Err(e) => Attempt::Retry(e.into()),
            }
        }
    })
    .await
}
