//! Clients for remote clusters, built from credential Secrets (SPEC §7 inputs).
//!
//! A remote cluster's credentials are a Secret in nsoffload's own namespace labelled
//! `liqo.io/remote-cluster-id=<id>` with a kubeconfig under `kubeconfig`. One client is kept
//! per cluster and rebuilt only when its Secret changes (new uid or resourceVersion), so
//! connections are reused across reconciles; a client that could not be built is not kept,
//! so every attempt tries again (SPEC §7.9). Everything that can go wrong with a Secret —
//! missing, no `kubeconfig` key, unreadable YAML, unusable auth — is a per-cluster
//! [`Failure`] with a message saying which Secret to fix; it never stops other clusters.
//!
//! The reconciler sees remote clusters through the [`RemoteClusters`] trait, so tests hand it
//! scripted clients instead of Secrets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::Store;
use kube::{Client, Config, ResourceExt};

use super::ratelimit::ApiLimits;
use super::status::Failure;
use crate::api::consts::REMOTE_CLUSTER_ID_LABEL;

/// The key of the kubeconfig inside a credentials Secret.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// A boxed future returned by [`RemoteClusters::client`].
pub type ClientFuture<'a> = Pin<Box<dyn Future<Output = Result<Client, Failure>> + Send + 'a>>;

/// Access to remote clusters.
pub trait RemoteClusters: Send + Sync {
    /// Ids of the clusters that have credentials (usable or not).
    fn with_credentials(&self) -> BTreeSet<String>;
    /// A client for the cluster, or why there is none.
    fn client<'a>(&'a self, cluster: &'a str) -> ClientFuture<'a>;
}

/// A client built from one version of a Secret (only successes are kept).
struct Cached {
    /// uid and resourceVersion of the Secret the entry was built from.
    version: String,
    client: Client,
}

/// Remote clients built from the credential Secrets of a reflector store.
pub struct SecretClients {
    secrets: Store<Secret>,
    namespace: String,
    timeout: Duration,
    limits: ApiLimits,
    cache: Mutex<HashMap<String, Cached>>,
}

impl SecretClients {
    /// Reads Secrets from `secrets` (a store of nsoffload's namespace `namespace`); remote
    /// calls time out after `timeout` and are rate limited by `limits` (per cluster).
    pub fn new(
        secrets: Store<Secret>,
        namespace: String,
        timeout: Duration,
        limits: ApiLimits,
    ) -> Self {
        SecretClients {
            secrets,
            namespace,
            timeout,
            limits,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The Secret of `cluster`: the first by name when several claim it.
    fn secret(&self, cluster: &str) -> Option<Arc<Secret>> {
        let mut found: Vec<_> = self
            .secrets
            .state()
            .into_iter()
            .filter(|s| cluster_of(s) == Some(cluster))
            .collect();
        found.sort_by_key(|s| s.name_any());
        if found.len() > 1 {
            tracing::warn!(cluster, secret = %found[0].name_any(), "several credential Secrets name this cluster; using the first by name");
        }
        found.into_iter().next()
    }

    fn missing(&self, cluster: &str) -> Failure {
        Failure {
            message: format!(
                "no credentials for cluster {cluster}: no Secret labelled \
                 {REMOTE_CLUSTER_ID_LABEL}={cluster} in namespace {}",
                self.namespace
            ),
            unreachable: true,
        }
    }
}

fn cluster_of(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .labels
        .as_ref()?
        .get(REMOTE_CLUSTER_ID_LABEL)
        .map(String::as_str)
        .filter(|id| !id.is_empty())
}

fn version(secret: &Secret) -> String {
    format!(
        "{}:{}",
        secret.metadata.uid.as_deref().unwrap_or_default(),
        secret
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default()
    )
}

/// Reads a credentials Secret's kubeconfig, or explains why it cannot be used.
async fn config_from_secret(secret: &Secret) -> Result<(Config, String), String> {
    let name = format!(
        "{}/{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any()
    );
    let raw = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KUBECONFIG_KEY))
        .ok_or_else(|| format!("credentials Secret {name} has no {KUBECONFIG_KEY:?} key"))?;
    let text = std::str::from_utf8(&raw.0)
        .map_err(|_| format!("credentials Secret {name}: {KUBECONFIG_KEY:?} is not UTF-8"))?;
    let kubeconfig = Kubeconfig::from_yaml(text)
        .map_err(|e| format!("credentials Secret {name}: unreadable kubeconfig: {e}"))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("credentials Secret {name}: unusable kubeconfig: {e}"))?;
    Ok((config, name))
}

