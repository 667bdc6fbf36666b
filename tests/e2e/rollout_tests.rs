//! Rolling restarts under steady pod creation fail no admission (SPEC §8).
//!
//! Two `nsoffload serve` replicas (webhooks only, certificates from files) sit behind
//! [`Balancer`], which routes new connections only to replicas whose `/readyz` is 200, as
//! Service endpoints do. A MutatingWebhookConfiguration of the test's own sends the pods of
//! one namespace to the balancer with `failurePolicy: Fail`. Two clients create pods there
//! without pause while each replica in turn gets SIGTERM, exits, and is started again, for
//! [`ROLLOUTS`] full rolling restarts. Every creation must succeed and every pod must carry
//! the mutation; a failed call shows up as a refused creation (`failed calling webhook`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context as _};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;
use nsoffload::api::PodOffloadingStrategy::LocalAndRemote;
use serde_json::json;

use crate::balancer::{readyz, Balancer};
use crate::fixtures::{nsoff, pod, set_phase, tv};
use crate::harness::{say, E2e, HOME_CLUSTER_ID, OWNED_ANNOTATION};
use crate::kit::{check, random_hex};
use crate::startup::free_port;

/// Full rolling restarts (each replica restarted once per rollout).
const ROLLOUTS: usize = 3;
/// Between two creations of one client.
const PAUSE: Duration = Duration::from_millis(20);
/// The label that sends a namespace's pods to the test's webhook.
const ROLLOUT_LABEL: &str = "e2e.nsoffload/rollout";

/// One replica, started and restarted by the test (killed when dropped).
struct Replica {
    args: Vec<String>,
    log: PathBuf,
    web: SocketAddr,
    admin: SocketAddr,
    child: Option<Child>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Replica {
    fn new(kubeconfig: &Path, certs: &Path, log: PathBuf) -> anyhow::Result<Replica> {
        let web: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1")?).parse()?;
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1")?).parse()?;
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let args = vec![
            "serve".to_owned(),
            "--cluster-id".to_owned(),
            HOME_CLUSTER_ID.to_owned(),
            "--kubeconfig".to_owned(),
            path(kubeconfig),
            "--reconcile=false".to_owned(),
            "--tls-cert-file".to_owned(),
            path(&certs.join("tls.crt")),
            "--tls-key-file".to_owned(),
            path(&certs.join("tls.key")),
            "--bind-address".to_owned(),
            web.to_string(),
            "--admin-address".to_owned(),
            admin.to_string(),
        ];
        Ok(Replica {
            args,
            log,
            web,
            admin,
            child: None,
        })
    }

    /// Starts the process and waits (bounded) until it is ready.
    async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_nsoffload"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting a replica")?;
        self.child = Some(child);
        let admin = self.admin;
        crate::kit::wait_until(
            "a replica to be ready",
            Duration::from_secs(30),
            || async move { Ok(readyz(admin).await.is_ok_and(|c| c == 200)) },
        )
        .await
    }

    /// SIGTERM, then waits (bounded) for exit status 0.
    async fn stop(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("the replica is not running")?;
        let pid = child.id().to_string();
        ensure!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success());
        let status = tokio::task::spawn_blocking(move || {
            for _ in 0..600 {
                if let Some(s) = child.try_wait()? {
                    return Ok(Some(s));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            Ok::<_, std::io::Error>(None)
        })
        .await??;
        let status = status.context("the replica did not exit within 30 s of SIGTERM")?;
        ensure!(status.success(), "the replica exited with {status}");
        Ok(())
    }
}

/// Creates pods in `ns`, one after the other, until `stop`; counts successes, keeps the failures' messages.
async fn create_pods(
    client: Client,
    ns: String,
    worker: usize,
    stop: Arc<AtomicBool>,
    created: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
) {
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let p = pod(&format!("w{worker}-{i}"), vec![], None, None);
        i += 1;
        match api.create(&PostParams::default(), &p).await {
            Ok(stored) => {
                created.fetch_add(1, Ordering::SeqCst);
                let tolerations = stored.spec.and_then(|s| s.tolerations).unwrap_or_default();
                if !tolerations.contains(&tv()) {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("pod w{worker}-{} not mutated", i - 1));
                }
            }
            Err(e) => {
                let mut e = e.to_string();
                e.truncate(300);
                failures
                    .lock()
                    .unwrap()
                    .push(format!("pod w{worker}-{}: {e}", i - 1));
            }
        }
        // Steady rather than flat out: thousands of pods, not tens of thousands to delete.
        tokio::time::sleep(PAUSE).await;
    }
}

