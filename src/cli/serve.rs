//! `nsoffload serve`: assemble state, TLS, routers and shutdown, then run until a signal.
//!
//! Order matters: state is loaded and TLS checked before binding, so a bad flag or file fails
//! fast with a clear message; readiness turns on only once both listeners are up, and off
//! first when a signal arrives.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::args::{ClusterId, HumanDuration, LogFormat};
use super::sources::{default_namespace, service_hosts, url_host, CertSource, StateSource};
use crate::admission::Admission;
use crate::api::consts::DEFAULT_RUNTIME_CLASS;
use crate::metrics::Metrics;
use crate::policy::validate::ValidationConfig;
use crate::reconcile::leader::{identity, Timing};
use crate::reconcile::ratelimit::ApiLimits;
use crate::reconcile::{supervise, LeaseConfig, ReconcilerConfig};
use crate::registration::manager::ManagedCerts;
use crate::registration::secret::RotationPolicy;
use crate::registration::webhooks::{unregister_url, Endpoint};
use crate::server::admin::{self, Readiness};
use crate::server::router::{self, App};
use crate::server::tls::server_config;
use crate::server::{serve_admin, serve_tls_winding, shutdown_signal, Winding};

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
    /// PEM serving certificate (chain). Without it (cluster mode), the certificate is
    /// self-managed in a Secret and the webhook configurations are registered with its CA.
    #[arg(long, env = "NSOFFLOAD_TLS_CERT_FILE")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of the serving certificate.
    #[arg(long, env = "NSOFFLOAD_TLS_KEY_FILE")]
    tls_key_file: Option<PathBuf>,
    /// nsoffload's own namespace (holds the certificate Secret; excluded from the webhooks).
    /// Default: the pod's namespace in-cluster, else nsoffload-system.
    #[arg(long, env = "NSOFFLOAD_NAMESPACE")]
    namespace: Option<String>,
    /// The Service the API server calls (self-managed certificates, in-cluster).
    #[arg(long, env = "NSOFFLOAD_SERVICE_NAME", default_value = "nsoffload")]
    service_name: String,
    /// Base URL the API server calls when nsoffload runs outside the cluster, e.g.
    /// https://192.0.2.10:8443 (registered instead of the Service).
    #[arg(long, env = "NSOFFLOAD_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Secret that holds the self-managed certificate and CA.
    #[arg(long, env = "NSOFFLOAD_TLS_SECRET", default_value = crate::install::TLS_SECRET)]
    tls_secret: String,
    /// How often the self-managed certificate is checked (rotation, other replicas' writes).
    #[arg(long, env = "NSOFFLOAD_CERT_CHECK_INTERVAL", default_value = "5m")]
    cert_check_interval: HumanDuration,
    /// How often the certificate files are read again to pick up a rotation.
    #[arg(long, env = "NSOFFLOAD_TLS_RELOAD_INTERVAL", default_value = "10s")]
    tls_reload_interval: HumanDuration,
    /// After a shutdown signal: how long the webhook port keeps accepting and answering
    /// (every HTTP/1.1 answer with `Connection: close`, GOAWAY on HTTP/2) while /readyz says
    /// 503, so clients move to other replicas as the Service endpoints update. A second
    /// signal skips what is left of it.
    #[arg(long, env = "NSOFFLOAD_SHUTDOWN_DELAY", default_value = "5s")]
    shutdown_delay: HumanDuration,
    /// Then, once the port is closed: how long in-flight requests may take to finish.
    #[arg(long, env = "NSOFFLOAD_DRAIN_TIMEOUT", default_value = "15s")]
    drain_timeout: HumanDuration,
    /// Run the twin-namespace reconciler (cluster mode only).
    #[arg(long, env = "NSOFFLOAD_RECONCILE", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    reconcile: bool,
    /// Reconcile only while holding a Lease, so one replica of several reconciles at a time.
    #[arg(long, env = "NSOFFLOAD_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    leader_elect: bool,
    /// Name of the leader-election Lease (in --namespace).
    #[arg(long, env = "NSOFFLOAD_LEASE_NAME", default_value = crate::install::LEASE_NAME)]
    lease_name: String,
    /// How often converged NamespaceOffloadings are reconciled again (recreates twins
    /// deleted behind the reconciler's back).
    #[arg(long, env = "NSOFFLOAD_RESYNC_INTERVAL", default_value = "5m")]
    resync_interval: HumanDuration,
    /// Deadline of each call to a remote cluster.
    #[arg(long, env = "NSOFFLOAD_REMOTE_TIMEOUT", default_value = "10s")]
    remote_timeout: HumanDuration,
    /// At most this many NamespaceOffloadings are reconciled at once.
    #[arg(long, env = "NSOFFLOAD_RECONCILE_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    reconcile_concurrency: u16,
    /// The reconciler's requests per second to each API server (home and each remote
    /// cluster), on average; admission and leader election are not limited. A cold start
    /// with 10,000 NamespaceOffloadings writes 30,000 times (finalizer, scheduling label,
    /// status): at 600 a second, under a minute.
    #[arg(long, env = "NSOFFLOAD_API_QPS", default_value_t = 600.0, value_parser = positive_rate)]
    api_qps: f64,
    /// The reconciler's requests sent at once to an API server after a quiet time.
    #[arg(long, env = "NSOFFLOAD_API_BURST", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    api_burst: u32,
    /// Log format.
    #[arg(long, env = "NSOFFLOAD_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

