//! The explanation's values in words: one short phrase per reason, state or change.
//!
//! The core keeps reasons as data so machines read them in JSON; people read these phrases.
//! Each names what it is about (the taint, the label and both values, the failing
//! requirement) and, for a change, the command that makes it when there is one, so the output
//! can be acted on without looking anything else up.

use crate::api::consts::SCHEDULING_ENABLED_LABEL;
use crate::policy::explain::{
    Blocker, Change, OffloadingSummary, OutdatedReason, RuntimeClassProblem, TermFailure, TwinState,
};

/// A twin namespace's state.
pub(super) fn twin(state: &TwinState) -> String {
    match state {
        TwinState::Ready => "twin ready".to_owned(),
        TwinState::NotReady { reason, message } if message.is_empty() => format!("twin {reason}"),
        TwinState::NotReady { reason, message } => format!("twin {reason}: {message}"),
        TwinState::Absent => "no twin".to_owned(),
    }
}

/// Selector terms (ORed), in the CLI's syntax; no term selects every cluster.
pub(super) fn terms(terms: &[String]) -> String {
    if terms.is_empty() {
        "every cluster".to_owned()
    } else {
        terms.join("  OR  ")
    }
}

/// `key=value`, or `no key` when the node lacks the label.
fn node_value(key: &str, actual: Option<&str>) -> String {
    match actual {
        Some(v) => format!("node has {key}={v}"),
        None => format!("node has no {key}"),
    }
}

/// Why the pod may not run on a node.
pub(super) fn blocker(b: &Blocker) -> String {
    match b {
        Blocker::Cordoned => "cordoned (unschedulable)".to_owned(),
        Blocker::NotReady { status, reason } => match reason {
            Some(r) => format!("not Ready (Ready={status}, {r})"),
            None => format!("not Ready (Ready={status})"),
        },
        Blocker::Taint { key, value, effect } => match value {
            Some(v) if !v.is_empty() => format!("taint {key}={v}:{effect} not tolerated"),
            _ => format!("taint {key}:{effect} not tolerated"),
        },
        Blocker::NodeSelector {
            key,
            wanted,
            actual,
        } => format!(
            "nodeSelector {key}={wanted}, {}",
            node_value(key, actual.as_deref())
        ),
        Blocker::NodeAffinity { terms } => {
            let failures: Vec<String> = terms.iter().map(term_failure).collect();
            format!("required affinity: {}", failures.join("; "))
        }
        Blocker::RuntimeClass { name, problem } => match problem {
            RuntimeClassProblem::Missing => format!("RuntimeClass {name} does not exist"),
            RuntimeClassProblem::NodeSelector {
                key,
                wanted,
                actual,
            } => format!(
                "RuntimeClass {name} needs {key}={wanted}, {}",
                node_value(key, actual.as_deref())
            ),
        },
        Blocker::NoReadyTwin { cluster, twin } => match (cluster, twin) {
            (None, _) => "virtual node of no known cluster".to_owned(),
            (Some(c), TwinState::Absent) => format!("no twin namespace on {c}"),
            (Some(c), TwinState::NotReady { reason, message }) if message.is_empty() => {
                format!("no ready twin namespace on {c} ({reason})")
            }
            (Some(c), TwinState::NotReady { reason, message }) => {
                format!("no ready twin namespace on {c} ({reason}: {message})")
            }
            (Some(c), TwinState::Ready) => format!("twin namespace on {c} ready"),
        },
    }
}

fn term_failure(f: &TermFailure) -> String {
    match f {
        TermFailure::Requirement {
            term,
            requirement,
            actual,
        } => match actual {
            Some(v) => format!("term {} needs {requirement} (node: {v})", term + 1),
            None => format!(
                "term {} needs {requirement} (node: no such label)",
                term + 1
            ),
        },
        TermFailure::Empty { term } => format!("term {} is empty", term + 1),
        TermFailure::Invalid { term, message } => {
            format!("term {} is invalid: {message}", term + 1)
        }
    }
}

/// Why a stored pod lacks what the policy asks for now.
pub(super) fn outdated(why: OutdatedReason) -> String {
    match why {
        OutdatedReason::CreatedBeforeOffloading => {
            "it was created before the NamespaceOffloading".to_owned()
        }
        OutdatedReason::CreatedBeforeLabel => format!(
            "it was created before the namespace was labelled {SCHEDULING_ENABLED_LABEL}=true \
             (before offloading was ready)"
        ),
        OutdatedReason::PolicyChanged => {
            "the strategy or the selector changed since it was created".to_owned()
        }
    }
}

/// How to recreate a stored pod; `controlled` is whether a controller owns it (`None`: not
/// known).
pub(super) fn recreate(ns: &str, pod: Option<&str>, controlled: Option<bool>) -> String {
    let pod = pod.unwrap_or("POD");
    match controlled {
        Some(true) => format!("kubectl delete pod {pod} -n {ns} (its controller recreates it)"),
        Some(false) => format!(
            "kubectl delete pod {pod} -n {ns}, then create it again (no controller recreates it)"
        ),
        None => {
            format!("kubectl delete pod {pod} -n {ns} (and create it again if no controller does)")
        }
    }
}

/// The one change that would help first.
pub(super) fn change(c: &Change, ns: &str, offloading: &OffloadingSummary) -> String {
    match c {
        Change::CreateOffloading => {
            format!("offload the namespace: nsoffload offload namespace {ns}")
        }
        Change::WaitForOffloading { message } => format!("wait for the offloading: {message}"),
        Change::FixOffloading { clusters } => {
            let each: Vec<String> = clusters
                .iter()
                .map(|p| format!("{} ({})", p.cluster, twin(&p.twin)))
                .collect();
            format!("fix the twin namespaces failing on {}", each.join(", "))
        }
        Change::FixSelector { message } => {
            format!("fix the cluster selector (it selects no cluster): {message}")
        }
        Change::WidenSelector { clusters } => format!(
            "widen the cluster selector to include {}",
            clusters.join(", ")
        ),
        Change::ChangeStrategy { to } => {
            let mut command =
                format!("nsoffload offload namespace {ns} --pod-offloading-strategy {to}");
            for term in &offloading.selector {
                command.push_str(&format!(" --selector '{term}'"));
            }
            format!("change the strategy to {to}: {command}")
        }
        Change::DropNodeSelector { keys } => format!(
            "drop nodeSelector {} from the pod: no node it may use carries it as asked",
            keys.join(", ")
        ),
        Change::DropAffinity => {
            "drop the pod's own required node affinity: it contradicts the offloading".to_owned()
        }
        Change::RecreatePod => {
            "recreate the pod, so the webhook applies the current policy to it".to_owned()
        }
        Change::CreateRuntimeClass { name } => format!("create RuntimeClass {name}"),
        Change::FixPod { message } => format!("fix the pod: {message}"),
        Change::Nothing => {
            "no single change of the offloading or of the pod helps; see each node above".to_owned()
        }
    }
}
