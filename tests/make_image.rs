//! `make image` with stand-in container engines (small scripts first on the PATH), so the
//! choice between docker and podman and the message when neither can build are checked on
//! any machine, with or without a real engine.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const IMAGE: &str = concat!("nsoffload:", env!("CARGO_PKG_VERSION"));

/// The first `name` on this process's PATH.
fn which(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on the PATH; this test runs `make image`"))
}

/// A stand-in engine in `dir`: `info` exits with `info_status`, anything else prints its
/// arguments.
fn engine(dir: &Path, name: &str, info_status: i32) {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1\" = info ]; then exit {info_status}; fi\necho \"{name} ran: $*\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `make -s image` with `bin` as the whole PATH (plus the tools the Makefile itself needs).
fn make_image(bin: &Path, vars: &[&str]) -> Output {
    for tool in ["sed", "head"] {
        let link = bin.join(tool);
        if !link.exists() {
            std::os::unix::fs::symlink(which(tool), link).unwrap();
        }
    }
    Command::new(which("make"))
        .args([
            "-s",
            "--no-print-directory",
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "image",
        ])
        .args(vars)
        .env("PATH", bin)
        .env_remove("ENGINE")
        .env_remove("IMAGE")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn without_a_usable_engine_it_says_so_and_fails() {
    let bin = tempfile::tempdir().unwrap();
    let out = make_image(bin.path(), &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for line in [
        "make image: docker is not installed",
        "make image: podman is not installed",
        &format!(
            "make image: neither docker nor podman can build here; start or install one (or \
             pass ENGINE=...), or build elsewhere with: docker build -t {IMAGE} ."
        ),
    ] {
        assert!(err.contains(line), "{line:?} not in:\n{err}");
    }

    engine(bin.path(), "docker", 1);
    engine(bin.path(), "podman", 125);
    let out = make_image(bin.path(), &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for engine in ["docker", "podman"] {
        let line = format!(
            "make image: {engine} is installed, but `{engine} info` fails (is its daemon or \
             service running?)"
        );
        assert!(err.contains(&line), "{line:?} not in:\n{err}");
    }
    assert_eq!(text(&out.stdout), "", "nothing was built");
}

#[test]
fn the_first_engine_that_answers_builds() {
    let bin = tempfile::tempdir().unwrap();
    engine(bin.path(), "docker", 1);
    engine(bin.path(), "podman", 0);
    let out = make_image(bin.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("podman build -t {IMAGE} .\npodman ran: build -t {IMAGE} .\n")
    );

    engine(bin.path(), "docker", 0);
    let out = make_image(bin.path(), &["IMAGE=registry.example.com/nsoffload:dev"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("docker ran: build -t registry.example.com/nsoffload:dev .\n")
    );

    let out = make_image(bin.path(), &["ENGINE=podman"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("podman build"));
}