fn build(config: Config, name: &str, limits: ApiLimits) -> Result<Client, String> {
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| format!("credentials Secret {name}: cannot build a client: {e}"))?;
    Ok(builder.with_layer(&limits.layer()).build())
}

/// Builds a client from a credentials Secret, or explains why it cannot.
/// Its requests are rate limited by `limits` (a bucket per client, so per cluster).
pub async fn client_from_secret(
    secret: &Secret,
    timeout: Duration,
    limits: ApiLimits,
) -> Result<Client, String> {
    let (mut config, name) = config_from_secret(secret).await?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    build(config, &name, limits)
}

/// Like [`client_from_secret`], for watches: no read timeout (a watch is a long poll).
pub async fn client_for_watch(secret: &Secret, limits: ApiLimits) -> Result<Client, String> {
    let (mut config, name) = config_from_secret(secret).await?;
    config.read_timeout = None;
    build(config, &name, limits)
}

/// The credential Secret of each cluster (the first by name when several claim one), with
/// its version (uid and resourceVersion).
pub fn credentials(secrets: &Store<Secret>) -> BTreeMap<String, (String, Arc<Secret>)> {
    let mut all = secrets.state();
    all.sort_by_key(|s| s.name_any());
    let mut out = BTreeMap::new();
    for secret in all {
        if let Some(cluster) = cluster_of(&secret) {
            out.entry(cluster.to_owned())
                .or_insert_with(|| (version(&secret), secret.clone()));
        }
    }
    out
}

impl RemoteClusters for SecretClients {
    fn with_credentials(&self) -> BTreeSet<String> {
        self.secrets
            .state()
            .iter()
            .filter_map(|s| cluster_of(s).map(str::to_owned))
            .collect()
    }

