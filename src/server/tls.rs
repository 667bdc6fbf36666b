//! TLS for the webhook port: rustls with the `ring` provider, TLS 1.2+, ALPN `h2`/`http/1.1`,
//! and a certificate that is reloaded from its files without a restart.
//!
//! There is no file watcher on purpose: a Kubernetes Secret volume updates by swapping a
//! symlink to a new directory, which single-file watches miss. Instead the files are read
//! again on a timer and the pair is swapped only when it changed *and* parses as a matching
//! certificate and key that has not expired; a half-written, broken or expired pair is logged
//! and the old one kept.
//!
//! An expired certificate is refused at start-up: the API server would reject every TLS
//! handshake, and every pod creation in an offloaded namespace would fail on a server that
//! looks healthy. Within [`EXPIRY_WARNING`] of its end, the served certificate is warned about
//! (once per certificate), besides the expiry metric.

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

/// Why TLS material could not be used. Each message says its cause itself, so none is also
/// exposed as a `source` to be printed twice.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        error: std::io::Error,
    },
    /// The PEM holds no certificate.
    #[error("no certificate found in the certificate file")]
    NoCertificate,
    /// The PEM holds no private key, or it is unreadable.
    #[error("no usable private key found in the key file")]
    NoKey,
    /// The key is not the certificate's.
    #[error("the private key does not belong to the certificate (a key and certificate of different pairs?)")]
    KeyMismatch,
    /// The certificate's validity has ended.
    #[error("the serving certificate {path} expired on {at}; renew it (for development: nsoffload certs --out DIR)")]
    Expired {
        /// The certificate file.
        path: String,
        /// Its `notAfter`, as [`utc_text`] writes it.
        at: String,
    },
    /// rustls refused the pair (unsupported key type…).
    #[error("invalid certificate or key: {0}")]
    Rustls(rustls::Error),
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch
            }
            other => TlsError::Rustls(other),
        }
    }
}

/// How long before its end the served certificate is warned about: a week leaves time to
/// renew it by hand.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 86_400);

/// Where a certificate stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Past its end.
    Expired,
    /// Ends within [`EXPIRY_WARNING`]; the seconds left.
    EndingSoon(i64),
    /// Ends later, or its end could not be read (then the metric stays unset too).
    Valid,
}

/// Where a certificate ending at `not_after` stands at `now` (both Unix seconds).
pub fn validity(not_after: Option<i64>, now: i64) -> Validity {
    match not_after {
        Some(end) if end <= now => Validity::Expired,
        Some(end) if end - now < EXPIRY_WARNING.as_secs() as i64 => Validity::EndingSoon(end - now),
        _ => Validity::Valid,
    }
}

/// Unix seconds as people read a date: `2027-01-31 12:00:00 UTC`.
pub fn utc_text(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{unix} (Unix time)"),
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The end of the pair's leaf certificate (Unix seconds), when it can be read.
pub fn not_after(pair: &CertifiedKey) -> Option<i64> {
    pair.end_entity_cert()
        .ok()
        .and_then(|c| super::x509::not_after_unix(c))
}

/// Refuses a pair whose certificate (read from `path`) has expired.
fn unexpired(pair: CertifiedKey, path: &Path) -> Result<CertifiedKey, TlsError> {
    let end = not_after(&pair);
    match (validity(end, now_unix()), end) {
        (Validity::Expired, Some(end)) => Err(TlsError::Expired {
            path: path.display().to_string(),
            at: utc_text(end),
        }),
        _ => Ok(pair),
    }
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
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.display().to_string(),
        error,
    })
}

impl ReloadingCert {
    /// Loads the pair; fails when it is not valid now (unreadable, mismatched, expired).
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let (cert, key) = (read(cert_path)?, read(key_path)?);
        let pair = unexpired(certified_key(&cert, &key)?, cert_path)?;
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
        let pair = certified_key(&last.0, &last.1)?;
        self.served.set(unexpired(pair, &self.cert_path)?);
        Ok(true)
    }

    /// Reloads every `every` until `cancel` fires, logging changes and failures, and warns
    /// (once per certificate) when the served one is about to end or has ended.
    pub async fn watch(self: Arc<Self>, every: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = None;
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
            warned = self.served.warn_expiry(&self.cert_path, warned);
        }
    }
}

