//! `nsoffload explain` against the real kube-scheduler (SPEC §11): for random pods, the node
//! the scheduler binds each one to is among the nodes `explain` says may run it, and a pod the
//! scheduler leaves unschedulable has no such node.
//!
//! Three offloaded namespaces (LocalAndRemote selecting the first cluster, Remote without a
//! selector, Local) and [`PODS`] pods with random node selectors, required affinity terms,
//! tolerations and RuntimeClass. The generator is seeded (`NSOFFLOAD_E2E_SEED`, printed), so a
//! failure can be replayed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{ensure, Context as _};
use k8s_openapi::api::core::v1::{NodeSelectorTerm, Pod};
use kube::api::{Api, ListParams};
use kube::ResourceExt as _;
use nsoffload::api::OffloadingPhase;
use nsoffload::api::PodOffloadingStrategy::{self, Local, LocalAndRemote, Remote};
use serde_json::Value;

use crate::fixtures::{
    create_admitted, ensure_runtime_class, nsoff, pod, req, runtime_class_unknown, term, tv,
    unprocessed,
};
use crate::harness::say;
use crate::kit::Scope;
use crate::reconcile_expect::{all, create, default_twin, wait_gate_open, wait_status, Want};
use crate::remote::{check_remote, ReconcileEnv, Remote as Cluster, NAME_LABEL};

/// Random pods created (at least 200, as the issue asks).
const PODS: usize = 200;

/// xorshift64*: small, seeded, good enough to vary test inputs.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

async fn namespace(
    s: &Scope,
    remotes: &[Cluster],
    strategy: PodOffloadingStrategy,
    selected: Option<&Cluster>,
) -> anyhow::Result<String> {
    let ns = s.pod_namespace(&[]).await?;
    let cs = selected.map(|c| vec![term(&[&[req(NAME_LABEL, "In", &[c.id.as_str()])]])]);
    create(&s.client, &ns, &nsoff(strategy, cs)).await?;
    let mut want = all(
        remotes,
        if selected.is_some() {
            Want::NotSelected
        } else {
            Want::Twin
        },
    );
    if let Some(c) = selected {
        want.insert(c.id.clone(), Want::Twin);
    }
    wait_status(
        &s.client,
        &ns,
        OffloadingPhase::Ready,
        &default_twin(&ns),
        &want,
    )
    .await?;
    if strategy != Local {
        wait_gate_open(&s.client, &ns).await?;
    }
    Ok(ns)
}

/// One random pod for the default scheduler.
fn random_pod(rng: &mut Rng, name: &str, remotes: &[Cluster]) -> Pod {
    let virtual_of = |c: &Cluster| format!("e2e-virtual-{}", c.id);
    let tolerations = if rng.below(3) == 0 {
        vec![tv()]
    } else {
        vec![]
    };
    let hosts: Vec<String> = ["worker-1".to_owned(), "worker-2".to_owned()]
        .into_iter()
        .chain(remotes.iter().map(virtual_of))
        .collect();
    let host = hosts[rng.below(hosts.len())].clone();
    let required: Option<Vec<NodeSelectorTerm>> = match rng.below(5) {
        0 => Some(vec![term(&[&[req(
            NAME_LABEL,
            "In",
            &[remotes[0].id.as_str()],
        )]])]),
        1 => Some(vec![term(&[&[req(
            "kubernetes.io/hostname",
            "NotIn",
            &[host.as_str()],
        )]])]),
        2 => Some(vec![
            term(&[&[req("liqo.io/type", "DoesNotExist", &[])]]),
            term(&[&[req("kubernetes.io/hostname", "In", &[host.as_str()])]]),
        ]),
        _ => None,
    };
    let runtime_class = (rng.below(8) == 0).then_some("liqo");
    let mut p = pod(name, tolerations, required, runtime_class);
    let spec = p.spec.as_mut().expect("a spec");
    spec.scheduler_name = None;
    spec.node_selector = match rng.below(4) {
        0 => Some(BTreeMap::from([(
            "kubernetes.io/hostname".to_owned(),
            host,
        )])),
        1 => Some(BTreeMap::from([(
            "liqo.io/type".to_owned(),
            "virtual-node".to_owned(),
        )])),
        _ => None,
    };
    p
}

