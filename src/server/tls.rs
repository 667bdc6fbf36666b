//! TLS for the webhook port: rustls with the `ring` provider, TLS 1.2+, ALPN `h2`/`http/1.1`,
//! and a certificate that is reloaded from its files without a restart.
//!
//! There is no file watcher on purpose: a Kubernetes Secret volume updates by swapping a
//! symlink to a new directory, which single-file watches miss. Instead the files are read
//! again on a timer and the pair is swapped only when it changed *and* parses as a matching
//! certificate and key; a half-written or broken pair is logged and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::metrics::gauge::Gauge;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

/// The crypto provider used everywhere in the process (chosen for a small, C-toolchain-only
/// build; see the README).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs [`crypto_provider`] as the process default; harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The PEM holds no certificate.
    #[error("no certificate found in the certificate file")]
    NoCertificate,
    /// The PEM holds no private key, or it is unreadable.
    #[error("no usable private key found in the key file")]
    NoKey,
    /// rustls refused the pair (unsupported key type, key does not match the certificate…).
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Parses a PEM certificate chain and key into a pair rustls can serve, checking that the key
/// belongs to the certificate.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .ok()
        .flatten()
        .ok_or(TlsError::NoKey)?;
    Ok(CertifiedKey::from_der(certs, key, &crypto_provider())?)
}

/// A certificate resolver that serves the latest valid pair read from two files.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    /// The pair being served, with its expiry metric.
    served: ServedCert,
    /// The bytes last seen, valid or not, so a broken pair is reported once.
    last_seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl ReloadingCert {
    /// Loads the pair; fails when it is not valid now.
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let (cert, key) = (read(cert_path)?, read(key_path)?);
        let pair = certified_key(&cert, &key)?;
        Ok(ReloadingCert {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            served: ServedCert::new(pair, Gauge::default()),
            last_seen: Mutex::new((cert, key)),
        })
    }

    /// Makes `gauge` follow the served certificate's expiry time (Unix seconds).
    pub fn export_expiry(mut self, gauge: Gauge) -> Self {
        let pair = self.served.current.load_full();
        self.served = ServedCert::new(CertifiedKey::clone(&pair), gauge);
        self
    }

    /// Reads the files again; swaps the served pair when they changed and are valid.
    /// Returns whether the served pair changed.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (cert, key) = (read(&self.cert_path)?, read(&self.key_path)?);
        let mut last = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        if last.0 == cert && last.1 == key {
            return Ok(false);
        }
        *last = (cert, key);
        self.served.set(certified_key(&last.0, &last.1)?);
        Ok(true)
    }

    /// Reloads every `every` until `cancel` fires, logging changes and failures.
    pub async fn watch(self: Arc<Self>, every: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.reload() {
                Ok(true) => {
                    tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "serving certificate files changed but cannot be used; still serving the previous pair")
                }
            }
        }
    }
}

fn record_expiry(gauge: &Gauge, pair: &CertifiedKey) {
    if let Some(t) = pair
        .end_entity_cert()
        .ok()
        .and_then(|c| super::x509::not_after_unix(c))
    {
        gauge.set(t);
    }
}

/// A certificate held in memory and swapped by its owner (the self-managed certificates of
/// cluster mode, which come from a Secret rather than files).
#[derive(Debug)]
pub struct ServedCert {
    current: ArcSwap<CertifiedKey>,
    expiry: Gauge,
}

impl ServedCert {
    /// Serves `pair`, exporting its expiry on `expiry`.
    pub fn new(pair: CertifiedKey, expiry: Gauge) -> Self {
        record_expiry(&expiry, &pair);
        ServedCert {
            current: ArcSwap::from_pointee(pair),
            expiry,
        }
    }

    /// Serves `pair` from the next handshake on.
    pub fn set(&self, pair: CertifiedKey) {
        record_expiry(&self.expiry, &pair);
        self.current.store(Arc::new(pair));
    }
}

impl ResolvesServerCert for ServedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.served.resolve(hello)
    }
}

/// The webhook port's TLS configuration: TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`.
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
