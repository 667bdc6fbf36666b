//! Keeps cluster mode's self-managed certificate and webhook registration current.
//!
//! At start-up the certificate Secret is ensured and the webhook configurations are applied
//! before the server reports ready, so a failure there stops the process with a clear error.
//! Afterwards the Secret is checked on a timer: every replica converges on the pair stored in
//! the Secret (rotated by whichever replica gets there first), swaps it into the TLS
//! configuration when it changed, and re-registers when the CA bundle changed.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::secret::{ensure, CertMaterial, RotationPolicy, SecretError};
use super::webhooks::{register, Endpoint, RegistrationError};
use crate::server::tls::{certified_key, ServedCert, TlsError};

/// Why the certificates or the registration could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The Secret could not be read or written.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The stored pair cannot be served.
    #[error("the certificate in the Secret cannot be served: {0}")]
    Tls(#[from] TlsError),
    /// The webhook configurations could not be applied.
    #[error(transparent)]
    Registration(#[from] RegistrationError),
}

/// Where the certificate lives and where the API server reaches the webhooks.
#[derive(Debug, Clone)]
pub struct ManagedCerts {
    /// nsoffload's namespace (holds the Secret; excluded from the webhooks).
    pub namespace: String,
    /// Name of the Secret.
    pub secret_name: String,
    /// DNS names or IPs the serving certificate covers.
    pub hosts: Vec<String>,
    /// How the API server reaches the webhooks.
    pub endpoint: Endpoint,
    /// Certificate lifetimes.
    pub policy: RotationPolicy,
}

/// The running manager: the served certificate and the last registered bundle.
pub struct CertManager {
    client: kube::Client,
    config: ManagedCerts,
    served: Arc<ServedCert>,
    registered_bundle: String,
    served_pem: String,
}

impl CertManager {
    /// Ensures the Secret, registers the webhooks, and returns the manager with the
    /// certificate to serve.
    pub async fn start(
        client: kube::Client,
        config: ManagedCerts,
        expiry: prometheus_client::metrics::gauge::Gauge,
    ) -> Result<(Self, Arc<ServedCert>), ManagerError> {
        let material = ensure(
            client.clone(),
            &config.namespace,
            &config.secret_name,
            &config.hosts,
            &config.policy,
        )
        .await?;
        let pair = certified_key(material.cert_pem.as_bytes(), material.key_pem.as_bytes())?;
        register(
            client.clone(),
            &material.ca_bundle_pem,
            &config.endpoint,
            &config.namespace,
        )
        .await?;
        tracing::info!(secret = %config.secret_name, "serving the self-managed certificate; webhooks registered");
        let served = Arc::new(ServedCert::new(pair, expiry));
        let manager = CertManager {
            client,
            config,
            served: served.clone(),
            registered_bundle: material.ca_bundle_pem.clone(),
            served_pem: material.cert_pem,
        };
        Ok((manager, served))
    }

    /// One check: converge on the Secret's pair and re-register when the bundle changed.
    pub async fn refresh(&mut self) -> Result<(), ManagerError> {
        let c = &self.config;
        let material: CertMaterial = ensure(
            self.client.clone(),
            &c.namespace,
            &c.secret_name,
            &c.hosts,
            &c.policy,
        )
        .await?;
        if material.cert_pem != self.served_pem {
            self.served.set(certified_key(
                material.cert_pem.as_bytes(),
                material.key_pem.as_bytes(),
            )?);
            self.served_pem = material.cert_pem.clone();
            tracing::info!("serving a rotated certificate");
        }
        if material.ca_bundle_pem != self.registered_bundle {
            register(
                self.client.clone(),
                &material.ca_bundle_pem,
                &c.endpoint,
                &c.namespace,
            )
            .await?;
            self.registered_bundle = material.ca_bundle_pem;
            tracing::info!("CA bundle changed; webhooks registered again");
        }
        Ok(())
    }

    /// Refreshes every `every` until `cancel`; failures are logged and retried next time.
    pub async fn run(mut self, every: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; start() just did the work
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "certificate check failed; serving the current certificate and retrying later");
            }
        }
    }
}
