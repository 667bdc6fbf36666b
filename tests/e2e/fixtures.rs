//! The SPEC §3 vectors as Kubernetes objects, offloaded namespaces, and the comparison of a
//! mutated pod with its control twin.
//!
//! Expected values are written from the SPEC here, not computed with the crate's policy code,
//! so the suite is an independent oracle.
//!
//! Why control twins: the API server's own admission plugins change pods too (default
//! tolerations for not-ready/unreachable nodes, the ServiceAccount, priority, a RuntimeClass's
//! scheduling), differently per version and configuration. So every pod is created twice,
//! in a control namespace the webhook does not select and in the offloaded namespace, and the
//! mutated pod must equal its twin except for exactly what SPEC §3 prescribes: Tv appended to
//! the tolerations, and the required node-selector terms of the vector. Everything else,
//! including the rest of the affinity and the metadata, must be identical.
//!
//! Pods name a scheduler that does not exist, so they stay Pending without a node: nothing
//! runs, and nothing changes them between admission and the GET that reads them back.

use std::time::Duration;

use anyhow::{bail, Context as _};
use k8s_openapi::api::core::v1::{
    Affinity, Container, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    Pod, PodSpec, SecurityContext, Toleration,
};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use nsoffload::api::{NamespaceOffloading, NamespaceOffloadingSpec, PodOffloadingStrategy};
use serde_json::{json, Value};

use crate::kit::{api_status, retry, trimmed, Attempt, Scope};

pub type Req = NodeSelectorRequirement;

pub fn req(key: &str, operator: &str, values: &[&str]) -> Req {
    Req {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

/// One term made of the concatenated requirement lists (`x+y` in the SPEC).
pub fn term(parts: &[&[Req]]) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: Some(parts.concat()),
        match_fields: None,
    }
}

/// c1 = `[region In [A,B], provider Exists]`.
pub fn c1() -> Vec<Req> {
    vec![
        req("region", "In", &["A", "B"]),
        req("provider", "Exists", &[]),
    ]
}

/// c2 = `[region In [C], gpu Exists]`.
pub fn c2() -> Vec<Req> {
    vec![req("region", "In", &["C"]), req("gpu", "Exists", &[])]
}

/// p1 = `[storage Exists]`.
pub fn p1() -> Vec<Req> {
    vec![req("storage", "Exists", &[])]
}

/// p2 = `[provider In [aws]]`.
pub fn p2() -> Vec<Req> {
    vec![req("provider", "In", &["aws"])]
}

/// `In` = `liqo.io/type In [virtual-node]`.
pub fn vin() -> Vec<Req> {
    vec![req("liqo.io/type", "In", &["virtual-node"])]
}

/// `NotIn` = `liqo.io/type NotIn [virtual-node]`.
pub fn vnotin() -> Vec<Req> {
    vec![req("liqo.io/type", "NotIn", &["virtual-node"])]
}

/// CS = [c1, c2].
pub fn cs() -> Vec<NodeSelectorTerm> {
    vec![term(&[&c1()]), term(&[&c2()])]
}

/// Tv, the virtual-node toleration.
pub fn tv() -> Toleration {
    Toleration {
        key: Some("virtual-node.liqo.io/not-allowed".to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some("NoExecute".to_owned()),
        ..Toleration::default()
    }
}

/// Tt = `{key: test}`, a toleration the pod already has.
pub fn tt() -> Toleration {
    Toleration {
        key: Some("test".to_owned()),
        ..Toleration::default()
    }
}

/// A pod that never runs, with the given tolerations, required terms and RuntimeClass.
pub fn pod(
    name: &str,
    tolerations: Vec<Toleration>,
    required: Option<Vec<NodeSelectorTerm>>,
    runtime_class: Option<&str>,
) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.to_owned());
    pod.spec = Some(PodSpec {
        containers: vec![Container {
            name: "pause".to_owned(),
            image: Some("registry.k8s.io/pause:3.9".to_owned()),
            // Acceptable under the `restricted` Pod Security Standard, in case the cluster
            // enforces it by default.
            security_context: Some(restricted()),
            ..Container::default()
        }],
        scheduler_name: Some("nsoffload-e2e-no-such-scheduler".to_owned()),
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(0),
        tolerations: (!tolerations.is_empty()).then_some(tolerations),
        affinity: required.map(|terms| with_required(None, terms)),
        runtime_class_name: runtime_class.map(str::to_owned),
        ..PodSpec::default()
    });
    pod
}

