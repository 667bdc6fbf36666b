//! Helpers shared by the integration tests: pod builders and patch application.
#![allow(dead_code)]

pub mod http;
pub mod mock_api;
pub mod router;

pub use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::core::v1::{
    Affinity, Container, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PodSpec, Toleration,
};
use nsoffload::api::{NamespaceOffloadingSpec, PodOffloadingStrategy};
use nsoffload::policy::mutate::{mutate_json, PodPolicy};
use serde_json::Value;

/// The RuntimeClass name used by the tests.
pub const RC: &str = "liqo";

pub type R = NodeSelectorRequirement;

pub fn req(key: &str, op: &str, values: &[&str]) -> R {
    R {
        key: key.into(),
        operator: op.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    }
}

pub fn term(reqs: &[R]) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: Some(reqs.to_vec()),
        match_fields: None,
    }
}

/// `liqo.io/type In [virtual-node]`.
pub fn vin() -> R {
    req("liqo.io/type", "In", &["virtual-node"])
}

/// `liqo.io/type NotIn [virtual-node]`.
pub fn vnotin() -> R {
    req("liqo.io/type", "NotIn", &["virtual-node"])
}

/// The virtual-node toleration Tv.
pub fn tv() -> Toleration {
    Toleration {
        key: Some("virtual-node.liqo.io/not-allowed".into()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Default::default()
    }
}

/// An affinity whose only content is the given required node selector terms.
pub fn required(terms: Vec<NodeSelectorTerm>) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: terms,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A small pod with the given tolerations (none → field absent), affinity and RuntimeClass.
pub fn pod_with(
    tolerations: Vec<Toleration>,
    affinity: Option<Affinity>,
    runtime_class: Option<&str>,
) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some("web".into());
    pod.metadata.namespace = Some("shop".into());
    pod.spec = Some(PodSpec {
        containers: vec![Container {
            name: "web".into(),
            image: Some("nginx".into()),
            ..Default::default()
        }],
        tolerations: (!tolerations.is_empty()).then_some(tolerations),
        affinity,
        runtime_class_name: runtime_class.map(str::to_owned),
        ..Default::default()
    });
    pod
}

pub trait PodExt {
    fn with_affinity(self, a: Affinity) -> Self;
}

impl PodExt for Pod {
    fn with_affinity(mut self, a: Affinity) -> Self {
        if let Some(spec) = self.spec.as_mut() {
            spec.affinity = Some(a);
        }
        self
    }
}

pub fn policy(strategy: PodOffloadingStrategy, cs: &[NodeSelectorTerm]) -> PodPolicy {
    let spec = NamespaceOffloadingSpec {
        pod_offloading_strategy: strategy,
        cluster_selector: (!cs.is_empty()).then(|| NodeSelector {
            node_selector_terms: cs.to_vec(),
        }),
        ..Default::default()
    };
    PodPolicy::new(&spec)
}

/// Applies the mutation's patch to `json` and returns the result; checks that every operation
/// touches only `/spec/tolerations` or `/spec/affinity`.
pub fn apply_mutation(json: &Value, policy: &PodPolicy) -> Value {
    let ops = mutate_json(json, policy, RC).expect("mutation succeeds");
    for op in &ops {
        let path = serde_json::to_value(op).unwrap()["path"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            path.starts_with("/spec/tolerations") || path.starts_with("/spec/affinity"),
            "patch touches {path}"
        );
    }
    let mut out = json.clone();
    json_patch::patch(&mut out, &ops).expect("the patch applies to the pod it was made for");
    out
}

pub fn mutate_and_apply(
    pod: &Pod,
    strategy: PodOffloadingStrategy,
    cs: &[NodeSelectorTerm],
) -> Value {
    apply_mutation(&serde_json::to_value(pod).unwrap(), &policy(strategy, cs))
}

pub fn assert_pod_eq(name: &str, got: &Value, want: &Pod) {
    let want = serde_json::to_value(want).unwrap();
    assert_eq!(
        got,
        &want,
        "{name}: resulting pod differs\n got: {}\nwant: {}",
        pretty(got),
        pretty(&want)
    );
}

pub fn assert_no_patch(
    name: &str,
    pod: &Value,
    strategy: PodOffloadingStrategy,
    cs: &[NodeSelectorTerm],
) {
    let ops = mutate_json(pod, &policy(strategy, cs), RC).unwrap();
    assert!(
        ops.is_empty(),
        "{name}: not idempotent, second pass patched {ops:?}"
    );
}

pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