    fn client<'a>(&'a self, cluster: &'a str) -> ClientFuture<'a> {
        Box::pin(async move {
            let Some(secret) = self.secret(cluster) else {
                return Err(self.missing(cluster));
            };
            let version = version(&secret);
            {
                let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = cache.get(cluster).filter(|c| c.version == version) {
                    return Ok(c.client.clone());
                }
            }
            let client = client_from_secret(&secret, self.timeout, self.limits).await;
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match client {
                Ok(client) => {
                    cache.insert(
                        cluster.to_owned(),
                        Cached {
                            version,
                            client: client.clone(),
                        },
                    );
                    Ok(client)
                }
                // Not cached: the next attempt builds it again (SPEC §7.9), since what it
                // depends on besides the Secret (a file, a name lookup) may have been fixed.
                Err(message) => {
                    tracing::warn!(cluster, error = %message, "cannot use the cluster's credentials");
                    cache.remove(cluster);
                    Err(Failure {
                        message,
                        unreachable: true,
                    })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: r1
  cluster: {server: 'https://192.0.2.1:6443', insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: c
  context: {cluster: r1, user: u}
current-context: c
";

    fn secret(name: &str, cluster: &str, rv: &str, kubeconfig: Option<&str>) -> Secret {
        let mut s: Secret = serde_json::from_value(json!({"metadata": {
            "name": name, "namespace": "nsoffload-system", "uid": format!("uid-{name}"),
            "resourceVersion": rv, "labels": {"liqo.io/remote-cluster-id": cluster},
        }}))
        .unwrap();
        if let Some(k) = kubeconfig {
            s.data = Some([(KUBECONFIG_KEY.to_owned(), ByteString(k.as_bytes().to_vec()))].into());
        }
        s
    }

    fn clients(secrets: Vec<Secret>) -> (SecretClients, reflector::store::Writer<Secret>) {
        let (store, mut writer) = reflector::store();
        for s in secrets {
            writer.apply_watcher_event(&Event::Apply(s));
        }
        let limits = ApiLimits {
            qps: 100.0,
            burst: 10,
        };
        let c = SecretClients::new(
            store,
            "nsoffload-system".to_owned(),
            Duration::from_secs(1),
            limits,
        );
        (c, writer)
    }

    use kube::runtime::reflector;

    async fn failure(c: &SecretClients, cluster: &str) -> Failure {
        match c.client(cluster).await {
            Ok(_) => panic!("expected no client for {cluster}"),
            Err(f) => f,
        }
    }

    #[tokio::test]
    async fn r5_a_missing_secret_names_what_to_create() {
        crate::server::tls::install_crypto_provider();
        let (c, _w) = clients(vec![secret("creds-r1", "r1", "1", Some(KUBECONFIG))]);
        let f = failure(&c, "r3").await;
        assert_eq!(
            f.message,
            "no credentials for cluster r3: no Secret labelled liqo.io/remote-cluster-id=r3 in namespace nsoffload-system"
        );
        assert!(f.unreachable);
        assert!(c.client("r1").await.is_ok());
        assert_eq!(c.with_credentials(), ["r1".to_owned()].into());
    }

    #[tokio::test]
    async fn unusable_secrets_say_which_and_why() {
        crate::server::tls::install_crypto_provider();
        let (c, _w) = clients(vec![
            secret("no-key", "r1", "1", None),
            secret("bad-yaml", "r2", "1", Some("{{ not yaml")),
        ]);
        let f = failure(&c, "r1").await;
        assert_eq!(
            f.message,
            "credentials Secret nsoffload-system/no-key has no \"kubeconfig\" key"
        );
        let f = failure(&c, "r2").await;
        assert!(
            f.message
                .starts_with("credentials Secret nsoffload-system/bad-yaml: unreadable kubeconfig"),
            "{}",
            f.message
        );
    }

    #[tokio::test]
    async fn a_changed_secret_is_read_again() {
        crate::server::tls::install_crypto_provider();
        let (c, mut w) = clients(vec![secret("creds", "r1", "1", None)]);
        assert!(c.client("r1").await.is_err());
        // Fixed in place: a new resourceVersion rebuilds the client.
        w.apply_watcher_event(&Event::Apply(secret("creds", "r1", "2", Some(KUBECONFIG))));
        assert!(c.client("r1").await.is_ok());
        // Deleted: no stale client is handed out.
        w.apply_watcher_event(&Event::Delete(secret("creds", "r1", "2", Some(KUBECONFIG))));
        assert!(c.client("r1").await.is_err());
    }

    /// SPEC §7.9: a build that failed for a reason outside the Secret (here a CA file it
    /// names, not there yet) is tried again on the next attempt, with the same Secret.
    #[tokio::test]
    async fn a_client_that_failed_to_build_is_rebuilt_on_the_next_attempt() {
        crate::server::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        let kubeconfig = KUBECONFIG.replace(
            "insecure-skip-tls-verify: true",
            &format!("certificate-authority: {}", ca.display()),
        );
        let (c, _w) = clients(vec![secret("creds", "r1", "1", Some(&kubeconfig))]);
        let first = failure(&c, "r1").await;
        assert!(
            first.message.contains("unusable kubeconfig"),
            "{}",
            first.message
        );
        let pem = crate::registration::certs::generate(&["localhost".to_owned()], 1, 1)
            .unwrap()
            .ca_cert_pem;
        std::fs::write(&ca, pem).unwrap();
        assert!(c.client("r1").await.is_ok(), "the same Secret, built again");
    }
}
