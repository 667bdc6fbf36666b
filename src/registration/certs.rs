//! Generating a CA and a serving certificate signed by it (rcgen, ECDSA P-256).
//!
//! The API server verifies the webhook's certificate against the `caBundle` it was given, so
//! the serving certificate must be issued by a CA whose certificate can be handed over, and
//! carry every DNS name or IP the API server may dial. `nsoffload certs` writes this pair for
//! development; the self-managed mode in cluster (`secret`) uses the two halves separately, to
//! renew the serving certificate with the CA it already has and to rotate the CA on its own.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// Why certificates could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No host name was given.
    #[error("at least one host name or IP address is needed for the serving certificate")]
    NoHosts,
    /// A host is neither an IP address nor a usable DNS name.
    #[error("invalid host {0:?}")]
    InvalidHost(String),
    /// rcgen failed.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// A CA and a serving certificate, PEM encoded.
#[derive(Debug, Clone)]
pub struct GeneratedCerts {
    /// CA certificate (the webhook configurations' `caBundle`).
    pub ca_cert_pem: String,
    /// CA private key.
    pub ca_key_pem: String,
    /// Serving certificate.
    pub cert_pem: String,
    /// Serving private key.
    pub key_pem: String,
    /// When the serving certificate expires.
    pub not_after: OffsetDateTime,
}

fn san(host: &str) -> Result<SanType, CertError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let label_ok = |(i, l): (usize, &str)| {
        (i == 0 && l == "*")
            || (!l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if host.len() > 253 || !host.split('.').enumerate().all(label_ok) {
        return Err(CertError::InvalidHost(host.to_owned()));
    }
    let name = host
        .try_into()
        .map_err(|_| CertError::InvalidHost(host.to_owned()))?;
    Ok(SanType::DnsName(name))
}

/// A certificate and its private key, PEM encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPair {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// The parameters every nsoffload CA is made with. The subject is fixed so that an issuer can
/// be rebuilt from the CA's key alone (see [`issue_serving`]); validity does not matter there.
fn ca_params(not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "nsoffload webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    ca
}

/// Generates a self-signed CA valid from `not_before` to `not_after`.
pub fn generate_ca(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<PemPair, CertError> {
    let key = KeyPair::generate()?;
    let cert = ca_params(not_before, not_after).self_signed(&key)?;
    Ok(PemPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a serving certificate for `hosts`, valid from `not_before` to `not_after`, signed by
/// the CA whose private key is `ca_key_pem`. The CA must have been made by [`generate_ca`]:
/// its subject is rebuilt rather than read from its certificate. The certificate names its
/// issuer's key (authority key identifier), so a client holding several CAs of that same
/// subject finds the right one first.
pub fn issue_serving(
    ca_key_pem: &str,
    hosts: &[String],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<PemPair, CertError> {
    let Some(first) = hosts.first() else {
        return Err(CertError::NoHosts);
    };
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::new(ca_params(not_before, not_after), ca_key);

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, first.as_str());
    leaf.subject_alt_names = hosts.iter().map(|h| san(h)).collect::<Result<_, _>>()?;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(PemPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Generates a CA valid for `ca_days` and a serving certificate for `hosts` valid for
/// `serving_days` (both starting an hour ago, to tolerate clock skew).
pub fn generate(
    hosts: &[String],
    ca_days: i64,
    serving_days: i64,
) -> Result<GeneratedCerts, CertError> {
    if hosts.is_empty() {
        return Err(CertError::NoHosts);
    }
    let now = OffsetDateTime::now_utc();
    let start = now - Duration::hours(1);
    let ca = generate_ca(start, now + Duration::days(ca_days))?;
    let not_after = now + Duration::days(serving_days);
    let serving = issue_serving(&ca.key_pem, hosts, start, not_after)?;
    Ok(GeneratedCerts {
        ca_cert_pem: ca.cert_pem,
        ca_key_pem: ca.key_pem,
        cert_pem: serving.cert_pem,
        key_pem: serving.key_pem,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tls::certified_key;

    #[test]
    fn serving_pair_is_usable_by_rustls() {
        let c = generate(&["localhost".into(), "127.0.0.1".into()], 30, 10).unwrap();
        certified_key(c.cert_pem.as_bytes(), c.key_pem.as_bytes()).unwrap();
        // A key from another pair is refused.
        assert!(certified_key(c.cert_pem.as_bytes(), c.ca_key_pem.as_bytes()).is_err());
    }

    #[test]
    fn rejects_bad_hosts() {
        assert!(matches!(generate(&[], 1, 1), Err(CertError::NoHosts)));
        assert!(matches!(
            generate(&["bad host".into()], 1, 1),
            Err(CertError::InvalidHost(_))
        ));
    }
}
