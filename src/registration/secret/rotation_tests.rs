//! The rotation plan as a table of situations and a 25-year simulation. Certificates are
//! checked with rustls' own verifier, independently of the code under test.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use time::{Duration, OffsetDateTime};

use super::{plan, CertMaterial, Plan, RotationPolicy};
use crate::registration::certs::{generate, CertError};

fn hosts() -> Vec<String> {
    vec!["nsoffload.nsoffload.svc".into(), "10.0.0.7".into()]
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .map(|c| c.unwrap())
        .collect()
}

/// Whether `cert_pem` verifies at `at` for every host against the CAs of `bundle_pem`.
fn verifies(cert_pem: &str, bundle_pem: &str, hosts: &[String], at: OffsetDateTime) -> bool {
    let mut roots = RootCertStore::empty();
    for ca in certs(bundle_pem) {
        roots.add(ca).unwrap();
    }
    let provider = crate::server::tls::crypto_provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let leaf = &certs(cert_pem)[0];
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.unix_timestamp() as u64));
    hosts.iter().all(|h| {
        let name = ServerName::try_from(h.clone()).unwrap();
        verifier
            .verify_server_cert(leaf, &[], &name, &[], at)
            .is_ok()
    })
}

/// The current CA of a bundle (its first certificate), as PEM.
fn current_ca(m: &CertMaterial) -> String {
    let end = "-----END CERTIFICATE-----\n";
    let i = m.ca_bundle_pem.find(end).unwrap() + end.len();
    m.ca_bundle_pem[..i].to_owned()
}

fn written(p: Result<Plan, CertError>) -> CertMaterial {
    match p.unwrap() {
        Plan::Write(m) => m,
        Plan::Keep => panic!("expected a write, got Keep"),
    }
}

fn fresh(at: OffsetDateTime) -> CertMaterial {
    written(plan(None, &hosts(), at, &RotationPolicy::default()))
}

fn at_plus(t0: OffsetDateTime, n: i64) -> OffsetDateTime {
    t0 + days(n)
}

fn plan_at(m: &CertMaterial, t: OffsetDateTime) -> Plan {
    plan(Some(m), &hosts(), t, &RotationPolicy::default()).unwrap()
}

#[test]
fn nothing_stored_gives_a_fresh_ca_and_serving_pair() {
    let t0 = OffsetDateTime::now_utc();
    let m = fresh(t0);
    assert_eq!(certs(&m.ca_bundle_pem).len(), 1);
    assert!(verifies(&m.cert_pem, &m.ca_bundle_pem, &hosts(), t0));
    crate::server::tls::certified_key(m.cert_pem.as_bytes(), m.key_pem.as_bytes()).unwrap();
    let left = m.serving_not_after().unwrap() - t0;
    assert!((left - days(365)).abs() < Duration::seconds(2), "{left}");
    // Planning again on its own output changes nothing.
    assert_eq!(plan_at(&m, t0), Plan::Keep);
}

#[test]
fn valid_material_is_kept_until_the_renewal_margin() {
    let t0 = OffsetDateTime::now_utc();
    let m = fresh(t0);
    for d in [1, 100, 334] {
        assert_eq!(plan_at(&m, at_plus(t0, d)), Plan::Keep, "day {d}");
    }
}

#[test]
fn serving_certificate_near_expiry_is_reissued_by_the_same_ca() {
    let t0 = OffsetDateTime::now_utc();
    let m = fresh(t0);
    let t = at_plus(t0, 340);
    let Plan::Write(n) = plan_at(&m, t) else {
        panic!("expected a renewal")
    };
    assert_eq!(
        (&n.ca_bundle_pem, &n.ca_key_pem),
        (&m.ca_bundle_pem, &m.ca_key_pem)
    );
    assert_ne!(n.cert_pem, m.cert_pem);
    assert_ne!(n.key_pem, m.key_pem);
    assert!(verifies(&n.cert_pem, &m.ca_bundle_pem, &hosts(), t));
    assert_eq!(plan_at(&n, t), Plan::Keep);
}

