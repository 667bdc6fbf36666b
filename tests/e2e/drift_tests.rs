//! Pods that no longer follow the policy (SPEC §12), end to end with the real scheduler and
//! the real ReplicaSet controller: a Deployment's pods run on the selected cluster's virtual
//! node under `Remote`; the strategy becomes `Local`; the reconciler reports them in
//! `PodsCompliant` (with a Warning event and the violating-pods metric); `nsoffload evict
//! namespace --yes` evicts them; their ReplicaSet recreates them, and the scheduler puts the
//! replacements on local workers; the condition returns to `True`.
//!
//! The pods have `terminationGracePeriodSeconds: 0`, so an eviction deletes them at once
//! (there is no kubelet to confirm a graceful termination).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use nsoffload::api::NamespaceOffloading;
use nsoffload::api::PodOffloadingStrategy::Remote;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli_tests::nsoffload;
use crate::fixtures::pod;
use crate::kit::wait_until;
use crate::placement_tests::{local_workers, offloaded, virtual_node};
use crate::remote::{check_remote, ReconcileEnv};

const REPLICAS: usize = 3;

/// A Deployment of `REPLICAS` pods for the default scheduler, with no placement of its own.
fn deployment() -> Deployment {
    let labels: std::collections::BTreeMap<String, String> =
        [("app".to_owned(), "drift".to_owned())]
            .into_iter()
            .collect();
    let mut template = pod("drift", vec![], None, None);
    if let Some(spec) = template.spec.as_mut() {
        spec.scheduler_name = None;
    }
    Deployment {
        metadata: ObjectMeta {
            name: Some("drift".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(REPLICAS as i32),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: template.spec,
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The live pods of the Deployment and their nodes, once `REPLICAS` are all bound.
async fn bound_pods(client: &Client, ns: &str) -> anyhow::Result<Vec<(String, String)>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let live = |pods: &[Pod]| -> Vec<(String, Option<String>)> {
        pods.iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| {
                let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
                (p.name_any(), node)
            })
            .collect()
    };
    let what = format!("{REPLICAS} bound pods of the Deployment in {ns}");
    wait_until(&what, Duration::from_secs(90), || {
        let api = api.clone();
        async move {
            let pods = api.list(&ListParams::default().labels("app=drift")).await?;
            let live = live(&pods.items);
            Ok(live.len() == REPLICAS && live.iter().all(|(_, n)| n.is_some()))
        }
    })
    .await?;
    let pods = api.list(&ListParams::default().labels("app=drift")).await?;
    Ok(live(&pods.items)
        .into_iter()
        .map(|(p, n)| (p, n.unwrap_or_default()))
        .collect())
}

/// Waits until `PodsCompliant` has `status` for the current generation, with a message
/// starting with `prefix`.
async fn wait_compliant(
    client: &Client,
    ns: &str,
    status: &str,
    prefix: &str,
) -> anyhow::Result<()> {
    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
    let what = format!("PodsCompliant={status} ({prefix}…) on the NamespaceOffloading of {ns}");
    wait_until(&what, Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let o = api.get("offloading").await?;
            let found = o.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == "PodsCompliant")
                    .cloned()
            });
            Ok(found.is_some_and(|c| {
                c.status == status
                    && c.observed_generation == o.metadata.generation
                    && c.message.starts_with(prefix)
            }))
        }
    })
    .await
}

/// The value of `nsoffload_violating_pods{namespace="ns"}` on the admin port, if present.
async fn violating_metric(admin: SocketAddr, ns: &str) -> anyhow::Result<Option<String>> {
    let mut stream = tokio::net::TcpStream::connect(admin).await?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    let series = format!("nsoffload_violating_pods{{namespace=\"{ns}\"}} ");
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()).map(str::to_owned)))
}

#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn drift_reported_then_evicted_onto_local_nodes() {
    let env = ReconcileEnv::get().await;
    let kubeconfig = env.e2e.setup.kubeconfig.clone();
    let admin = env.e2e.setup.admin;
    check_remote(&env, "drift", |s, remotes| async move {
        let workers = local_workers(&s.client).await?;
        let first = remotes.first().context("no remote cluster")?;
        let ns = offloaded(&s, &remotes, Remote, Some(first)).await?;
        let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), &ns);
        deployments
            .create(&PostParams::default(), &deployment())
            .await
            .context("creating the Deployment")?;
        let vk = virtual_node(first);
        for (pod, node) in bound_pods(&s.client, &ns).await? {
            ensure!(
                node == vk,
                "under Remote, pod {pod} was bound to {node}, not {vk}"
            );
        }

        // Stricter policy: the running pods stay where they are, and are reported.
        let nsoffs: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
        let local = serde_json::json!({"spec": {"podOffloadingStrategy": "Local"}});
        nsoffs
            .patch("offloading", &PatchParams::default(), &Patch::Merge(&local))
            .await
            .context("changing the strategy to Local")?;
        let reported = format!("{REPLICAS} pod(s) do not follow the pod offloading policy");
        wait_compliant(&s.client, &ns, "False", &reported).await?;
        let events: Api<Event> = Api::namespaced(s.client.clone(), &ns);
        wait_until(
            "a PodsViolatePolicy Warning event",
            Duration::from_secs(30),
            || {
                let events = events.clone();
                async move {
                    let list = events.list(&ListParams::default()).await?;
                    Ok(list.items.iter().any(|e| {
                        e.reason.as_deref() == Some("PodsViolatePolicy")
                            && e.type_.as_deref() == Some("Warning")
                    }))
                }
            },
        )
        .await?;
        let metric = violating_metric(admin, &ns).await?;
        ensure!(
            metric.as_deref() == Some(REPLICAS.to_string().as_str()),
            "nsoffload_violating_pods for {ns}: {metric:?}"
        );

        // A dry run changes nothing and fails (pods are left); then the eviction.
        let dry = nsoffload(
            &kubeconfig,
            &["evict", "namespace", &ns, "--dry-run"],
            Duration::from_secs(60),
        )
        .await?;
        ensure!(dry.code == Some(1), "{dry}");
        ensure!(dry.stdout.contains("would be evicted"), "{dry}");
        let before: BTreeSet<String> = bound_pods(&s.client, &ns)
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let run = nsoffload(
            &kubeconfig,
            &["evict", "namespace", &ns, "--yes", "--timeout", "2m"],
            Duration::from_secs(150),
        )
        .await?;
        ensure!(run.code == Some(0), "{run}");
        ensure!(
            run.stdout.matches("evicted pod").count() == REPLICAS,
            "{run}"
        );
        ensure!(
            run.stdout.contains("every pod follows the policy now"),
            "{run}"
        );

        // The ReplicaSet recreates them; unmutated under Local, they land on local workers.
        let after = bound_pods(&s.client, &ns).await?;
        for (pod, node) in &after {
            ensure!(!before.contains(pod), "pod {pod} was not replaced");
            ensure!(
                workers.contains(node),
                "replacement {pod} was bound to {node}, not a local worker"
            );
        }
        wait_compliant(&s.client, &ns, "True", "every pod follows").await?;
        let metric = violating_metric(admin, &ns).await?;
        ensure!(
            metric.as_deref() == Some("0"),
            "nsoffload_violating_pods for {ns}: {metric:?}"
        );
        Ok(())
    })
    .await;
}
