//! `nsoffload serve`: assemble state, TLS, routers and shutdown, then run until a signal.
//!
//! Order matters: state is loaded and TLS checked before binding, so a bad flag or file fails
//! fast with a clear message; readiness turns on only once both listeners are up, and off
//! first when a signal arrives.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::args::{ClusterId, HumanDuration, LogFormat};
use crate::admission::Admission;
use crate::api::consts::DEFAULT_RUNTIME_CLASS;
use crate::policy::validate::ValidationConfig;
use crate::server::admin::{self, Readiness};
use crate::server::metrics::Metrics;
use crate::server::router::{self, App};
use crate::server::tls::{server_config, ReloadingCert};
use crate::server::{serve_admin, serve_tls, shutdown_signal};
use crate::state::cluster::{start_watches, KubeLookup};
use crate::state::{load_standalone, LiveLookup, Store};

/// Arguments of `nsoffload serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Serve admission from this multi-document YAML of NamespaceOffloading, Namespace and
    /// Node objects, without a cluster. Without it, the state is watched from the cluster.
    #[arg(long, env = "NSOFFLOAD_STANDALONE", value_name = "FILE")]
    standalone: Option<PathBuf>,
    /// Kubeconfig for cluster mode (default: in-cluster config, or $KUBECONFIG).
    #[arg(
        long,
        env = "NSOFFLOAD_KUBECONFIG",
        value_name = "FILE",
        conflicts_with = "standalone"
    )]
    kubeconfig: Option<PathBuf>,
    /// Address of the HTTPS webhook port.
    #[arg(long, env = "NSOFFLOAD_BIND_ADDRESS", default_value = "0.0.0.0:8443")]
    bind_address: SocketAddr,
    /// Address of the plain-HTTP admin port (/livez, /readyz, /metrics).
    #[arg(long, env = "NSOFFLOAD_ADMIN_ADDRESS", default_value = "0.0.0.0:8080")]
    admin_address: SocketAddr,
    /// Id of this (home) cluster, a DNS-1123 label; part of DefaultName twin names.
    #[arg(long, env = "NSOFFLOAD_CLUSTER_ID")]
    cluster_id: ClusterId,
    /// RuntimeClass whose pods are forced onto remote clusters.
    #[arg(long, env = "NSOFFLOAD_RUNTIME_CLASS", default_value = DEFAULT_RUNTIME_CLASS)]
    runtime_class: String,
    /// PEM serving certificate (chain).
    #[arg(long, env = "NSOFFLOAD_TLS_CERT_FILE")]
    tls_cert_file: PathBuf,
    /// PEM private key of the serving certificate.
    #[arg(long, env = "NSOFFLOAD_TLS_KEY_FILE")]
    tls_key_file: PathBuf,
    /// How often the certificate files are read again to pick up a rotation.
    #[arg(long, env = "NSOFFLOAD_TLS_RELOAD_INTERVAL", default_value = "10s")]
    tls_reload_interval: HumanDuration,
    /// How long in-flight requests may take to finish after a shutdown signal.
    #[arg(long, env = "NSOFFLOAD_DRAIN_TIMEOUT", default_value = "25s")]
    drain_timeout: HumanDuration,
    /// Log format.
    #[arg(long, env = "NSOFFLOAD_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

impl ServeArgs {
    pub(super) fn run(self) -> anyhow::Result<()> {
        init_logs(self.log_format);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(self.serve())
    }

    async fn serve(self) -> anyhow::Result<()> {
        let ServeArgs {
            standalone,
            kubeconfig,
            bind_address,
            admin_address,
            cluster_id,
            runtime_class,
            tls_cert_file,
            tls_key_file,
            tls_reload_interval,
            drain_timeout,
            log_format: _,
        } = self;
        let shutdown = CancellationToken::new();
        let source = match standalone {
            Some(file) => StateSource::standalone(&file)?,
            None => StateSource::cluster(kubeconfig, shutdown.clone()).await?,
        };
        let metrics = Arc::new(Metrics::new());
        let cert = ReloadingCert::from_files(&tls_cert_file, &tls_key_file)
            .context("cannot load the serving certificate")?;
        let cert = Arc::new(cert.export_expiry(metrics.cert_expiry()));
        let tls = Arc::new(server_config(cert.clone())?);

        let ready = Arc::new(Readiness::default());
        let admission = Admission {
            store: source.store,
            runtime_class,
            live: source.live,
            validation: ValidationConfig {
                home_cluster_id: cluster_id.0,
            },
        };
        let app = Arc::new(App {
            admission,
            metrics: metrics.clone(),
        });

        let webhook_listener = TcpListener::bind(bind_address)
            .await
            .with_context(|| format!("cannot listen on {bind_address}"))?;
        let admin_listener = TcpListener::bind(admin_address)
            .await
            .with_context(|| format!("cannot listen on {admin_address}"))?;
        let reloader = tokio::spawn(cert.watch(tls_reload_interval.0, shutdown.clone()));
        let admin_task = tokio::spawn(serve_admin(
            admin_listener,
            admin::router(ready.clone(), metrics),
            shutdown.clone(),
        ));
        let webhooks = tokio::spawn(serve_tls(
            webhook_listener,
            tls,
            router::router(app),
            shutdown.clone(),
            drain_timeout.0,
        ));
        tracing::info!(webhooks = %bind_address, admin = %admin_address, "serving");
        let readiness = tokio::spawn(become_ready(source.synced, ready.clone(), shutdown.clone()));

        shutdown_signal().await;
        ready.set(false);
        shutdown.cancel();
        webhooks.await.context("webhook server task failed")?;
        admin_task
            .await
            .context("admin server task failed")?
            .context("admin server failed")?;
        reloader.await.context("certificate reloader failed")?;
        readiness.abort();
        tracing::info!("stopped");
        Ok(())
    }
}

/// Where admission state comes from: a file, or watches of the cluster.
struct StateSource {
    store: Arc<Store>,
    live: Option<Arc<dyn LiveLookup>>,
    /// Turns true once every cache has synced.
    synced: watch::Receiver<bool>,
}

impl StateSource {
    fn standalone(file: &Path) -> anyhow::Result<Self> {
        let snapshot = load_standalone(file)?;
        tracing::info!(file = %file.display(), namespaces = snapshot.offloading_count(), "standalone state loaded");
        let (_, synced) = watch::channel(true);
        Ok(StateSource {
            store: Arc::new(Store::new(snapshot)),
            live: None,
            synced,
        })
    }

    async fn cluster(
        kubeconfig: Option<PathBuf>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let config = match kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                    .await
                    .context("invalid kubeconfig")?
            }
            None => Config::infer()
                .await
                .context("no Kubernetes configuration (in-cluster or $KUBECONFIG)")?,
        };
        tracing::info!(api_server = %config.cluster_url, "cluster mode: watching NamespaceOffloadings and Namespaces");
        let client = Client::try_from(config).context("cannot build the Kubernetes client")?;
        let store = Arc::new(Store::default());
        let synced = start_watches(client.clone(), store.clone(), shutdown);
        Ok(StateSource {
            store,
            live: Some(Arc::new(KubeLookup::new(client))),
            synced,
        })
    }
}

/// Marks the server ready once every cache has synced, unless shutdown has begun.
async fn become_ready(
    mut synced: watch::Receiver<bool>,
    ready: Arc<Readiness>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        result = synced.wait_for(|s| *s) => {
            if result.is_ok() && !shutdown.is_cancelled() {
                ready.set(true);
                tracing::info!("caches synced; ready");
            }
        }
    }
}

/// Sets up `tracing` output; the level comes from `RUST_LOG` (default `info`).
fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