#[test]
fn ca_rotation_keeps_the_old_ca_until_it_expires() {
    let t0 = OffsetDateTime::now_utc();
    let m0 = fresh(t0);
    let old_ca = certs(&m0.ca_bundle_pem)[0].clone();
    // The serving certificate expired; the CA (370 days left) just renews it.
    let m1 = written(Ok(plan_at(&m0, at_plus(t0, 3280))));
    assert_eq!(m1.ca_bundle_pem, m0.ca_bundle_pem);

    // Less than a year left on the CA: a new CA goes first, the old one stays, and the
    // serving certificate (still signed by the old CA) is kept.
    let t2 = at_plus(t0, 3290);
    let m2 = written(Ok(plan_at(&m1, t2)));
    let bundle = certs(&m2.ca_bundle_pem);
    assert_eq!(bundle.len(), 2);
    assert_ne!(bundle[0], old_ca);
    assert_eq!(bundle[1], old_ca);
    assert_ne!(m2.ca_key_pem, m1.ca_key_pem);
    assert_eq!((&m2.cert_pem, &m2.key_pem), (&m1.cert_pem, &m1.key_pem));
    assert_eq!(plan_at(&m2, t2), Plan::Keep);

    // The serving certificate's renewal is signed by the new CA, and was already trusted by
    // the bundle published at rotation time.
    let t3 = at_plus(t0, 3620);
    let m3 = written(Ok(plan_at(&m2, t3)));
    assert_eq!(m3.ca_bundle_pem, m2.ca_bundle_pem);
    assert!(verifies(&m3.cert_pem, &current_ca(&m3), &hosts(), t3));
    assert!(verifies(&m3.cert_pem, &m2.ca_bundle_pem, &hosts(), t3));

    // The old CA has expired: it leaves the bundle; nothing else changes.
    let t4 = at_plus(t0, 3651);
    let m4 = written(Ok(plan_at(&m3, t4)));
    assert_eq!(certs(&m4.ca_bundle_pem), vec![bundle[0].clone()]);
    assert_eq!(
        (&m4.cert_pem, &m4.ca_key_pem),
        (&m3.cert_pem, &m3.ca_key_pem)
    );
    assert_eq!(plan_at(&m4, t4), Plan::Keep);
}

#[test]
fn hosts_not_covered_get_a_new_serving_certificate() {
    let t0 = OffsetDateTime::now_utc();
    let m = fresh(t0);
    let policy = RotationPolicy::default();
    // A subset of the names is still covered.
    assert_eq!(
        plan(Some(&m), &hosts()[..1], t0, &policy).unwrap(),
        Plan::Keep
    );
    let more = vec![hosts()[0].clone(), "nsoffload.example.com".into()];
    let n = written(plan(Some(&m), &more, t0, &policy));
    assert_eq!(n.ca_bundle_pem, m.ca_bundle_pem);
    assert!(verifies(&n.cert_pem, &n.ca_bundle_pem, &more, t0));
}

#[test]
fn unreadable_material_is_replaced() {
    let t0 = OffsetDateTime::now_utc();
    let garbage = CertMaterial {
        cert_pem: "not a cert".into(),
        key_pem: String::new(),
        ca_bundle_pem: "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".into(),
        ca_key_pem: "junk".into(),
    };
    let n = written(plan(
        Some(&garbage),
        &hosts(),
        t0,
        &RotationPolicy::default(),
    ));
    assert_eq!(certs(&n.ca_bundle_pem).len(), 1);
    assert!(verifies(&n.cert_pem, &n.ca_bundle_pem, &hosts(), t0));
    assert_eq!(plan_at(&n, t0), Plan::Keep);
    // An empty Secret reads as empty material.
    let empty = CertMaterial::from_secret(&Secret::default());
    assert!(matches!(plan_at(&empty, t0), Plan::Write(_)));
}

#[test]
fn a_lost_ca_key_rotates_the_ca_without_breaking_the_served_pair() {
    let t0 = OffsetDateTime::now_utc();
    let m = fresh(t0);
    let other = generate(&hosts(), 10, 1).unwrap();
    let broken = CertMaterial {
        ca_key_pem: other.ca_key_pem,
        ..m.clone()
    };
    let n = written(Ok(plan_at(&broken, t0)));
    let bundle = certs(&n.ca_bundle_pem);
    assert_eq!(bundle.len(), 2);
    assert_eq!(bundle[1], certs(&m.ca_bundle_pem)[0]);
    assert_eq!(n.cert_pem, m.cert_pem);
    assert_eq!(plan_at(&n, t0), Plan::Keep);
}