fn restricted() -> SecurityContext {
    serde_json::from_value(json!({
        "runAsNonRoot": true,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }))
    .expect("a valid SecurityContext")
}

/// `affinity` (or an empty one) with its required node-selector terms set to `terms`.
fn with_required(affinity: Option<Affinity>, terms: Vec<NodeSelectorTerm>) -> Affinity {
    let mut affinity = affinity.unwrap_or_default();
    let node = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: terms,
    });
    affinity
}

/// The NamespaceOffloading `offloading` with the pod strategy and cluster selector terms.
pub fn nsoff(
    strategy: PodOffloadingStrategy,
    cs: Option<Vec<NodeSelectorTerm>>,
) -> NamespaceOffloading {
    let spec = NamespaceOffloadingSpec {
        pod_offloading_strategy: strategy,
        cluster_selector: cs.map(|node_selector_terms| NodeSelector {
            node_selector_terms,
        }),
        ..NamespaceOffloadingSpec::default()
    };
    NamespaceOffloading::new("offloading", spec)
}

/// A namespace labelled `liqo.io/scheduling-enabled=true` whose pods can be created, with
/// the nsoff of `strategy` and `cs`, and (standing in for the reconciler) its status phase.
pub async fn offloaded_namespace(
    s: &Scope,
    strategy: PodOffloadingStrategy,
    cs: Option<Vec<NodeSelectorTerm>>,
    phase: Option<&str>,
) -> anyhow::Result<String> {
    let ns = s
        .pod_namespace(&[("liqo.io/scheduling-enabled", "true")])
        .await?;
    let want = nsoff(strategy, cs);
    let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &want)
        .await
        .with_context(|| format!("creating the NamespaceOffloading in {ns}"))?;
    if created.spec != want.spec {
        bail!(
            "the stored spec differs from the one sent: {}",
            trimmed(&created)
        );
    }
    if let Some(phase) = phase {
        set_phase(&s.client, &ns, phase).await?;
    }
    Ok(ns)
}

/// Writes `status.offloadingPhase` (and `observedGeneration`) through the status
/// subresource, as the reconciler would, and checks what was stored.
pub async fn set_phase(client: &Client, ns: &str, phase: &str) -> anyhow::Result<()> {
    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
    let generation = api.get("offloading").await?.metadata.generation;
    let patch = json!({"status": {"offloadingPhase": phase, "observedGeneration": generation}});
    let stored = api
        .patch_status("offloading", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("writing the status of {ns}/offloading"))?;
    let got = serde_json::to_value(&stored.status)?;
    if got.get("offloadingPhase") != Some(&json!(phase))
        || got.get("observedGeneration") != Some(&json!(generation))
    {
        bail!("the stored status is {got}, expected phase {phase} and generation {generation:?}");
    }
    Ok(())
}

/// The gate's answer while the server's cache has the nsoff but not yet its new status.
pub fn unprocessed(message: &str) -> bool {
    message.contains("has not been processed")
}

/// The RuntimeClass admission plugin's answer while its informer lacks a new RuntimeClass.
pub fn runtime_class_unknown(message: &str) -> bool {
    message.contains("RuntimeClass") && message.contains("not found")
}

/// Creates `pod` in `ns`, retrying (for 30 s) while the API server refuses it with a message
/// `transient` accepts; then reads it back.
pub async fn create_admitted(
    client: &Client,
    ns: &str,
    pod: &Pod,
    transient: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let name = pod.metadata.name.clone().unwrap_or_default();
    let what = format!("pod {ns}/{name} to be admitted");
    retry(&what, Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            match api.create(&PostParams::default(), pod).await {
                Ok(_) => Attempt::Done(()),
                Err(e) if api_status(&e).is_some_and(|(_, m)| transient(m)) => {
                    Attempt::Retry(e.into())
                }
                Err(e) => Attempt::Fail(anyhow::Error::from(e).context("pod creation refused")),
            }
        }
    })
    .await?;
    api.get(&name)
        .await
        .with_context(|| format!("reading {ns}/{name} back"))
}

