//! Generating a CA and a serving certificate signed by it (rcgen, ECDSA P-256).
//!
//! The API server verifies the webhook's certificate against the `caBundle` it was given, so
//! the serving certificate must be issued by a CA whose certificate can be handed over, and
//! carry every DNS name or IP the API server may dial. `nsoffload certs` writes this pair for
//! development; the self-managed mode in cluster reuses the same function.

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
    ca.not_before = start;
    ca.not_after = now + Duration::days(ca_days);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, hosts[0].as_str());
    leaf.subject_alt_names = hosts.iter().map(|h| san(h)).collect::<Result<_, _>>()?;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = start;
    leaf.not_after = now + Duration::days(serving_days);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    Ok(GeneratedCerts {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        not_after: leaf.not_after,
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
