//! Faults of the clusters around the server (SPEC §7.9, §7.10, §8), on the local control
//! planes, whose API servers the tests stop and start (`tests/cluster/localkube.sh`).
//!
//! - The home API server stops: admission keeps answering from the caches, `/readyz` stays
//!   200 (every replica going unready at once would fail every pod), and once it is back the
//!   watches resume (a NamespaceOffloading created afterwards is reconciled and admitted).
//! - A remote API server stops: only that cluster fails, with a message; the others stay
//!   ready; when it returns the reconciler recovers without a restart.
//! - A cluster gone for good (its virtual nodes deleted, no credentials) leaves the status and
//!   the reachability metric.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use nsoffload::api::PodOffloadingStrategy::{LocalAndRemote, Remote as RemoteOnly};
use nsoffload::api::{NamespaceOffloading, OffloadingPhase};
use serde_json::{json, Value};

use crate::balancer::readyz;
use crate::fixtures::{nsoff, req, term};
use crate::harness::{say, SUITE_LABEL, WEBHOOK_CONFIGURATION};
use crate::kit::{wait_until, Scope};
use crate::reconcile_expect::{all, create, default_twin, wait_gate_open, wait_status, Want};
use crate::remote::{check_remote, ReconcileEnv, Remote, NAME_LABEL};

/// The cluster script (`make e2e-local` sets it); these tests need it.
const LOCALKUBE_ENV: &str = "NSOFFLOAD_E2E_LOCALKUBE";
/// How long each outage lasts.
const OUTAGE: Duration = Duration::from_secs(10);

/// `localkube.sh stop|start NAME`.
async fn localkube(verb: &'static str, cluster: &str) -> anyhow::Result<()> {
    let script = std::env::var(LOCALKUBE_ENV).map_err(|_| {
        anyhow!("{LOCALKUBE_ENV} must name tests/cluster/localkube.sh (make e2e-local sets it)")
    })?;
    let cluster = cluster.to_owned();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args([&script, verb, &cluster])
            .status()
    })
    .await??;
    ensure!(status.success(), "localkube.sh {verb} failed: {status}");
    Ok(())
}

async fn env() -> ReconcileEnv {
    ReconcileEnv::get_as("faults-").await
}

/// An offloaded namespace (no selector): Ready on every cluster, gate open.
async fn ready_namespace(s: &Scope, remotes: &[Remote]) -> anyhow::Result<String> {
    let ns = s.pod_namespace(&[]).await?;
    create(&s.client, &ns, &nsoff(LocalAndRemote, None)).await?;
    let want = all(remotes, Want::Twin);
    wait_status(
        &s.client,
        &ns,
        OffloadingPhase::Ready,
        &default_twin(&ns),
        &want,
    )
    .await?;
    wait_gate_open(&s.client, &ns).await?;
    Ok(ns)
}

/// POSTs an AdmissionReview of a pod in `ns` straight to the server (not through the API
/// server); the `response` object.
async fn admit_directly(url: &str, ca_pem: &[u8], ns: &str) -> anyhow::Result<Value> {
    use hyper_util::rt::TokioIo;
    let mut review: Value = serde_json::from_slice(&std::fs::read(format!(
        "{}/tests/fixtures/pod-create-kubectl-apply.json",
        env!("CARGO_MANIFEST_DIR")
    ))?)?;
    review["request"]["namespace"] = json!(ns);
    review["request"]["object"]["metadata"]["namespace"] = json!(ns);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(c?)?;
    }
    let config =
        rustls::ClientConfig::builder_with_provider(nsoffload::server::tls::crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let addr: SocketAddr = url.trim_start_matches("https://").parse()?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let request = http::Request::post("/mutate/pod?timeout=5s")
        .header("content-type", "application/json")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::from(serde_json::to_vec(&review)?)))?;
    let response = sender.send_request(request).await?;
    ensure!(response.status() == 200, "HTTP {}", response.status());
    let body = response.into_body().collect().await?.to_bytes();
    let answer: Value = serde_json::from_slice(&body)?;
    Ok(answer["response"].clone())
}

/// The CA the API server trusts for the server (from the registered configuration).
async fn ca_bundle(client: &Client) -> anyhow::Result<Vec<u8>> {
    let config = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(WEBHOOK_CONFIGURATION)
        .await?;
    let first = config.webhooks.unwrap_or_default().into_iter().next();
    let ca = first.and_then(|w| w.client_config.ca_bundle);
    Ok(ca.context("the webhook configuration has no caBundle")?.0)
}