/// Creates `pod` in the control namespace and in `ns`; returns (control, mutated).
pub async fn pod_pair(
    client: &Client,
    control: &str,
    ns: &str,
    pod: &Pod,
) -> anyhow::Result<(Pod, Pod)> {
    let twin = create_admitted(client, control, pod, &runtime_class_unknown).await?;
    let either = |m: &str| unprocessed(m) || runtime_class_unknown(m);
    let mutated = create_admitted(client, ns, pod, &either).await?;
    Ok((twin, mutated))
}

/// What SPEC §3 prescribes for one vector.
pub struct Expect {
    /// Tv is appended to the tolerations.
    pub adds_tv: bool,
    /// The required node-selector terms afterwards; `None`: the affinity is left alone.
    pub required: Option<Vec<NodeSelectorTerm>>,
}

fn without_scheduling(pod: &Pod) -> Value {
    let mut spec = serde_json::to_value(&pod.spec).unwrap_or(Value::Null);
    if let Some(spec) = spec.as_object_mut() {
        spec.remove("tolerations");
        spec.remove("affinity");
    }
    json!({"labels": pod.metadata.labels, "annotations": pod.metadata.annotations, "spec": spec})
}

fn yaml(v: &impl serde::Serialize) -> String {
    serde_yaml::to_string(v).unwrap_or_default()
}

/// Checks `got` (created in the offloaded namespace) against its control `twin`.
pub fn compare(vector: &str, twin: &Pod, got: &Pod, expect: &Expect) -> anyhow::Result<()> {
    let (rest_twin, rest_got) = (without_scheduling(twin), without_scheduling(got));
    if rest_twin != rest_got {
        bail!(
            "{vector}: the webhook changed more than tolerations and affinity:\ncontrol:\n{}got:\n{}",
            yaml(&rest_twin),
            yaml(&rest_got)
        );
    }
    let spec = |p: &Pod| p.spec.clone().unwrap_or_default();
    let mut want_tolerations = spec(twin).tolerations.unwrap_or_default();
    if expect.adds_tv {
        want_tolerations.push(tv());
    }
    let got_tolerations = spec(got).tolerations.unwrap_or_default();
    let tv_count = got_tolerations.iter().filter(|t| **t == tv()).count();
    if got_tolerations != want_tolerations || tv_count > 1 {
        bail!(
            "{vector}: tolerations (Tv {tv_count} times):\nexpected:\n{}got:\n{}",
            yaml(&want_tolerations),
            yaml(&got_tolerations)
        );
    }
    let want_affinity = match &expect.required {
        None => spec(twin).affinity,
        Some(terms) => Some(with_required(spec(twin).affinity, terms.clone())),
    };
    if spec(got).affinity != want_affinity {
        bail!(
            "{vector}: affinity:\nexpected:\n{}got:\n{}",
            yaml(&want_affinity),
            yaml(&spec(got).affinity)
        );
    }
    Ok(())
}

/// Creates the RuntimeClass `liqo` from the install manifests unless it exists (an existing
/// one is left as it is); one the suite creates is annotated and deleted at exit.
pub async fn ensure_runtime_class(s: &Scope) -> anyhow::Result<()> {
    let api: Api<RuntimeClass> = Api::all(s.client.clone());
    if api
        .get_opt(crate::supervisor::RUNTIME_CLASS)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let (_, yaml) = nsoffload::install::all()
        .into_iter()
        .find(|(file, _)| *file == "runtimeclass.yaml")
        .context("install::all() has no runtimeclass.yaml")?;
    let mut rc: RuntimeClass = serde_yaml::from_str(&yaml).context("runtimeclass.yaml")?;
    rc.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            crate::harness::OWNED_ANNOTATION.to_owned(),
            "true".to_owned(),
        );
    match api.create(&PostParams::default(), &rc).await {
        Ok(_) => Ok(()),
        Err(e) if api_status(&e).is_some_and(|(code, _)| code == 409) => Ok(()),
        Err(e) => Err(e).context("creating the RuntimeClass liqo"),
    }
}
