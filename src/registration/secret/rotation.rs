//! The rotation rules of the self-managed certificates, as one pure function.
//!
//! Kept apart from the Secret I/O so that every rule is a plain test: the stored material,
//! the hosts, the time and the policy go in, `Keep` or the material to write comes out.
//!
//! Rules (the [`RotationPolicy`] defaults in brackets):
//! - The current CA is replaced when it has less than `ca_renew_before` [1 year] left, or
//!   cannot be used (missing, unreadable, expired, or `ca.key` does not sign certificates
//!   that chain to it). The new CA [10 years] goes first in the bundle; the old one stays.
//! - The serving certificate is kept while its key matches, it chains to a CA of the bundle,
//!   covers every host and has at least `serving_renew_before` [30 days] left; otherwise a new
//!   one [1 year, never past the current CA's expiry] is signed by the current CA. It is *not*
//!   reissued merely because the CA rotated: the new bundle then reaches the API server (the
//!   caller re-registers the webhooks) long before anything signed by the new CA is served.
//! - A previous CA is dropped from the bundle once it has expired. Serving certificates never
//!   outlive their CA, so by then nothing it signed can still be in use, and until then
//!   something might be (another replica that has not re-read the Secret yet).

use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use time::{Duration, OffsetDateTime};

use super::CertMaterial;
use crate::registration::certs::{generate_ca, issue_serving, CertError, PemPair};
use crate::server::tls::{certified_key, crypto_provider};
use crate::server::x509::not_after_unix;

/// How far back certificates start, to tolerate clock skew between replicas and API server.
const BACKDATE: Duration = Duration::hours(1);

/// Lifetimes and renewal margins. Build a non-default one with [`RotationPolicy::new`], which
/// refuses margins that would make [`plan`] rewrite the Secret on every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    ca_validity: Duration,
    ca_renew_before: Duration,
    serving_validity: Duration,
    serving_renew_before: Duration,
}

/// A [`RotationPolicy`] whose durations contradict each other.
#[derive(Debug, thiserror::Error)]
#[error("invalid certificate rotation policy: {0}")]
pub struct InvalidPolicy(&'static str);

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            ca_validity: Duration::days(3650),
            ca_renew_before: Duration::days(365),
            serving_validity: Duration::days(365),
            serving_renew_before: Duration::days(30),
        }
    }
}

impl RotationPolicy {
    /// Validity of a new CA, margin for its replacement, validity of a new serving
    /// certificate, margin for its renewal. Every margin must be positive and shorter than its
    /// validity, and the serving margin shorter than the CA margin (a serving certificate is
    /// clamped to its CA's expiry; it must not be due for renewal as soon as it is issued).
    pub fn new(
        ca_validity: Duration,
        ca_renew_before: Duration,
        serving_validity: Duration,
        serving_renew_before: Duration,
    ) -> Result<Self, InvalidPolicy> {
        if !serving_renew_before.is_positive() {
            return Err(InvalidPolicy("renewal margins must be positive"));
        }
        if ca_renew_before >= ca_validity || serving_renew_before >= serving_validity {
            return Err(InvalidPolicy(
                "a renewal margin must be shorter than the validity",
            ));
        }
        if serving_renew_before >= ca_renew_before {
            return Err(InvalidPolicy(
                "the serving certificate's margin must be shorter than the CA's",
            ));
        }
        Ok(RotationPolicy {
            ca_validity,
            ca_renew_before,
            serving_validity,
            serving_renew_before,
        })
    }
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The stored material is fine as it is.
    Keep,
    /// Store (and serve) this material instead.
    Write(CertMaterial),
}

/// A CA of the bundle.
struct Ca {
    der: CertificateDer<'static>,
    not_after: OffsetDateTime,
}

