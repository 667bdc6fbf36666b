//! A real TLS server on 127.0.0.1 and HTTP/1.1 and h2 clients for it; shared by the TLS tests
//! and the load benchmark (which includes this file by path).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use nsoffload::admission::Admission;
use nsoffload::metrics::Metrics;
use nsoffload::policy::validate::ValidationConfig;
use nsoffload::registration::certs::{generate, GeneratedCerts};
use nsoffload::server::router::{router, App};
use nsoffload::server::serve_tls;
use nsoffload::server::tls::{server_config, ReloadingCert};
use nsoffload::state::{LiveLookup, Snapshot, Store};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

/// A running webhook server with its certificate files in a temporary directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub certs: GeneratedCerts,
    pub cert: Arc<ReloadingCert>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

pub fn write_pair(dir: &Path, c: &GeneratedCerts) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, &c.cert_pem).unwrap();
    std::fs::write(&key, &c.key_pem).unwrap();
    (cert, key)
}

/// The admission app over `snapshot`, with the RuntimeClass `liqo` and cluster id `home`.
pub fn app(snapshot: Snapshot) -> Arc<App> {
    app_with_live(snapshot, None)
}

/// [`app`] with a live reader for cache misses.
pub fn app_with_live(snapshot: Snapshot, live: Option<Arc<dyn LiveLookup>>) -> Arc<App> {
    let admission = Admission {
        store: Arc::new(Store::new(snapshot)),
        runtime_class: "liqo".into(),
        live,
        validation: ValidationConfig {
            home_cluster_id: "home".into(),
        },
    };
    Arc::new(App {
        admission,
        metrics: Arc::new(Metrics::new()),
    })
}

/// Starts `routes` over TLS on 127.0.0.1 (must be called inside a Tokio runtime).
pub async fn start(routes: Router) -> TestServer {
    nsoffload::server::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let certs = generate(&["localhost".into(), "127.0.0.1".into()], 10, 5).unwrap();
    let (cert_path, key_path) = write_pair(dir.path(), &certs);
    let cert = Arc::new(ReloadingCert::from_files(&cert_path, &key_path).unwrap());
    let tls = Arc::new(server_config(cert.clone()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_tls(
        listener,
        tls,
        routes,
        shutdown.clone(),
        Duration::from_secs(5),
    ));
    TestServer {
        addr,
        dir,
        certs,
        cert,
        shutdown,
        task,
    }
}

/// Starts the webhook router over `snapshot`.
pub async fn start_webhooks(snapshot: Snapshot) -> TestServer {
    start(router(app(snapshot))).await
}

/// A client configuration trusting `ca_pem` and offering `alpn`.
pub fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(nsoffload::server::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// A TLS stream to `addr`; returns it with the negotiated ALPN protocol and the server's leaf
/// certificate (DER).
pub async fn tls_connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> (
    tokio_rustls::client::TlsStream<TcpStream>,
    Option<Vec<u8>>,
    Vec<u8>,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let stream = TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (_, conn) = stream.get_ref();
    let alpn = conn.alpn_protocol().map(|p| p.to_vec());
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    (stream, alpn, leaf)
}

/// An HTTP/1.1 keep-alive connection (ALPN `http/1.1` only, as the API server offers).
pub async fn connect_h1(addr: SocketAddr, ca_pem: &str) -> http1::SendRequest<Full<Bytes>> {
    let (stream, alpn, _) = tls_connect(addr, client_config(ca_pem, &[b"http/1.1"])).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

/// An h2 connection (ALPN `h2`).
pub async fn connect_h2(addr: SocketAddr, ca_pem: &str) -> http2::SendRequest<Full<Bytes>> {
    let (stream, alpn, _) = tls_connect(addr, client_config(ca_pem, &[b"h2"])).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// A POST of a JSON body, as the API server sends it.
pub fn post(path: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", "application/json")
        .header("host", "localhost")
        .body(Full::new(body))
        .unwrap()
}

/// Sends `req` on an HTTP/1.1 connection and collects the answer.
pub async fn send_h1(
    s: &mut http1::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (StatusCode, Bytes) {
    s.ready().await.unwrap();
    let resp = s.send_request(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

/// Sends `req` on an h2 connection and collects the answer.
pub async fn send_h2(
    s: &mut http2::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (StatusCode, Bytes) {
    s.ready().await.unwrap();
    let resp = s.send_request(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}
