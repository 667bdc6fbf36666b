//! Placement by the real kube-scheduler: where pods of an offloaded namespace actually land.
//!
//! The mutation tests compare the stored pod with the SPEC; these let the home cluster's
//! kube-scheduler bind pods and check the node it chose, which is what a user sees. They need
//! a scheduler in the home cluster and at least one Ready, untainted local worker (`make
//! e2e-local` starts one and creates `worker-1`, `worker-2`); the virtual nodes are the
//! suite's `e2e-virtual-<id>` (made Ready in `remote.rs`). No pod ever runs: there is no
//! kubelet, and the pods are deleted at once when the test ends.
//!
//! Several pods are created per case so that a wrong placement is not hidden by one lucky
//! choice of the scheduler.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use k8s_openapi::api::core::v1::{Node, NodeSelectorTerm, Pod};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt as _};
use nsoffload::api::OffloadingPhase;
use nsoffload::api::PodOffloadingStrategy::{self, Local, LocalAndRemote, Remote};

use crate::fixtures::{
    create_admitted, ensure_runtime_class, nsoff, pod, runtime_class_unknown, unprocessed,
};
use crate::kit::{wait_until, Scope};
use crate::reconcile_expect::{all, create, default_twin, wait_gate_open, wait_status, Want};
use crate::remote::{check_remote, ReconcileEnv, Remote as Cluster, NAME_LABEL};

/// Pods per case.
const PODS: usize = 4;

fn only(remote: &Cluster) -> Vec<NodeSelectorTerm> {
    vec![crate::fixtures::term(&[&[crate::fixtures::req(
        NAME_LABEL,
        "In",
        &[remote.id.as_str()],
    )]])]
}

pub(crate) fn virtual_node(remote: &Cluster) -> String {
    format!("e2e-virtual-{}", remote.id)
}

/// The home cluster's local workers the scheduler may use: Ready, schedulable, untainted.
pub(crate) async fn local_workers(client: &Client) -> anyhow::Result<BTreeSet<String>> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing nodes")?;
    let workers: BTreeSet<String> = nodes
        .items
        .iter()
        .filter(|n| !n.labels().contains_key("liqo.io/type"))
        .filter(|n| {
            let spec = n.spec.as_ref();
            spec.and_then(|s| s.unschedulable) != Some(true)
                && spec
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(Vec::is_empty)
                && n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|n| n.name_any())
        .collect();
    ensure!(
        !workers.is_empty(),
        "the home cluster has no Ready, untainted local worker for the scheduler (make \
         e2e-local creates worker-1 and worker-2)"
    );
    Ok(workers)
}

/// An offloaded namespace with `strategy` and `cs`, its status Ready as the reconciler wrote
/// it, and (unless `Local`) the pod gate open.
pub(crate) async fn offloaded(
    s: &Scope,
    remotes: &[Cluster],
    strategy: PodOffloadingStrategy,
    selected: Option<&Cluster>,
) -> anyhow::Result<String> {
    let ns = s.pod_namespace(&[]).await?;
    let cs = selected.map(only);
    create(&s.client, &ns, &nsoff(strategy, cs)).await?;
    let want = match selected {
        None => all(remotes, Want::Twin),
        Some(first) => {
            let mut want = all(remotes, Want::NotSelected);
            want.insert(first.id.clone(), Want::Twin);
            want
        }
    };
    let twin = default_twin(&ns);
    wait_status(&s.client, &ns, OffloadingPhase::Ready, &twin, &want).await?;
    if strategy != Local {
        wait_gate_open(&s.client, &ns).await?;
    }
    Ok(ns)
}

/// `PODS` pods made by `make`, created in `ns` for the default scheduler; the node each was
/// bound to.
async fn place(
    client: &Client,
    ns: &str,
    make: impl Fn(&str) -> Pod,
) -> anyhow::Result<Vec<(String, String)>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let transient = |m: &str| unprocessed(m) || runtime_class_unknown(m);
    for i in 0..PODS {
        let mut p = make(&format!("placed-{i}"));
        if let Some(spec) = p.spec.as_mut() {
            spec.scheduler_name = None;
        }
        create_admitted(client, ns, &p, &transient).await?;
    }
    let what = format!("the scheduler to bind the {PODS} pods of {ns}");
    wait_until(&what, Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let pods = api.list(&ListParams::default()).await?;
            Ok(pods.items.len() == PODS
                && pods
                    .items
                    .iter()
                    .all(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some())))
        }
    })
    .await
    .with_context(|| pending_reason(ns))?;
    let pods = api.list(&ListParams::default()).await?;
    Ok(pods
        .items
        .iter()
        .map(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            (p.name_any(), node.unwrap_or_default())
        })
        .collect())
}