/// The bound node, `Some(None)` when the scheduler found no node, `None` while undecided.
fn placement(p: &Pod) -> Option<Option<String>> {
    if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
        return Some(Some(node));
    }
    let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
    let unschedulable = conditions.is_some_and(|c| {
        c.iter().any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
    });
    unschedulable.then_some(None)
}

/// `nsoffload explain pod NAME -n NS -o json`: the nodes it says may run the pod.
async fn explain_may_run(
    kubeconfig: &str,
    ns: &str,
    name: &str,
) -> anyhow::Result<BTreeSet<String>> {
    let args = [
        "explain",
        "pod",
        name,
        "-n",
        ns,
        "-o",
        "json",
        "--kubeconfig",
        kubeconfig,
    ];
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nsoffload"))
            .args(&args)
            .output()
    })
    .await??;
    let json: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "explain {ns}/{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let nodes = json["nodes"]
        .as_array()
        .context("no nodes in the explanation")?;
    Ok(nodes
        .iter()
        .filter(|n| n["mayRun"] == true)
        .filter_map(|n| n["name"].as_str().map(str::to_owned))
        .collect())
}

/// Every pod's placement, or `None` while the scheduler has not decided them all.
async fn decided(
    s: &Scope,
    namespaces: &[String],
) -> anyhow::Result<Option<Vec<(String, String, Option<String>)>>> {
    let mut out = Vec::new();
    for ns in namespaces {
        let api: Api<Pod> = Api::namespaced(s.client.clone(), ns);
        for p in api.list(&ListParams::default()).await?.items {
            match placement(&p) {
                Some(node) => out.push((ns.clone(), p.name_any(), node)),
                None => return Ok(None),
            }
        }
    }
    Ok(Some(out))
}

#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn explain_agrees_with_the_scheduler_on_random_pods() {
    let env = ReconcileEnv::get().await;
    let kubeconfig = env.e2e.setup.kubeconfig.to_string_lossy().into_owned();
    check_remote(&env, "explain", |s, remotes| async move {
        ensure_runtime_class(&s).await?;
        let first = remotes.first().context("no remote cluster")?;
        let namespaces = [
            namespace(&s, &remotes, LocalAndRemote, Some(first)).await?,
            namespace(&s, &remotes, Remote, None).await?,
            namespace(&s, &remotes, Local, None).await?,
        ];
        let seed = std::env::var("NSOFFLOAD_E2E_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::process::id() as u64 * 2_654_435_761 + 1);
        say(&format!("e2e: explain consistency, seed {seed} (NSOFFLOAD_E2E_SEED replays it)"));
        let mut rng = Rng(seed.max(1));
        let transient = |m: &str| unprocessed(m) || runtime_class_unknown(m);
        for i in 0..PODS {
            let ns = &namespaces[rng.below(namespaces.len())];
            let p = random_pod(&mut rng, &format!("rnd-{i}"), &remotes);
            create_admitted(&s.client, ns, &p, &transient).await?;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let placed = loop {
            if let Some(all) = decided(&s, &namespaces).await? {
                break all;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the scheduler did not decide every pod within 120 s"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        ensure!(placed.len() == PODS, "{} pods decided of {PODS}", placed.len());
        let (mut bound, mut pending) = (0, 0);
        for (ns, name, node) in &placed {
            let may = explain_may_run(&kubeconfig, ns, name).await?;
            match node {
                Some(node) => {
                    bound += 1;
                    ensure!(may.contains(node), "{ns}/{name} is bound to {node}, but explain says only {may:?} may run it (seed {seed})");
                }
                None => {
                    pending += 1;
                    ensure!(may.is_empty(), "{ns}/{name} is unschedulable, but explain says {may:?} may run it (seed {seed})");
                }
            }
        }
        say(&format!("e2e: explain agrees with the scheduler on {PODS} pods ({bound} bound, {pending} unschedulable)"));
        Ok(())
    })
    .await;
}
