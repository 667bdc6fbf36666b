//! The binary as an operator runs it: `serve --standalone` becomes ready, answers, and exits 0
//! on SIGTERM; bad input fails fast with a clear message; `certs` and `manifests` work.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nsoffload");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn write_certs(dir: &std::path::Path) {
    let status = Command::new(BIN)
        .args(["certs", "--out"])
        .arg(dir)
        .args(["--host", "localhost"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    for f in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
}

/// Starts `serve` with dev certificates on free local ports plus `args`; returns the child
/// and its admin port.
fn spawn_serve(certs: &std::path::Path, args: &[&str]) -> (std::process::Child, u16) {
    let (web, admin) = (free_port(), free_port());
    let child = Command::new(BIN)
        .args(["serve", "--cluster-id", "home"])
        .args(args)
        .arg("--tls-cert-file")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(certs.join("tls.key"))
        .args([
            "--bind-address",
            &format!("127.0.0.1:{web}"),
            "--admin-address",
            &format!("127.0.0.1:{admin}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, admin)
}

/// Polls `path` on the admin port until its status line starts with `want` (bounded).
fn wait_for_status(
    child: &mut std::process::Child,
    admin: u16,
    path: &str,
    want: &str,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    while !http_get(admin, path).is_some_and(|r| r.starts_with(want)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{path} did not answer {want:?} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM and returns the exit code (bounded).
fn terminate(mut child: std::process::Child) -> Option<i32> {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("server did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[test]
fn serve_becomes_ready_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let state = format!(
        "{}/manifests/examples/standalone.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let (mut child, admin) = spawn_serve(dir.path(), &["--standalone", &state]);
    wait_for_status(
        &mut child,
        admin,
        "/readyz",
        "HTTP/1.1 200",
        Duration::from_secs(20),
    );
    let metrics = http_get(admin, "/metrics").unwrap();
    let expiry = metrics
        .lines()
        .find_map(|l| l.strip_prefix("nsoffload_serving_certificate_expiry_timestamp_seconds "))
        .expect("expiry metric");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expiry: i64 = expiry.trim().parse().unwrap();
    assert!(
        expiry > now + 300 * 86_400,
        "certs default to 365 days, metric says {expiry}"
    );
    assert_eq!(terminate(child), Some(0));
}

#[cfg(unix)]
#[test]
fn cluster_mode_stays_unready_until_caches_sync() {
    // An API server address where nothing listens: the watches can never sync.
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let kubeconfig = dir.path().join("kubeconfig");
    let port = free_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let (mut child, admin) =
        spawn_serve(dir.path(), &["--kubeconfig", kubeconfig.to_str().unwrap()]);
    wait_for_status(
        &mut child,
        admin,
        "/livez",
        "HTTP/1.1 200",
        Duration::from_secs(20),
    );
    for _ in 0..5 {
        assert!(
            http_get(admin, "/readyz")
                .unwrap()
                .starts_with("HTTP/1.1 503"),
            "ready without synced caches"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(terminate(child), Some(0));
}

#[test]
fn serve_fails_fast_on_a_bad_state_file_or_cluster_id() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let bad = dir.path().join("state.yaml");
    std::fs::write(&bad, "kind: Pod\nmetadata: {name: x}\n").unwrap();
    let run = |state: &std::path::Path, cluster: &str| {
        Command::new(BIN)
            .args(["serve", "--standalone"])
            .arg(state)
            .args([
                "--cluster-id",
                cluster,
                "--bind-address",
                "127.0.0.1:0",
                "--admin-address",
                "127.0.0.1:0",
            ])
            .arg("--tls-cert-file")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.path().join("tls.key"))
            .output()
            .unwrap()
    };
    let out = run(&bad, "home");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("document 1") && err.contains("Pod"), "{err}");
    let out = run(&bad, "Not_A_Label");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster id"));
}

#[test]
fn manifests_prints_the_checked_in_crd() {
    let out = Command::new(BIN).arg("manifests").output().unwrap();
    assert!(out.status.success());
    let checked_in =
        std::fs::read_to_string(format!("{}/manifests/crd.yaml", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&checked_in));
}
