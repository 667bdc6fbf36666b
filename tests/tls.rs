//! The real TLS server on 127.0.0.1: ALPN h2 and http/1.1, certificate rotation picked up
//! from the files (including a Secret volume's symlink swap), broken pairs ignored, and
//! in-flight requests finished on shutdown.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::*;
use common::router::{fixture, STATE};
use hyper::StatusCode;
use nsoffload::registration::certs::generate;
use nsoffload::server::tls::ReloadingCert;
use nsoffload::state::parse_standalone;
use serde_json::Value;

async fn started() -> TestServer {
    start_webhooks(parse_standalone(STATE).unwrap()).await
}

#[tokio::test]
async fn http1_and_h2_give_the_same_answer() {
    let server = started().await;
    let body = Bytes::from(fixture("pod-create-kubectl-apply.json"));
    let mut h1 = connect_h1(server.addr, &server.certs.ca_cert_pem).await;
    let (s1, a1) = send_h1(&mut h1, post("/mutate/pod?timeout=10s", body.clone())).await;
    // Keep-alive: a second request on the same connection.
    let (s1b, a1b) = send_h1(&mut h1, post("/mutate/pod?timeout=10s", body.clone())).await;
    let mut h2 = connect_h2(server.addr, &server.certs.ca_cert_pem).await;
    let (s2, a2) = send_h2(&mut h2, post("/mutate/pod", body)).await;
    assert_eq!(
        (s1, s1b, s2),
        (StatusCode::OK, StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(a1, a2);
    assert_eq!(a1, a1b);
    let v: Value = serde_json::from_slice(&a1).unwrap();
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"]["patch"].is_string());
}

#[tokio::test]
async fn tls12_only_clients_are_served() {
    let server = started().await;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut server.certs.ca_cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg =
        rustls::ClientConfig::builder_with_provider(nsoffload::server::tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let (stream, _, _) = tls_connect(server.addr, Arc::new(cfg)).await;
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
}

async fn served_leaf(server: &TestServer, ca: &str) -> Vec<u8> {
    tls_connect(server.addr, client_config(ca, &[b"http/1.1"]))
        .await
        .2
}

fn leaf_der(pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Polls (bounded) until new connections are served `want`.
async fn wait_for_leaf(server: &TestServer, ca: &str, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_leaf(server, ca).await != want {
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rotated_files_are_served_without_restart_and_broken_pairs_are_ignored() {
    let server = started().await;
    let ca = server.certs.ca_cert_pem.clone();
    assert_eq!(
        served_leaf(&server, &ca).await,
        leaf_der(&server.certs.cert_pem)
    );
    tokio::spawn(
        server
            .cert
            .clone()
            .watch(Duration::from_millis(50), server.shutdown.clone()),
    );

    let next = generate(&["localhost".into()], 10, 5).unwrap();
    write_pair(server.dir.path(), &next);
    // Trust both CAs while waiting: until the reload, the old certificate is still served.
    let both = format!("{ca}{}", next.ca_cert_pem);
    wait_for_leaf(&server, &both, &leaf_der(&next.cert_pem)).await;

    // A key that does not belong to the certificate: the previous pair stays in service.
    let third = generate(&["localhost".into()], 10, 5).unwrap();
    std::fs::write(server.dir.path().join("tls.crt"), &third.cert_pem).unwrap();
    assert!(server.cert.reload().is_err());
    assert_eq!(
        served_leaf(&server, &next.ca_cert_pem).await,
        leaf_der(&next.cert_pem)
    );
}

/// Lays out `dir` the way the kubelet mounts a Secret: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<version>`; a new version is swapped in by renaming a new `..data` link.
#[cfg(unix)]
fn mount_secret_version(
    dir: &Path,
    version: &str,
    certs: &nsoffload::registration::certs::GeneratedCerts,
) {
    use std::os::unix::fs::symlink;
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir(&versioned).unwrap();
    write_pair(&versioned, certs);
    let tmp = dir.join("..data_tmp");
    symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        let link = dir.join(f);
        if link.symlink_metadata().is_err() {
            symlink(format!("..data/{f}"), &link).unwrap();
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn secret_volume_symlink_swap_is_picked_up() {
    let server = started().await;
    let mount = tempfile::tempdir().unwrap();
    let first = generate(&["localhost".into()], 10, 5).unwrap();
    mount_secret_version(mount.path(), "v1", &first);
    let cert = Arc::new(
        ReloadingCert::from_files(&mount.path().join("tls.crt"), &mount.path().join("tls.key"))
            .unwrap(),
    );
    // Serve from the mounted files instead of the server's own.
    let tls = Arc::new(nsoffload::server::tls::server_config(cert.clone()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mounted = TestServer {
        addr: listener.local_addr().unwrap(),
        ..server
    };
    tokio::spawn(nsoffload::server::serve_tls(
        listener,
        tls,
        axum::Router::new(),
        mounted.shutdown.clone(),
        Duration::from_secs(1),
    ));
    tokio::spawn(cert.watch(Duration::from_millis(50), mounted.shutdown.clone()));
    assert_eq!(
        served_leaf(&mounted, &first.ca_cert_pem).await,
        leaf_der(&first.cert_pem)
    );

    let second = generate(&["localhost".into()], 10, 5).unwrap();
    mount_secret_version(mount.path(), "v2", &second);
    wait_for_leaf(
        &mounted,
        &format!("{}{}", first.ca_cert_pem, second.ca_cert_pem),
        &leaf_der(&second.cert_pem),
    )
    .await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    // The handler reports when it has started, so shutdown surely begins mid-request.
    let started = Arc::new(tokio::sync::Notify::new());
    let notify = started.clone();
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::post(move || {
            let notify = notify.clone();
            async move {
                notify.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }
        }),
    );
    let server = start(slow).await;
    let mut h1 = connect_h1(server.addr, &server.certs.ca_cert_pem).await;
    let in_flight =
        tokio::spawn(async move { send_h1(&mut h1, post("/slow", Bytes::new())).await });
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the request reached the handler");
    server.shutdown.cancel();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"done"[..]));
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("server stops after draining")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "no longer accepting"
    );
}
