//! Shared by the tests that run the `nsoffload` binary: running a command hermetically (no
//! kubeconfig, not in a pod, no colours forced), and a `serve --standalone` whose stderr is
//! captured line by line.
// Each binary test uses a different part of the kit.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nsoffload");

/// `nsoffload` with an environment that cannot reach any cluster by accident: no
/// `KUBECONFIG`, an empty home, not in a pod, no `NO_COLOR` and no `RUST_LOG` from the caller.
pub fn command(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("HOME", home)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

/// Runs `args` with [`command`] in an empty home.
pub fn run(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    command(home.path())
        .args(args)
        .output()
        .expect("the binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a development CA and serving pair for localhost into `dir`.
pub fn write_certs(dir: &Path) {
    let out = run(&[
        "certs",
        "--host",
        "localhost",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A `serve --standalone` on free local ports, its stderr collected line by line.
pub struct Server {
    pub child: Child,
    pub web: std::net::SocketAddr,
    pub admin: u16,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `serve --standalone state` with the pair in `certs` and `extra` flags and
    /// environment variables.
    pub fn start(state: &Path, certs: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let (web, admin) = (free_port(), free_port());
        let home = tempfile::tempdir().unwrap();
        let mut child = command(home.path())
            .args(["serve", "--cluster-id", "home", "--standalone"])
            .arg(state)
            .arg("--tls-cert-file")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key-file")
            .arg(certs.join("tls.key"))
            .args(["--bind-address", &format!("127.0.0.1:{web}")])
            .args(["--admin-address", &format!("127.0.0.1:{admin}")])
            .args(["--shutdown-delay", "0s"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            web: ([127, 0, 0, 1], web).into(),
            admin,
            lines,
            reader: Some(reader),
        }
    }

    /// The stderr lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (bounded) until a stderr line contains `needle`, and returns it.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            if Instant::now() > deadline || self.child.try_wait().unwrap().is_some() {
                panic!(
                    "no line with {needle:?} within {within:?}: {:#?}",
                    self.lines()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, waits (bounded) for the exit, and returns the exit code and every
    /// stderr line.
    pub fn stop(mut self) -> (Option<i32>, Vec<String>) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (code, self.lines())
    }
}