fn record_expiry(gauge: &Gauge, pair: &CertifiedKey) {
    if let Some(t) = not_after(pair) {
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

    /// Logs a warning when the served certificate (from `path`) ends within
    /// [`EXPIRY_WARNING`], and an error once it has ended, unless `warned` already holds its
    /// end and state. Returns what to pass next time.
    fn warn_expiry(&self, path: &Path, warned: Option<(i64, bool)>) -> Option<(i64, bool)> {
        let end = not_after(&self.current.load())?;
        let state = validity(Some(end), now_unix());
        let expired = state == Validity::Expired;
        if state == Validity::Valid || warned == Some((end, expired)) {
            return warned;
        }
        let (cert, at) = (path.display(), utc_text(end));
        match state {
            Validity::EndingSoon(left) => {
                let within = match left / 86_400 {
                    0 => format!("{} hour(s)", left / 3600),
                    days => format!("{days} day(s)"),
                };
                tracing::warn!(%cert, expires = %at, "the serving certificate expires in {within}; renew it before then, or the API server will refuse the webhooks");
            }
            _ => {
                tracing::error!(%cert, expired = %at, "the serving certificate has expired; the API server refuses the webhooks until it is renewed");
            }
        }
        Some((end, expired))
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

#[cfg(test)]
mod tests {
    use time::{Duration as Span, OffsetDateTime};

    use super::*;
    use crate::registration::certs::{generate_ca, issue_serving};

    const DAY: i64 = 86_400;

    #[test]
    fn validity_around_the_end() {
        let now = 1_000_000_000;
        assert_eq!(validity(Some(now - 1), now), Validity::Expired);
        assert_eq!(validity(Some(now), now), Validity::Expired);
        assert_eq!(validity(Some(now + 3600), now), Validity::EndingSoon(3600));
        assert_eq!(
            validity(Some(now + 7 * DAY - 1), now),
            Validity::EndingSoon(7 * DAY - 1)
        );
        assert_eq!(validity(Some(now + 7 * DAY), now), Validity::Valid);
        assert_eq!(validity(None, now), Validity::Valid);
        assert_eq!(utc_text(2_524_607_999), "2049-12-31 23:59:59 UTC");
    }

    /// A pair written to `dir`, valid from two days ago for `days` (negative: already ended).
    fn pair(dir: &Path, days: i64) -> (PathBuf, PathBuf, i64) {
        let now = OffsetDateTime::now_utc();
        let start = now - Span::days(2);
        let ca = generate_ca(start, now + Span::days(30)).unwrap();
        let end = now + Span::days(days);
        let leaf = issue_serving(&ca.key_pem, &["localhost".into()], start, end).unwrap();
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, leaf.cert_pem).unwrap();
        std::fs::write(&key, leaf.key_pem).unwrap();
        (cert, key, end.unix_timestamp())
    }

    #[test]
    fn an_expired_certificate_is_refused_at_start_and_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, end) = pair(dir.path(), -1);
        let err = ReloadingCert::from_files(&cert, &key).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the serving certificate {} expired on {}; renew it (for development: \
                 nsoffload certs --out DIR)",
                cert.display(),
                utc_text(end)
            )
        );
        let (cert, key, _) = pair(dir.path(), 30);
        let served = ReloadingCert::from_files(&cert, &key).unwrap();
        pair(dir.path(), -1);
        assert!(matches!(served.reload(), Err(TlsError::Expired { .. })));
    }

    #[test]
    fn a_key_of_another_pair_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _, _) = pair(dir.path(), 30);
        let other = tempfile::tempdir().unwrap();
        let (_, key, _) = pair(other.path(), 30);
        let err = ReloadingCert::from_files(&cert, &key).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch), "{err}");
    }

    #[test]
    fn an_ending_certificate_is_warned_about_once_per_state() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, end) = pair(dir.path(), 3);
        let served = ReloadingCert::from_files(&cert, &key).unwrap().served;
        let warned = served.warn_expiry(&cert, None);
        assert_eq!(warned, Some((end, false)));
        assert_eq!(served.warn_expiry(&cert, warned), warned);
        let (cert, key, _) = pair(dir.path(), 300);
        let served = ReloadingCert::from_files(&cert, &key).unwrap().served;
        assert_eq!(served.warn_expiry(&cert, None), None);
    }
}
