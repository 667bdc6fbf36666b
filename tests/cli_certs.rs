//! Certificate lifetimes through the binary: `certs --days` must be at least 1; `serve`
//! refuses an expired serving certificate (the API server would reject every handshake) and
//! warns, besides the expiry metric, when it ends within a week.

#![cfg(unix)]

#[path = "bin/kit.rs"]
mod kit;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use kit::{run, text};
use nsoffload::registration::certs::{generate_ca, issue_serving};
use time::{Duration as Span, OffsetDateTime};

/// Writes a pair for localhost into `dir`, valid from two days ago until `days` from now
/// (negative: already ended); returns its end (Unix seconds).
fn write_pair(dir: &Path, days: i64) -> i64 {
    let now = OffsetDateTime::now_utc();
    let start = now - Span::days(2);
    let ca = generate_ca(start, now + Span::days(30)).unwrap();
    let end = now + Span::days(days);
    let leaf = issue_serving(&ca.key_pem, &["localhost".into()], start, end).unwrap();
    std::fs::write(dir.join("tls.crt"), leaf.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), leaf.key_pem).unwrap();
    end.unix_timestamp()
}

fn state(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("state.yaml");
    std::fs::write(&path, "kind: Namespace\nmetadata: {name: a}\n").unwrap();
    path
}

fn metrics(admin: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", admin)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn certs_needs_at_least_one_day() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("certs");
    let out = run(&["certs", "--days", "0", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: invalid value '0' for '--days <DAYS>': 0 is not in 1..=3650"),
        "{err}"
    );
    assert!(!out_dir.exists(), "nothing is written on a usage error");
    let out = run(&["certs", "--days", "1", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn serve_refuses_an_expired_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let end = write_pair(dir.path(), -1);
    let state = state(dir.path());
    let cert = dir.path().join("tls.crt");
    let out = run(&[
        "serve",
        "--cluster-id",
        "home",
        "--standalone",
        state.to_str().unwrap(),
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        dir.path().join("tls.key").to_str().unwrap(),
        "--bind-address",
        "127.0.0.1:0",
        "--admin-address",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().last().unwrap(),
        format!(
            "error: cannot load the serving certificate: the serving certificate {} expired on \
             {}; renew it (for development: nsoffload certs --out DIR)",
            cert.display(),
            nsoffload::server::tls::utc_text(end)
        )
    );
}

#[test]
fn serve_warns_when_the_certificate_ends_within_a_week() {
    let dir = tempfile::tempdir().unwrap();
    let end = write_pair(dir.path(), 3);
    let state = state(dir.path());
    let mut server = kit::Server::start(&state, dir.path(), &[], &[]);
    let warning = server.wait_for_line("expires in", Duration::from_secs(20));
    // Three days less the start-up time: 2 or 3 whole days, depending on the second.
    let days = ["2", "3"].map(|d| format!("the serving certificate expires in {d} day(s)"));
    assert!(
        warning.contains("WARN")
            && days.iter().any(|d| warning.contains(d.as_str()))
            && warning.contains(&nsoffload::server::tls::utc_text(end)),
        "{warning}"
    );
    server.wait_for_line("caches synced; ready", Duration::from_secs(20));
    let metrics = metrics(server.admin);
    assert!(
        metrics.contains(&format!(
            "nsoffload_serving_certificate_expiry_timestamp_seconds {end}"
        )),
        "{metrics}"
    );
    let (code, lines) = server.stop();
    assert_eq!(code, Some(0));
    let warnings = lines.iter().filter(|l| l.contains("expires in")).count();
    assert_eq!(warnings, 1, "warned once per certificate: {lines:#?}");
}