impl ServeArgs {
    pub(super) fn run(self) -> anyhow::Result<()> {
        super::logs::init(self.log_format);
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
            namespace,
            service_name,
            webhook_url,
            tls_secret,
            cert_check_interval,
            tls_reload_interval,
            shutdown_delay,
            drain_timeout,
            reconcile,
            leader_elect,
            lease_name,
            resync_interval,
            remote_timeout,
            reconcile_concurrency,
            api_qps,
            api_burst,
            log_format: _,
        } = self;
        let limits = ApiLimits {
            qps: api_qps,
            burst: api_burst,
        };
        let shutdown = CancellationToken::new();
        // Registered by this server at a URL (self-managed certificates outside the cluster):
        // removed again on shutdown, so no webhook is left pointing at a dead address.
        let registered_url = match (&standalone, &tls_cert_file) {
            (None, None) => webhook_url.clone(),
            _ => None,
        };
        let own_namespace = namespace.unwrap_or_else(default_namespace);
        let managed = match &standalone {
            Some(_) => None,
            None => {
                let namespace = own_namespace.clone();
                let (hosts, endpoint) = match webhook_url {
                    Some(url) => (vec![url_host(&url)?], Endpoint::Url(url)),
                    None => {
                        let port = crate::install::SERVICE_PORT;
                        let endpoint = Endpoint::Service {
                            namespace: namespace.clone(),
                            name: service_name.clone(),
                            port,
                        };
                        (service_hosts(&service_name, &namespace), endpoint)
                    }
                };
                let config = ManagedCerts {
                    namespace,
                    secret_name: tls_secret,
                    hosts,
                    endpoint,
                    policy: RotationPolicy::default(),
                };
                Some((config, cert_check_interval.0))
            }
        };
        let certs =
            CertSource::choose(tls_cert_file, tls_key_file, tls_reload_interval.0, managed)?;
        let source = match standalone {
            Some(file) => StateSource::standalone(&file)?,
            None => StateSource::cluster(kubeconfig, limits, shutdown.clone()).await?,
        };
        // Bound before the webhooks are registered: the API server's first calls wait in the
        // listen backlog instead of being refused.
        let webhook_listener = TcpListener::bind(bind_address)
            .await
            .with_context(|| format!("cannot listen on {bind_address}"))?;
        let admin_listener = TcpListener::bind(admin_address)
            .await
            .with_context(|| format!("cannot listen on {admin_address}"))?;
        let metrics = Arc::new(Metrics::new());
        let source_client = source.client.clone();
        let lease_client = source.lease_client.clone();
        let reconcile_client = source.reconcile_client.clone();
        let (resolver, reloader) = certs
            .start(source.client.clone(), &metrics.serving, shutdown.clone())
            .await?;
        let tls = Arc::new(server_config(resolver)?);

        let ready = Arc::new(Readiness::default());
        let admission = Admission {
            store: source.store,
            runtime_class: runtime_class.clone(),
            live: source.live,
            validation: ValidationConfig {
                home_cluster_id: cluster_id.0.clone(),
            },
        };
        let app = Arc::new(App {
            admission,
            metrics: metrics.clone(),
        });

