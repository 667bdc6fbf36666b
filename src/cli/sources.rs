//! Where `serve` gets its state and its serving certificate.
//!
//! State: a standalone file, or watches of the cluster. Certificate: files re-read on a timer
//! (either mode), or, in cluster mode without files, a self-managed pair kept in a Secret,
//! which also registers the webhook configurations with its CA bundle.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use rustls::server::ResolvesServerCert;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::exit::usage;
use super::kubeconfig::{self, Environment};
use crate::cache::offloadings::OffloadingCache;
use crate::metrics::ServingMetrics;
use crate::reconcile::ratelimit::ApiLimits;
use crate::registration::manager::{CertManager, ManagedCerts};
use crate::server::tls::ReloadingCert;
use crate::state::cluster::KubeLookup;
use crate::state::{load_standalone, LiveLookup, Store};

/// Admission state and how it is kept.
pub(super) struct StateSource {
    pub store: Arc<Store>,
    pub live: Option<Arc<dyn LiveLookup>>,
    /// Turns true once every cache has synced.
    pub synced: watch::Receiver<bool>,
    /// The NamespaceOffloading cache (cluster mode), read by admission and the reconciler.
    pub offloadings: Option<Arc<OffloadingCache>>,
    /// The API client (cluster mode).
    pub client: Option<Client>,
    /// A second client for leader election (cluster mode): its own connections, so Lease
    /// renewals never queue behind the reconciler's requests.
    pub lease_client: Option<Client>,
    /// The reconciler's client (cluster mode): rate limited, with its own connections, so
    /// neither admission's live reads nor Lease renewals wait behind it.
    pub reconcile_client: Option<Client>,
}

impl StateSource {
    pub(super) fn standalone(file: &Path) -> anyhow::Result<Self> {
        let snapshot = load_standalone(file)?;
        tracing::info!(file = %file.display(), namespaces = snapshot.offloading_count(), "standalone state loaded");
        let (_, synced) = watch::channel(true);
        Ok(StateSource {
            store: Arc::new(Store::new(snapshot)),
            live: None,
            synced,
            offloadings: None,
            client: None,
            lease_client: None,
            reconcile_client: None,
        })
    }

    pub(super) async fn cluster(
        kubeconfig: Option<PathBuf>,
        limits: ApiLimits,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let config = kubeconfig::load(kubeconfig.as_deref(), None, &Environment::current()).await?;
        tracing::info!(api_server = %config.cluster_url, "cluster mode: watching NamespaceOffloadings");
        let lease_client =
            Client::try_from(config.clone()).context("cannot build the Kubernetes client")?;
        let reconcile_client = kube::client::ClientBuilder::try_from(config.clone())
            .context("cannot build the Kubernetes client")?
            .with_layer(&limits.layer())
            .build();
        let client = Client::try_from(config).context("cannot build the Kubernetes client")?;
        let store = Arc::new(Store::default());
        // Admission reads NamespaceOffloadings only (the API server's namespaceSelector already
        // chose the namespaces whose pods are sent).
        let offloadings = OffloadingCache::start(client.clone(), store.clone(), shutdown);
        Ok(StateSource {
            store,
            live: Some(Arc::new(KubeLookup::new(client.clone()))),
            synced: offloadings.synced().receiver(),
            offloadings: Some(offloadings),
            client: Some(client),
            lease_client: Some(lease_client),
            reconcile_client: Some(reconcile_client),
        })
    }
}

/// How the serving certificate is obtained.
pub(super) enum CertSource {
    /// PEM files, re-read every `reload_every`.
    Files {
        cert: PathBuf,
        key: PathBuf,
        reload_every: Duration,
    },
    /// A pair kept in a Secret, checked every `check_every`.
    SelfManaged {
        config: ManagedCerts,
        check_every: Duration,
    },
}

impl CertSource {
    /// Chooses from the flags: both files → files; no files in cluster mode → self-managed.
    pub(super) fn choose(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        reload_every: Duration,
        managed: Option<(ManagedCerts, Duration)>,
    ) -> anyhow::Result<Self> {
        match (cert, key, managed) {
            (Some(cert), Some(key), _) => Ok(CertSource::Files {
                cert,
                key,
                reload_every,
            }),
            (None, None, Some((config, check_every))) => Ok(CertSource::SelfManaged {
                config,
                check_every,
            }),
            (None, None, None) => Err(usage(
                "standalone mode needs --tls-cert-file and --tls-key-file (nsoffload certs \
                 writes a development pair)",
            )),
            _ => Err(usage("--tls-cert-file and --tls-key-file go together")),
        }
    }

    /// Loads the first certificate (and, self-managed, registers the webhooks), then starts
    /// the task that keeps it current.
    pub(super) async fn start(
        self,
        client: Option<Client>,
        metrics: &ServingMetrics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Arc<dyn ResolvesServerCert>, JoinHandle<()>)> {
        match self {
            CertSource::Files {
                cert,
                key,
                reload_every,
            } => {
                let loaded = ReloadingCert::from_files(&cert, &key)
                    .context("cannot load the serving certificate")?;
                let loaded = Arc::new(loaded.export_expiry(metrics.cert_expiry()));
                let task = tokio::spawn(loaded.clone().watch(reload_every, shutdown));
                Ok((loaded, task))
            }
            CertSource::SelfManaged {
                config,
                check_every,
            } => {
                let client = client.context("self-managed certificates need cluster mode")?;
                let (manager, served) = CertManager::start(client, config, metrics.cert_expiry())
                    .await
                    .context(
                        "cannot set up the self-managed certificate and webhook registration",
                    )?;
                let task = tokio::spawn(manager.run(check_every, shutdown));
                Ok((served, task))
            }
        }
    }
}

/// The host name of an `https://host[:port][/path]` URL (brackets kept off IPv6 literals).
pub(super) fn url_host(url: &str) -> anyhow::Result<String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(usage(format!(
            "--webhook-url must start with https:// (got {url:?})"
        )));
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(usage(format!("--webhook-url has no host (got {url:?})")));
    }
    Ok(host.to_owned())
}

/// The DNS names of a Service, as the API server may dial it.
pub(super) fn service_hosts(name: &str, namespace: &str) -> Vec<String> {
    vec![
        name.to_owned(),
        format!("{name}.{namespace}"),
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.cluster.local"),
    ]
}

/// nsoffload's own namespace when not given: the pod's namespace in-cluster, else the default.
pub(super) fn default_namespace() -> String {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::install::NAMESPACE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://127.0.0.1:8443").unwrap(), "127.0.0.1");
        assert_eq!(
            url_host("https://webhook.example:8443/base").unwrap(),
            "webhook.example"
        );
        assert_eq!(url_host("https://[::1]:8443").unwrap(), "::1");
        assert_eq!(url_host("https://host").unwrap(), "host");
        for bad in ["http://host", "https://"] {
            let err = url_host(bad).unwrap_err();
            assert_eq!(super::super::exit::status(&err), super::super::exit::USAGE);
        }
    }

    #[test]
    fn cert_source_choice() {
        let d = Duration::from_secs(1);
        assert!(matches!(
            CertSource::choose(Some("a".into()), Some("b".into()), d, None),
            Ok(CertSource::Files { .. })
        ));
        assert!(CertSource::choose(None, None, d, None).is_err());
        assert!(CertSource::choose(Some("a".into()), None, d, None).is_err());
    }
}
