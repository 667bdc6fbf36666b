//! The serve loop's shutdown as the API server sees it (SPEC §8): on SIGTERM `/readyz`
//! answers 503 at once, while for `--shutdown-delay` the webhook port keeps accepting and
//! answering, every HTTP/1.1 answer with `Connection: close` (so the client's next request
//! goes to a new connection, to another replica) and HTTP/2 connections get GOAWAY; then the
//! process exits 0. A second signal skips the rest of the delay.
//!
//! Why through the binary: the order of these steps lives in `serve`'s main loop, signals
//! included; only the real process shows it.

#![cfg(unix)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{connect_h1, connect_h2, post};
use common::router::fixture;
use http_body_util::BodyExt as _;
use hyper::client::conn::{http1, http2};
use hyper::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_nsoffload");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `serve --standalone` with development certificates.
struct Server {
    child: Child,
    web: std::net::SocketAddr,
    admin: u16,
    ca: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(delay: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let certs = Command::new(BIN)
        .args(["certs", "--host", "localhost", "--out"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(certs.success());
    let (web, admin) = (free_port(), free_port());
    let state = format!(
        "{}/manifests/examples/standalone.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let file = |name: &str| dir.path().join(name);
    let child = Command::new(BIN)
        .args(["serve", "--cluster-id", "home", "--standalone", &state])
        .args(["--shutdown-delay", delay, "--drain-timeout", "5s"])
        .arg("--tls-cert-file")
        .arg(file("tls.crt"))
        .arg("--tls-key-file")
        .arg(file("tls.key"))
        .args(["--bind-address", &format!("127.0.0.1:{web}")])
        .args(["--admin-address", &format!("127.0.0.1:{admin}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ca = std::fs::read_to_string(file("ca.crt")).unwrap();
    let server = Server {
        child,
        web: format!("127.0.0.1:{web}").parse().unwrap(),
        admin,
        ca,
        _dir: dir,
    };
    wait_until("/readyz 200", Duration::from_secs(20), || {
        readyz(admin) == Some(200)
    });
    server
}

fn readyz(admin: u16) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", admin)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.get(9..12)?.parse().ok()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits (bounded) for the process to exit; its exit code.
fn exit_code(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "no exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn review() -> Bytes {
    Bytes::from(fixture("pod-create-kubectl-apply.json"))
}

/// One webhook call on an HTTP/1.1 connection: status and `Connection` header.
async fn call_h1(s: &mut http1::SendRequest<http_body_util::Full<Bytes>>) -> (StatusCode, String) {
    s.ready().await.expect("connection usable");
    let resp = s.send_request(post("/mutate/pod", review())).await.unwrap();
    let status = resp.status();
    let connection = resp
        .headers()
        .get(hyper::header::CONNECTION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"{"), "an AdmissionReview answer");
    (status, connection)
}

async fn call_h2(s: &mut http2::SendRequest<http_body_util::Full<Bytes>>) -> StatusCode {
    s.ready().await.expect("connection usable");
    let resp = s.send_request(post("/mutate/pod", review())).await.unwrap();
    resp.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_unready_at_once_keeps_answering_with_connection_close_then_exits() {
    let mut server = start("3s");
    let mut old_h1 = connect_h1(server.web, &server.ca).await;
    let mut h2 = connect_h2(server.web, &server.ca).await;
    assert_eq!(call_h1(&mut old_h1).await, (StatusCode::OK, String::new()));
    assert_eq!(call_h2(&mut h2).await, StatusCode::OK);

    signal(&server.child);
    let admin = server.admin;
    tokio::task::spawn_blocking(move || {
        wait_until("/readyz 503", Duration::from_secs(2), || {
            readyz(admin) == Some(503)
        })
    })
    .await
    .unwrap();

    // A keep-alive connection opened before the signal: answered, then closed by the server.
    assert_eq!(
        call_h1(&mut old_h1).await,
        (StatusCode::OK, "close".to_owned())
    );
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while !old_h1.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(
        closed.await.is_ok(),
        "the HTTP/1.1 connection was not closed"
    );
    // HTTP/2: GOAWAY, so the client stops using the connection.
    let gone = tokio::time::timeout(Duration::from_secs(2), async {
        while !h2.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(gone.await.is_ok(), "the h2 connection got no GOAWAY");
    // New connections are still accepted and answered during the delay.
    let mut new_h1 = connect_h1(server.web, &server.ca).await;
    assert_eq!(
        call_h1(&mut new_h1).await,
        (StatusCode::OK, "close".to_owned())
    );
    assert_eq!(
        readyz(server.admin),
        Some(503),
        "the admin port still answers"
    );

    let code = tokio::task::spawn_blocking(move || {
        let code = exit_code(&mut server.child, Duration::from_secs(15));
        (code, server)
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0));
}

#[test]
fn a_second_signal_skips_the_rest_of_the_delay() {
    let mut server = start("60s");
    signal(&server.child);
    wait_until("/readyz 503", Duration::from_secs(2), || {
        readyz(server.admin) == Some(503)
    });
    // Still serving: the delay is running.
    assert!(std::net::TcpStream::connect(server.web).is_ok());
    signal(&server.child);
    assert_eq!(
        exit_code(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
}
