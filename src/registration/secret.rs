//! Self-managed TLS material, kept in a Secret so that every replica serves the same pair.
//!
//! Without `--tls-cert-file` nothing else gives the webhook a certificate. Generating one per
//! replica would hand the API server a different CA per pod and a `caBundle` that changes on
//! every restart, so the CA, its key and the serving pair live in one Secret in nsoffload's
//! namespace (`tls.crt`, `tls.key`, `ca.crt` = the CA bundle with the current CA first,
//! `ca.key` = the current CA's key).
//!
//! What to store is decided by [`plan`], a pure function of (stored material, hosts, now,
//! policy), so every rotation rule is tested without an API server; [`ensure`] only reads,
//! plans, and writes with optimistic concurrency, and never writes when nothing changed.
//!
//! The rotation rules are in [`rotation`]; their entry points are re-exported here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

use super::certs::CertError;
use super::{FIELD_MANAGER, MANAGED_BY_LABEL, MANAGER};
use crate::server::x509::not_after_unix;

pub mod rotation;

pub use rotation::{plan, InvalidPolicy, Plan, RotationPolicy};

/// Secret key of the serving certificate.
pub const TLS_CRT: &str = "tls.crt";
/// Secret key of the serving key.
pub const TLS_KEY: &str = "tls.key";
/// Secret key of the CA bundle (current CA first).
pub const CA_CRT: &str = "ca.crt";
/// Secret key of the current CA's key.
pub const CA_KEY: &str = "ca.key";
/// How many times [`ensure`] re-reads after losing a write race before giving up.
const MAX_ATTEMPTS: usize = 4;

/// The PEM material stored in the Secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertMaterial {
    /// Serving certificate (`tls.crt`).
    pub cert_pem: String,
    /// Serving key (`tls.key`).
    pub key_pem: String,
    /// CA bundle for the webhook configurations' `caBundle` (`ca.crt`), current CA first.
    pub ca_bundle_pem: String,
    /// Key of the current CA (`ca.key`).
    pub ca_key_pem: String,
}

impl CertMaterial {
    /// Reads the four keys of a Secret; a missing or non-UTF-8 key reads as empty, which
    /// [`plan`] treats as unusable.
    pub fn from_secret(secret: &Secret) -> Self {
        let get = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .unwrap_or_default()
        };
        CertMaterial {
            cert_pem: get(TLS_CRT),
            key_pem: get(TLS_KEY),
            ca_bundle_pem: get(CA_CRT),
            ca_key_pem: get(CA_KEY),
        }
    }

    /// The four Secret keys.
    pub fn data(&self) -> BTreeMap<String, ByteString> {
        [
            (TLS_CRT, &self.cert_pem),
            (TLS_KEY, &self.key_pem),
            (CA_CRT, &self.ca_bundle_pem),
            (CA_KEY, &self.ca_key_pem),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect()
    }

    /// Expiry of the serving certificate, for the expiry metric.
    pub fn serving_not_after(&self) -> Option<OffsetDateTime> {
        let der = first_cert(&self.cert_pem)?;
        OffsetDateTime::from_unix_timestamp(not_after_unix(&der)?).ok()
    }
}

fn first_cert(text: &str) -> Option<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut text.as_bytes()).next()?.ok()
}

/// Why [`ensure`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A request to the API server failed.
    #[error("request on Secret {namespace}/{name} failed: {source}")]
    Api {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The cause.
        source: kube::Error,
    },
    /// New material was needed but could not be generated.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The Secret needs new material but was not created by nsoffload.
    #[error(
        "Secret {namespace}/{name} is not managed by nsoffload (label {MANAGED_BY_LABEL}={MANAGER} \
         missing) and its certificates need replacing; refusing to overwrite it"
    )]
    NotOwned {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// Other writers kept winning the race.
    #[error(
        "Secret {namespace}/{name} kept changing concurrently; gave up after {MAX_ATTEMPTS} \
         attempts"
    )]
    Contended {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
}

/// Reads the Secret, plans, and writes only when the plan says so: POST when the Secret does
/// not exist, PUT with the resourceVersion that was read otherwise. When another replica
/// wins the race (409), reads again and plans again, so both end up serving the winner's
/// material. Returns the material to serve and publish.
pub async fn ensure(
    client: kube::Client,
    namespace: &str,
    secret_name: &str,
    hosts: &[String],
    policy: &RotationPolicy,
) -> Result<CertMaterial, SecretError> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let api_error = |source| SecretError::Api {
        namespace: namespace.to_owned(),
        name: secret_name.to_owned(),
        source,
    };
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..Default::default()
    };
    for _ in 0..MAX_ATTEMPTS {
        let stored = api.get_opt(secret_name).await.map_err(api_error)?;
        let existing = stored.as_ref().map(CertMaterial::from_secret);
        let material = match plan(existing.as_ref(), hosts, OffsetDateTime::now_utc(), policy)? {
            Plan::Write(material) => material,
            Plan::Keep => return Ok(existing.unwrap_or_default()),
        };
        let written = match stored {
            None => {
                api.create(&pp, &new_secret(namespace, secret_name, &material))
                    .await
            }
            Some(mut secret) => {
                let owned = secret
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(MANAGED_BY_LABEL));
                if owned.map(String::as_str) != Some(MANAGER) {
                    return Err(SecretError::NotOwned {
                        namespace: namespace.to_owned(),
                        name: secret_name.to_owned(),
                    });
                }
                // The type is immutable, so it stays as it is. The resourceVersion that was read
                // makes the PUT conditional: 409 when someone else wrote in between.
                secret
                    .data
                    .get_or_insert_with(BTreeMap::new)
                    .extend(material.data());
                secret.metadata.managed_fields = None;
                api.replace(secret_name, &pp, &secret).await
            }
        };
        match written {
            Ok(_) => {
                let old = existing.unwrap_or_default();
                tracing::info!(
                    namespace,
                    secret = secret_name,
                    ca_bundle_changed = old.ca_bundle_pem != material.ca_bundle_pem,
                    serving_certificate_changed = old.cert_pem != material.cert_pem,
                    "stored new webhook certificates"
                );
                return Ok(material);
            }
            Err(kube::Error::Api(s))
                if s.code == 409 || s.is_conflict() || s.is_already_exists() =>
            {
                tracing::debug!(
                    namespace,
                    secret = secret_name,
                    "lost a write race; reading again"
                );
            }
            Err(e) => return Err(api_error(e)),
        }
    }
    Err(SecretError::Contended {
        namespace: namespace.to_owned(),
        name: secret_name.to_owned(),
    })
}

fn new_secret(namespace: &str, name: &str, material: &CertMaterial) -> Secret {
    let mut secret = Secret {
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(material.data()),
        ..Default::default()
    };
    secret.metadata.name = Some(name.to_owned());
    secret.metadata.namespace = Some(namespace.to_owned());
    secret.metadata.labels = Some([(MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned())].into());
    secret
}