fn pending_reason(ns: &str) -> String {
    format!("pods of {ns} were not all bound (see `kubectl get events -n {ns}`)")
}

/// Every placement is on one of `allowed`.
fn expect_on(
    case: &str,
    placed: &[(String, String)],
    allowed: &BTreeSet<String>,
) -> anyhow::Result<()> {
    for (pod, node) in placed {
        ensure!(
            allowed.contains(node),
            "{case}: pod {pod} was bound to {node}, expected one of {allowed:?}"
        );
    }
    Ok(())
}

/// `Remote`: every pod lands on the virtual node of the selected cluster, none on a local
/// worker or on the other cluster's virtual node.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn placement_remote_on_selected_virtual_node() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "place-remote", |s, remotes| async move {
        local_workers(&s.client).await?;
        let first = remotes.first().context("no remote cluster")?;
        let ns = offloaded(&s, &remotes, Remote, Some(first)).await?;
        let placed = place(&s.client, &ns, |name| pod(name, vec![], None, None)).await?;
        expect_on("Remote", &placed, &BTreeSet::from([virtual_node(first)]))
    })
    .await;
}

/// `LocalAndRemote`: a pod pinned to a local worker lands there; unpinned pods land on local
/// workers or the selected cluster's virtual node, never on an unselected one.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn placement_local_and_remote() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "place-lar", |s, remotes| async move {
        let workers = local_workers(&s.client).await?;
        let worker = workers.first().cloned().context("no worker")?;
        let first = remotes.first().context("no remote cluster")?;
        let ns = offloaded(&s, &remotes, LocalAndRemote, Some(first)).await?;
        let pinned = place(&s.client, &ns, |name| {
            let mut p = pod(name, vec![], None, None);
            if let Some(spec) = p.spec.as_mut() {
                spec.node_selector = Some(
                    [("kubernetes.io/hostname".to_owned(), worker.clone())]
                        .into_iter()
                        .collect(),
                );
            }
            p
        })
        .await?;
        expect_on("pinned", &pinned, &BTreeSet::from([worker.clone()]))?;
        let free = s.pod_namespace(&[]).await?;
        create(&s.client, &free, &nsoff(LocalAndRemote, Some(only(first)))).await?;
        let want = {
            let mut w = all(&remotes, Want::NotSelected);
            w.insert(first.id.clone(), Want::Twin);
            w
        };
        wait_status(
            &s.client,
            &free,
            OffloadingPhase::Ready,
            &default_twin(&free),
            &want,
        )
        .await?;
        wait_gate_open(&s.client, &free).await?;
        let placed = place(&s.client, &free, |name| pod(name, vec![], None, None)).await?;
        let mut allowed = workers;
        allowed.insert(virtual_node(first));
        expect_on("LocalAndRemote", &placed, &allowed)
    })
    .await;
}

/// RuntimeClass `liqo`: pods land only on virtual nodes of the selected clusters, whatever
/// the strategy allows for other pods.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn placement_runtime_class_on_selected_virtual_nodes() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "place-rc", |s, remotes| async move {
        local_workers(&s.client).await?;
        ensure_runtime_class(&s).await?;
        let first = remotes.first().context("no remote cluster")?;
        let ns = offloaded(&s, &remotes, LocalAndRemote, Some(first)).await?;
        let placed = place(&s.client, &ns, |name| pod(name, vec![], None, Some("liqo"))).await?;
        expect_on(
            "RuntimeClass",
            &placed,
            &BTreeSet::from([virtual_node(first)]),
        )
    })
    .await;
}

/// `Local`: pods never land on a virtual node.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn placement_local_never_on_virtual_node() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "place-local", |s, remotes| async move {
        let workers = local_workers(&s.client).await?;
        let ns = offloaded(&s, &remotes, Local, None).await?;
        let placed = place(&s.client, &ns, |name| pod(name, vec![], None, None)).await?;
        expect_on("Local", &placed, &workers)
    })
    .await;
}
