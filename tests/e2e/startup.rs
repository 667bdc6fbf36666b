//! Starting the server and proving that the API server really calls it.
//!
//! "Registered" is not "effective": the API server's webhook informers, TLS (the caBundle
//! against the served certificate) and the network path from the API server to this machine
//! must all work, and an API server with several replicas learns of the configurations at
//! different times. So start-up ends only when a dry-run NamespaceOffloading named
//! `wrong-name` is denied by our validating webhook and a dry-run Namespace labelled
//! `liqo.io/enabled=true` comes back labelled by our mutating one, three times in a row. Dry
//! runs call webhooks (they declare `sideEffects: None`) but store nothing.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use nsoffload::api::NamespaceOffloading;
use serde_json::json;

use crate::harness::{
    HOST_ENV, NSOFF_WEBHOOK, OWNED_ANNOTATION, SUITE_LABEL, WEBHOOK_CONFIGURATION,
};
use crate::kit::{expect_denied, log_tail, random_hex, retry, wait_until, Attempt};
use crate::supervisor::{self, Plan};

/// The supervisor; its stdin pipe closes when this process exits, whatever the cause.
static SUPERVISOR: Mutex<Option<Child>> = Mutex::new(None);

pub fn free_port(ip: &str) -> anyhow::Result<u16> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("binding {ip}:0"))?;
    Ok(listener.local_addr()?.port())
}

/// Starts the supervisor in its own process group, so a Ctrl-C aimed at `cargo test` does not
/// kill it before it has cleaned up.
pub fn spawn_supervisor(plan: &Plan, log: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = Command::new(std::env::current_exe()?)
        .args([
            supervisor::ENTRY,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(supervisor::PLAN_ENV, serde_json::to_string(plan)?)
        .stdin(Stdio::piped())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .context("starting the supervisor")?;
    *SUPERVISOR.lock().unwrap() = Some(child);
    Ok(())
}

/// Plain `GET path` on the admin port; the status code.
fn http_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    use std::io::Read as _;
    let timeout = Duration::from_secs(2);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let head = String::from_utf8_lossy(&head);
    head.get(9..12)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP response: {head:?}"))
}

/// Waits for `/readyz` = 200, failing at once when the supervisor or the server exits.
pub async fn wait_ready(admin: SocketAddr, plan: &Plan) -> anyhow::Result<()> {
    let ready = retry(
        "the server's /readyz",
        Duration::from_secs(60),
        || async move {
            if let Some(Ok(Some(status))) = SUPERVISOR.lock().unwrap().as_mut().map(Child::try_wait)
            {
                return Attempt::Fail(anyhow!("the supervisor exited ({status})"));
            }
            if let Ok(why) = std::fs::read_to_string(&plan.exit_marker) {
                return Attempt::Fail(anyhow!("the server exited: {why}"));
            }
            let status = tokio::task::spawn_blocking(move || http_status(admin, "/readyz")).await;
            match status {
                Ok(Ok(200)) => Attempt::Done(()),
                Ok(Ok(code)) => Attempt::Retry(anyhow!("/readyz answered {code}")),
                Ok(Err(e)) => Attempt::Retry(e),
                Err(e) => Attempt::Retry(e.into()),
            }
        },
    )
    .await;
    ready.map_err(|e| {
        let log = log_tail(&plan.server_log, 100);
        anyhow!("{e:#}\n--- last 100 lines of the server log:\n{log}")
    })
}

/// Annotates the registered configurations as the suite's, so the supervisor deletes them.
pub async fn mark_webhooks_owned(client: &Client) -> anyhow::Result<()> {
    let patch = Patch::Merge(json!({"metadata": {"annotations": {OWNED_ANNOTATION: "true"}}}));
    let pp = PatchParams::default();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(WEBHOOK_CONFIGURATION, &pp, &patch)
        .await
        .context("the server is ready but its MutatingWebhookConfiguration is missing")?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(WEBHOOK_CONFIGURATION, &pp, &patch)
        .await
        .context("the server is ready but its ValidatingWebhookConfiguration is missing")?;
    Ok(())
}

/// One round of both probes (dry runs: nothing is stored).
async fn probe(client: &Client) -> anyhow::Result<()> {
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let nsoff: NamespaceOffloading = serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": "wrong-name"}, "spec": {}}))?;
    let created = Api::namespaced(client.clone(), "default")
        .create(&dry, &nsoff)
        .await;
    let message = expect_denied(created, NSOFF_WEBHOOK).context("dry-run wrong-name")?;
    if !message.contains("metadata.name") {
        bail!("the validating webhook denied wrong-name without naming metadata.name: {message}");
    }
    let name = format!("e2e-probe-{}", random_hex());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name,
        "labels": {"liqo.io/enabled": "true", SUITE_LABEL: "true"}}}))?;
    let ns = Api::<Namespace>::all(client.clone())
        .create(&dry, &ns)
        .await
        .context("dry-run Namespace")?;
    if ns
        .labels()
        .get("liqo.io/scheduling-enabled")
        .map(String::as_str)
        != Some("true")
    {
        bail!("the namespace webhook has not labelled a dry-run namespace yet");
    }
    Ok(())
}

pub async fn wait_effective(client: &Client, url: &str) -> anyhow::Result<()> {
    let streak = &AtomicU32::new(0);
    let what = "the API server to call the webhooks (3 probes in a row)";
    let effective = wait_until(what, Duration::from_secs(90), || async move {
        match probe(client).await {
            Ok(()) => Ok(streak.fetch_add(1, Ordering::SeqCst) + 1 >= 3),
            Err(e) => {
                streak.store(0, Ordering::SeqCst);
                Err(e)
            }
        }
    })
    .await;
    effective.with_context(|| {
        format!(
            "the API server must reach {url}: set {HOST_ENV} to an address of this machine \
             that the API server can reach"
        )
    })
}