/// Decides whether the stored material can stay, and if not what replaces it. See the module
/// documentation for the rules. Errors only when `hosts` is empty or invalid, or when
/// generating a certificate fails.
pub fn plan(
    existing: Option<&CertMaterial>,
    hosts: &[String],
    now: OffsetDateTime,
    policy: &RotationPolicy,
) -> Result<Plan, CertError> {
    let names = server_names(hosts)?;
    let (stored, bundle_clean) =
        existing.map_or((Vec::new(), false), |m| parse_bundle(&m.ca_bundle_pem));
    let stored_ders: Vec<_> = stored.iter().map(|ca| ca.der.clone()).collect();
    let mut stored = stored.into_iter();
    let stored_key = existing.map(|m| m.ca_key_pem.clone()).unwrap_or_default();

    let (current, ca_key_pem, demoted) = match stored.next() {
        Some(ca)
            if ca.not_after - now >= policy.ca_renew_before && can_sign(&stored_key, &ca, now) =>
        {
            (ca, stored_key, None)
        }
        old => {
            let fresh = generate_ca(now - BACKDATE, now + policy.ca_validity)?;
            let ca = parse_bundle(&fresh.cert_pem).0.into_iter().next();
            let ca = ca.ok_or(CertError::Rcgen(rcgen::Error::CouldNotParseCertificate))?;
            (ca, fresh.key_pem, old)
        }
    };
    let current_not_after = current.not_after;
    let mut bundle = vec![current];
    for ca in demoted.into_iter().chain(stored) {
        if ca.not_after > now && !bundle.iter().any(|kept| kept.der == ca.der) {
            bundle.push(ca);
        }
    }
    let bundle_changed = !bundle_clean || !bundle.iter().map(|ca| &ca.der).eq(&stored_ders);

    let serving = match existing.filter(|m| serving_ok(m, &bundle, &names, now, policy)) {
        Some(m) => PemPair {
            cert_pem: m.cert_pem.clone(),
            key_pem: m.key_pem.clone(),
        },
        None => {
            let not_after = (now + policy.serving_validity).min(current_not_after);
            issue_serving(&ca_key_pem, hosts, now - BACKDATE, not_after)?
        }
    };
    let material = CertMaterial {
        cert_pem: serving.cert_pem,
        key_pem: serving.key_pem,
        ca_bundle_pem: match (bundle_changed, existing) {
            (false, Some(m)) => m.ca_bundle_pem.clone(),
            _ => bundle.iter().map(|ca| pem(&ca.der)).collect(),
        },
        ca_key_pem,
    };
    Ok(match existing {
        Some(m) if *m == material => Plan::Keep,
        _ => Plan::Write(material),
    })
}

/// The names the serving certificate must be valid for; a wildcard is checked with a sample
/// name under it. Fails on a host the check could not express, so that an unverifiable host
/// cannot make every run reissue.
fn server_names(hosts: &[String]) -> Result<Vec<ServerName<'static>>, CertError> {
    if hosts.is_empty() {
        return Err(CertError::NoHosts);
    }
    hosts
        .iter()
        .map(|h| {
            let probe = match h.strip_prefix("*.") {
                Some(rest) => format!("wildcard-probe.{rest}"),
                None => h.clone(),
            };
            ServerName::try_from(probe).map_err(|_| CertError::InvalidHost(h.clone()))
        })
        .collect()
}

/// The certificates of a PEM bundle with a readable expiry, and whether the text held nothing
/// else (no unreadable block, no other kind of PEM item).
fn parse_bundle(text: &str) -> (Vec<Ca>, bool) {
    let mut cas = Vec::new();
    let mut clean = !text.trim().is_empty();
    for item in rustls_pemfile::read_all(&mut text.as_bytes()) {
        let Ok(rustls_pemfile::Item::X509Certificate(der)) = item else {
            clean = false;
            if item.is_err() {
                break;
            }
            continue;
        };
        let not_after =
            not_after_unix(&der).and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        match not_after {
            Some(not_after) => cas.push(Ca { der, not_after }),
            None => clean = false,
        }
    }
    (cas, clean)
}

fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Whether `cert` (with its chain) verifies at `now` against `roots` for every name.
fn verifies<'a>(
    cert_pem: &str,
    roots: impl IntoIterator<Item = &'a Ca>,
    names: &[ServerName<'_>],
    now: OffsetDateTime,
) -> bool {
    let mut store = RootCertStore::empty();
    for ca in roots {
        if store.add(ca.der.clone()).is_err() {
            return false;
        }
    }
    let Ok(verifier) =
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), crypto_provider()).build()
    else {
        return false;
    };
    let chain: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .map_while(Result::ok)
        .collect();
    let (Some(leaf), Ok(secs)) = (chain.first(), u64::try_from(now.unix_timestamp())) else {
        return false;
    };
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    names.iter().all(|name| {
        verifier
            .verify_server_cert(leaf, &chain[1..], name, &[], at)
            .is_ok()
    })
}

/// Whether `ca_key_pem` signs certificates that chain to `ca`: a throwaway certificate is
/// issued and verified, which checks the key, the subject and the CA certificate at once.
fn can_sign(ca_key_pem: &str, ca: &Ca, now: OffsetDateTime) -> bool {
    const PROBE: &str = "ca-probe.nsoffload.invalid";
    let Ok(names) = server_names(&[PROBE.to_owned()]) else {
        return false;
    };
    issue_serving(
        ca_key_pem,
        &[PROBE.to_owned()],
        now - BACKDATE,
        now + BACKDATE,
    )
    .is_ok_and(|probe| verifies(&probe.cert_pem, [ca], &names, now))
}

/// Whether the stored serving pair can stay, given the bundle it will be published with.
fn serving_ok(
    m: &CertMaterial,
    bundle: &[Ca],
    names: &[ServerName<'_>],
    now: OffsetDateTime,
    policy: &RotationPolicy,
) -> bool {
    let left = m.serving_not_after().map(|t| t - now);
    certified_key(m.cert_pem.as_bytes(), m.key_pem.as_bytes()).is_ok()
        && left.is_some_and(|left| left >= policy.serving_renew_before)
        && verifies(&m.cert_pem, bundle, names, now)
}

#[cfg(test)]
#[path = "rotation_tests.rs"]
mod tests;