        let reconciler = match (&reconcile_client, &source.offloadings, reconcile) {
            (Some(client), Some(offloadings), true) => {
                let config = ReconcilerConfig {
                    home_id: cluster_id.0.clone(),
                    namespace: own_namespace.clone(),
                    resync: resync_interval.0,
                    remote_timeout: remote_timeout.0,
                    instance: identity(),
                    concurrency: reconcile_concurrency,
                    runtime_class: runtime_class.clone(),
                    remote_limits: limits,
                };
                let lease = leader_elect.then(|| LeaseConfig {
                    namespace: own_namespace.clone(),
                    name: lease_name,
                    timing: Timing::default(),
                    client: lease_client.clone().unwrap_or_else(|| client.clone()),
                });
                let task = supervise(
                    client.clone(),
                    config,
                    lease,
                    metrics.reconcile.clone(),
                    offloadings.clone(),
                    shutdown.clone(),
                );
                Some(tokio::spawn(task))
            }
            _ => None,
        };
        let admin_task = tokio::spawn(serve_admin(
            admin_listener,
            admin::router(ready.clone(), metrics),
            shutdown.clone(),
        ));
        let winding = Winding::default();
        let webhooks = tokio::spawn(serve_tls_winding(
            webhook_listener,
            tls,
            router::router(app),
            winding.clone(),
            drain_timeout.0,
        ));
        tracing::info!(webhooks = %bind_address, admin = %admin_address, "serving");
        let readiness = tokio::spawn(become_ready(
            source.synced,
            ready.clone(),
            winding.closing.clone(),
        ));

        // SPEC §8: unready at once (the admin port keeps answering 503), keep answering
        // webhook calls with `Connection: close` for the delay, then close the port and
        // drain, then stop the rest (the reconciler releases its Lease).
        shutdown_signal().await;
        ready.set(false);
        winding.closing.cancel();
        tracing::info!(delay = ?shutdown_delay.0, "unready; answering with Connection: close until the delay ends");
        tokio::select! {
            _ = tokio::time::sleep(shutdown_delay.0) => {}
            _ = shutdown_signal() => tracing::info!("second signal: skipping the rest of the shutdown delay"),
        }
        winding.stop.cancel();
        webhooks.await.context("webhook server task failed")?;
        shutdown.cancel();
        admin_task
            .await
            .context("admin server task failed")?
            .context("admin server failed")?;
        reloader.await.context("certificate reloader failed")?;
        if let Some(reconciler) = reconciler {
            reconciler.await.context("reconciler task failed")?;
        }
        readiness.abort();
        if let (Some(url), Some(client)) = (registered_url, source_client) {
            let removal = unregister_url(client, &url);
            match tokio::time::timeout(std::time::Duration::from_secs(10), removal).await {
                Ok(Ok(n)) => tracing::info!(
                    removed = n,
                    "webhook configurations pointing at this server removed"
                ),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not remove the webhook configurations")
                }
                Err(_) => tracing::warn!("timed out removing the webhook configurations"),
            }
        }
        tracing::info!("stopped");
        Ok(())
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

/// A rate of requests a second: a finite number above zero.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate above 0 (requests a second, e.g. 500)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser as _;

    use super::{positive_rate, ServeArgs};

    #[test]
    fn rates_are_positive_numbers() {
        assert_eq!(positive_rate("500"), Ok(500.0));
        assert_eq!(positive_rate("0.5"), Ok(0.5));
        for bad in ["0", "-1", "inf", "NaN", "fast", ""] {
            assert!(positive_rate(bad).is_err(), "{bad}");
        }
    }

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    /// Kubernetes kills the pod when the grace period ends: the default delay and drain must
    /// fit in it, with room for the reconciler's stop (2 s) and the process exit.
    #[test]
    fn the_deployment_grace_period_covers_the_default_delay_and_drain() {
        let Serve { args } = Serve::try_parse_from(["serve", "--cluster-id", "home"]).unwrap();
        assert_eq!(args.shutdown_delay.0, Duration::from_secs(5));
        let needed = args.shutdown_delay.0 + args.drain_timeout.0 + Duration::from_secs(5);
        let grace = Duration::from_secs(crate::install::TERMINATION_GRACE_SECONDS as u64);
        assert!(grace >= needed, "{grace:?} < {needed:?}");
    }
}