/// The test's webhook: pods of namespaces labelled [`ROLLOUT_LABEL`] go to `url`.
fn webhook(name: &str, url: &str, ca_pem: &str) -> anyhow::Result<MutatingWebhookConfiguration> {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {OWNED_ANNOTATION: "true"}},
        "webhooks": [{
            "name": "pod.rollout.e2e.nsoffload.liqo.io",
            "clientConfig": {"url": format!("{url}/mutate/pod"), "caBundle": ca},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {ROLLOUT_LABEL: "true"}},
            "failurePolicy": "Fail", "sideEffects": "None", "timeoutSeconds": 5,
            "admissionReviewVersions": ["v1"], "reinvocationPolicy": "Never",
        }],
    }))?)
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn rolling_restarts_fail_no_admission() {
    let env = E2e::get().await;
    let kubeconfig = env.setup.kubeconfig.clone();
    let logs = env
        .setup
        .server_log
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    check(&env, "rollout", |s| async move {
        let certs = tempfile::tempdir()?;
        let made = Command::new(env!("CARGO_BIN_EXE_nsoffload"))
            .args([
                "certs",
                "--host",
                "127.0.0.1",
                "--host",
                "localhost",
                "--out",
            ])
            .arg(certs.path())
            .stdout(Stdio::null())
            .status()?;
        ensure!(made.success(), "nsoffload certs failed");
        let mut replicas = Vec::new();
        for i in 0..2 {
            let log = logs.join(format!("rollout-replica-{i}.log"));
            let _ = std::fs::remove_file(&log);
            let mut r = Replica::new(&kubeconfig, certs.path(), log)?;
            r.start().await?;
            replicas.push(r);
        }
        let lb = Balancer::start(replicas.iter().map(|r| (r.web, r.admin)).collect()).await?;
        let ns = s.pod_namespace(&[(ROLLOUT_LABEL, "true")]).await?;
        Api::namespaced(s.client.clone(), &ns)
            .create(&PostParams::default(), &nsoff(LocalAndRemote, None))
            .await
            .context("creating the NamespaceOffloading")?;
        set_phase(&s.client, &ns, "Ready").await?;

        let name = format!("nsoffload-e2e-rollout-{}", random_hex());
        let ca = std::fs::read_to_string(certs.path().join("ca.crt"))?;
        let configs: Api<MutatingWebhookConfiguration> = Api::all(s.client.clone());
        configs
            .create(
                &PostParams::default(),
                &webhook(&name, &format!("https://{}", lb.addr), &ca)?,
            )
            .await
            .context("creating the test's webhook configuration")?;
        let outcome = roll(&s.client, &ns, &mut replicas, &lb).await;
        let _ = configs.delete(&name, &DeleteParams::default()).await;
        outcome
    })
    .await;
}

/// Waits until the webhook is called, then rolls the replicas [`ROLLOUTS`] times under load.
async fn roll(
    client: &Client,
    ns: &str,
    replicas: &mut [Replica],
    lb: &Balancer,
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let probe = pod("probe", vec![], None, None);
    crate::kit::wait_until(
        "the API server to call the test's webhook",
        Duration::from_secs(30),
        || {
            let (api, dry, probe) = (api.clone(), dry.clone(), probe.clone());
            async move {
                let p = api.create(&dry, &probe).await?;
                Ok(p.spec
                    .and_then(|s| s.tolerations)
                    .unwrap_or_default()
                    .contains(&tv()))
            }
        },
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            tokio::spawn(create_pods(
                client.clone(),
                ns.to_owned(),
                w,
                stop.clone(),
                created.clone(),
                failures.clone(),
            ))
        })
        .collect();
    let mut rolled = Ok(());
    'rollouts: for round in 1..=ROLLOUTS {
        for (i, r) in replicas.iter_mut().enumerate() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Err(e) = r.stop().await {
                rolled = Err(e.context(format!("rollout {round}: stopping replica {i}")));
                break 'rollouts;
            }
            if let Err(e) = r.start().await {
                rolled = Err(e.context(format!("rollout {round}: starting replica {i}")));
                break 'rollouts;
            }
        }
        say(&format!(
            "e2e: rollout {round}/{ROLLOUTS} done; {} pods created so far; balancer sees {:?}",
            created.load(Ordering::SeqCst),
            lb.ready()
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await?;
    }
    rolled?;
    let failures = failures.lock().unwrap().clone();
    let created = created.load(Ordering::SeqCst);
    ensure!(
        failures.is_empty(),
        "{} of {} pod creations failed or were not mutated during {ROLLOUTS} rolling restarts; \
         first ones: {:#?}",
        failures.len(),
        created + failures.len(),
        &failures[..failures.len().min(5)]
    );
    ensure!(
        created > 100,
        "only {created} pods were created: the load was too light"
    );
    say(&format!(
        "e2e: {ROLLOUTS} rolling restarts, {created} pods created, 0 failed, all mutated"
    ));
    Ok(())
}