#[tokio::test]
#[ignore = "needs local control planes: make e2e-local"]
async fn home_api_server_outage_keeps_admission_answering() {
    let env = env().await;
    let (url, admin) = (env.e2e.setup.url.clone(), env.e2e.setup.admin);
    check_remote(&env, "outage-home", |s, remotes| async move {
        let ns = ready_namespace(&s, &remotes).await?;
        let ca = ca_bundle(&s.client).await?;
        let before = admit_directly(&url, &ca, &ns).await?;
        ensure!(
            before["allowed"] == true && before["patch"].is_string(),
            "{before}"
        );

        localkube("stop", "home").await?;
        let outage = async {
            let end = tokio::time::Instant::now() + OUTAGE;
            while tokio::time::Instant::now() < end {
                let code = readyz(admin).await?;
                ensure!(
                    code == 200,
                    "/readyz answered {code} while the API server was down"
                );
                let answer = admit_directly(&url, &ca, &ns).await?;
                ensure!(
                    answer["allowed"] == true && answer["patch"] == before["patch"],
                    "while the API server was down the answer changed: {answer}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok::<_, anyhow::Error>(())
        }
        .await;
        localkube("start", "home").await?;
        outage?;
        say("e2e: 10 s without the home API server: /readyz 200, admission answered from caches");

        // The watches resumed: a NamespaceOffloading made now is reconciled and admitted.
        ready_namespace(&s, &remotes).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs local control planes: make e2e-local"]
async fn remote_api_server_outage_fails_only_that_cluster_and_recovers() {
    let env = env().await;
    check_remote(&env, "outage-remote", |s, remotes| async move {
        ensure!(remotes.len() >= 2, "needs two remote clusters");
        let ns = ready_namespace(&s, &remotes).await?;
        let down = remotes[1].id.clone();
        localkube("stop", &down).await?;
        let outage = async {
            // A new generation, so the reconciler must visit every cluster now.
            let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
            let change = json!({"spec": {"podOffloadingStrategy": RemoteOnly}});
            api.patch(
                "offloading",
                &PatchParams::default(),
                &Patch::Merge(&change),
            )
            .await?;
            let mut want = all(&remotes, Want::Twin);
            want.insert(down.clone(), Want::Unreachable);
            let twin = default_twin(&ns);
            wait_status(&s.client, &ns, OffloadingPhase::SomeFailed, &twin, &want).await
        }
        .await;
        localkube("start", &down).await?;
        outage?;
        let want = all(&remotes, Want::Twin);
        wait_status(
            &s.client,
            &ns,
            OffloadingPhase::Ready,
            &default_twin(&ns),
            &want,
        )
        .await
        .context("after the remote API server came back")?;
        Ok(())
    })
    .await;
}

/// `nsoffload_remote_cluster_reachable{cluster="<id>"}` on the admin port, if present.
async fn reachable_series(admin: SocketAddr, cluster: &str) -> anyhow::Result<Option<String>> {
    let mut s = tokio::net::TcpStream::connect(admin).await?;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    let prefix = format!("nsoffload_remote_cluster_reachable{{cluster=\"{cluster}\"}}");
    Ok(text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(str::to_owned))
}

#[tokio::test]
#[ignore = "needs local control planes: make e2e-local"]
async fn a_cluster_gone_for_good_leaves_status_and_metrics() {
    let env = env().await;
    let admin = env.e2e.setup.admin;
    check_remote(&env, "gone", |s, remotes| async move {
        let nodes: Api<Node> = Api::all(s.client.clone());
        let (id, node) = ("e2e-gone", "e2e-virtual-e2e-gone");
        let vnode: Node = serde_json::from_value(json!({"metadata": {"name": node, "labels": {
            "liqo.io/type": "virtual-node", "liqo.io/remote-cluster-id": id,
            NAME_LABEL: id, SUITE_LABEL: "true"}}}))?;
        nodes.create(&PostParams::default(), &vnode).await?;
        let ns = s.namespace(&[]).await?.metadata.name.unwrap_or_default();
        let only_gone = vec![term(&[&[req(NAME_LABEL, "In", &[id])]])];
        create(&s.client, &ns, &nsoff(LocalAndRemote, Some(only_gone))).await?;
        let twin = default_twin(&ns);
        let mut want = all(&remotes, Want::NotSelected);
        want.insert(id.to_owned(), Want::Unreachable);
        let failing = wait_status(&s.client, &ns, OffloadingPhase::AllFailed, &twin, &want).await;
        let series = reachable_series(admin, id).await;
        nodes.delete(node, &DeleteParams::default()).await?;
        failing?;
        ensure!(
            series?.is_some_and(|l| l.ends_with(" 0")),
            "no reachability series 0 for the cluster without credentials"
        );
        let want = all(&remotes, Want::NotSelected);
        wait_status(
            &s.client,
            &ns,
            OffloadingPhase::NoClusterSelected,
            &twin,
            &want,
        )
        .await?;
        wait_until(
            "the cluster's metric series to go",
            Duration::from_secs(30),
            || async { Ok(reachable_series(admin, id).await?.is_none()) },
        )
        .await
    })
    .await;
}