#[test]
fn a_serving_key_that_does_not_match_is_replaced() {
    let t0 = OffsetDateTime::now_utc();
    let m = fresh(t0);
    let broken = CertMaterial {
        key_pem: m.ca_key_pem.clone(),
        ..m.clone()
    };
    let n = written(Ok(plan_at(&broken, t0)));
    assert_eq!(n.ca_bundle_pem, m.ca_bundle_pem);
    assert_ne!(n.cert_pem, m.cert_pem);
}

#[test]
fn extra_blocks_in_the_bundle_are_cleaned_up() {
    let t0 = OffsetDateTime::now_utc();
    let m = fresh(t0);
    let noisy = CertMaterial {
        ca_bundle_pem: format!("{}{}", m.ca_bundle_pem, m.ca_key_pem),
        ..m.clone()
    };
    assert_eq!(plan_at(&noisy, t0), Plan::Write(m.clone()));
    // A duplicated CA is dropped too.
    let doubled = CertMaterial {
        ca_bundle_pem: m.ca_bundle_pem.repeat(2),
        ..m.clone()
    };
    assert_eq!(plan_at(&doubled, t0), Plan::Write(m));
}

#[test]
fn a_serving_certificate_never_outlives_its_ca() {
    let policy = RotationPolicy::new(days(100), days(20), days(60), days(5)).unwrap();
    let t0 = OffsetDateTime::now_utc();
    let m = written(plan(None, &hosts(), t0, &policy));
    let t = at_plus(t0, 58);
    let n = written(plan(Some(&m), &hosts(), t, &policy));
    let ca_left = at_plus(t0, 100) - n.serving_not_after().unwrap();
    assert!(ca_left.abs() < Duration::seconds(2), "{ca_left}");
    assert_eq!(plan(Some(&n), &hosts(), t, &policy).unwrap(), Plan::Keep);
}

#[test]
fn bad_hosts_and_policies_are_refused() {
    let t0 = OffsetDateTime::now_utc();
    let p = RotationPolicy::default();
    assert!(matches!(plan(None, &[], t0, &p), Err(CertError::NoHosts)));
    assert!(matches!(
        plan(None, &["bad host".into()], t0, &p),
        Err(CertError::InvalidHost(_))
    ));
    for (ca, ca_margin, serving, serving_margin) in [
        (100, 100, 60, 5), // CA renewed as soon as made
        (100, 20, 60, 60), // serving renewed as soon as made
        (100, 5, 60, 10),  // serving margin longer than the CA's: clamped pairs renew at once
        (100, 20, 60, 0),
    ] {
        assert!(RotationPolicy::new(
            days(ca),
            days(ca_margin),
            days(serving),
            days(serving_margin)
        )
        .is_err());
    }
}

/// Daily for 25 years with the default policy: the served pair is always valid, a new serving
/// certificate is always trusted by the bundle published before it, the bundle never holds
/// more than two CAs, and the Secret is written only a few dozen times.
#[test]
fn twenty_five_years_of_rotation() {
    let t0 = OffsetDateTime::now_utc();
    let policy = RotationPolicy::default();
    let mut m = fresh(t0);
    let mut writes = 0;
    for step in 1..=(25 * 365 / 3) {
        let t = at_plus(t0, 3 * step);
        if let Plan::Write(n) = plan(Some(&m), &hosts(), t, &policy).unwrap() {
            writes += 1;
            if n.cert_pem != m.cert_pem {
                assert!(
                    verifies(&n.cert_pem, &m.ca_bundle_pem, &hosts(), t),
                    "day {}: new serving certificate not trusted by the published bundle",
                    3 * step
                );
            }
            m = n;
        }
        assert!(
            verifies(&m.cert_pem, &m.ca_bundle_pem, &hosts(), t),
            "day {}",
            3 * step
        );
        assert!(
            m.serving_not_after().unwrap() - t >= days(27),
            "day {}",
            3 * step
        );
        assert!(certs(&m.ca_bundle_pem).len() <= 2);
    }
    // About 27 renewals, 2 CA rotations, 2 old CAs dropped.
    assert!((28..=36).contains(&writes), "{writes} writes");
}
