//! Validation of NamespaceOffloading objects (SPEC §5).
//!
//! Why this exists: a NamespaceOffloading that the reconciler cannot act on (wrong name, an
//! impossible twin namespace name, a selector it cannot parse) would otherwise be accepted and
//! fail later, far from the user, in a status condition. Refusing it at `kubectl apply` time, with
//! every problem listed and each naming its field, lets the user fix everything at once.
//!
//! The object is read leniently from the raw JSON of the AdmissionRequest rather than through
//! the typed spec: a bad enum value or a malformed selector must become a message naming the
//! field, never a decode error or a panic. The `liqo.io/webhook-skip` label is deliberately not
//! consulted here: it never bypasses this validation.
//!
//! On UPDATE, the selector and twin-name rules (§5 rules 4 and 5) only judge what the update
//! changes ("ratcheting"). An object stored before the webhook was installed may carry an
//! invalid selector and the reconciler's finalizer; re-checking unchanged fields would deny the
//! metadata-only update that removes that finalizer, and its deletion would hang forever.

use kube::core::admission::Operation;
use serde_json::Value;

use super::naming::{check_dns1123_label, twin_namespace_name};
use super::selector::ParsedSelector;
use super::Verdict;
use crate::api::consts::NSOFF_NAME;
use crate::api::{NamespaceMappingStrategy, NamespaceOffloadingSpec, PodOffloadingStrategy};
use k8s_openapi::api::core::v1::NodeSelector;

/// Settings the validation depends on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationConfig {
    /// The home cluster id (`--cluster-id`), part of `DefaultName` twin names.
    pub home_cluster_id: String,
}

/// Decides a NamespaceOffloading admission request.
///
/// `new` and `old` are the raw `object` and `oldObject` of the AdmissionRequest; `namespace` is
/// the request's namespace. DELETE, CONNECT and requests on a subresource (e.g. `status`, which
/// cannot change the spec) are allowed. Every problem found is reported in one denial, the
/// reasons joined with `"; "`. An UPDATE that makes the pod offloading strategy stricter is
/// allowed with one warning.
pub fn validate_nsoff(
    op: &Operation,
    sub_resource: Option<&str>,
    namespace: &str,
    new: Option<&Value>,
    old: Option<&Value>,
    cfg: &ValidationConfig,
) -> Verdict {
    let is_update = match op {
        Operation::Create => false,
        Operation::Update => true,
        Operation::Delete | Operation::Connect => return Verdict::allow(),
    };
    if sub_resource.is_some_and(|s| !s.is_empty()) {
        return Verdict::allow();
    }
    let Some(new) = new else {
        return Verdict::Deny("request has no object".to_owned());
    };
    if !new.is_object() {
        return Verdict::Deny("request object is not a JSON object".to_owned());
    }
    let new = Fields::read(new);
    // An UPDATE without a readable old object is judged like a CREATE.
    let old = old
        .filter(|_| is_update)
        .filter(|o| o.is_object())
        .map(Fields::read);
    let namespace = if namespace.is_empty() {
        new.namespace.as_str()
    } else {
        namespace
    };

    let mut reasons = Vec::new();
    if new.name != NSOFF_NAME {
        reasons.push(format!(
            "metadata.name: {:?} is not accepted: the only accepted name is {NSOFF_NAME:?} \
             (one NamespaceOffloading per namespace)",
            new.name
        ));
    }
    reasons.extend(new.spec_problem.iter().cloned());
    if let Err(e) = &new.mapping.value {
        reasons.push(e.clone());
    }
    if let Some(old) = &old {
        check_immutable(old, &new, &mut reasons);
    }
    if let Err(e) = &new.remote {
        reasons.push(e.clone());
    }
    let twin_inputs_changed = old
        .as_ref()
        .is_none_or(|o| o.mapping.key != new.mapping.key || o.remote_key != new.remote_key);
    if twin_inputs_changed {
        check_twin_name(&new, namespace, cfg, &mut reasons);
    }
    if let Err(e) = &new.pod.value {
        reasons.push(e.clone());
    }
    if old.as_ref().is_none_or(|o| o.selector != new.selector) {
        check_selector(new.selector.as_ref(), &mut reasons);
    }
    if !reasons.is_empty() {
        return Verdict::Deny(reasons.join("; "));
    }

    let mut warnings = Vec::new();
    if let (Some(old), Ok(pod)) = (&old, &new.pod.value) {
        if old.pod.key != new.pod.key && *pod != PodOffloadingStrategy::LocalAndRemote {
            warnings.push(format!(
                "spec.podOffloadingStrategy changed from {} to {pod}: pods already running in \
                 namespace {namespace:?} are not moved and may violate the stricter policy; \
                 restart them (e.g. roll out their workloads) to apply it",
                old.pod.key
            ));
        }
    }
    Verdict::Allow { warnings }
}

/// §5 rule 3: the twin name inputs never change after creation.
fn check_immutable(old: &Fields, new: &Fields, reasons: &mut Vec<String>) {
    let hint = "to change it, delete and recreate the NamespaceOffloading";
    if old.mapping.key != new.mapping.key {
        reasons.push(format!(
            "spec.namespaceMappingStrategy: field is immutable (it is {}, the update sets {}): \
             {hint}",
            old.mapping.key, new.mapping.key
        ));
    }
    if old.remote_key != new.remote_key {
        reasons.push(format!(
            "spec.remoteNamespaceName: field is immutable (it is {:?}, the update sets {:?}): \
             {hint}",
            old.remote_key, new.remote_key
        ));
    }
}

/// §5 rules 2 and 5: the twin namespace must be creatable on every remote cluster.
fn check_twin_name(new: &Fields, namespace: &str, cfg: &ValidationConfig, out: &mut Vec<String>) {
    let (Ok(mapping), Ok(remote)) = (&new.mapping.value, &new.remote) else {
        return; // already reported as a bad value
    };
    let mapping = *mapping;
    let spec = NamespaceOffloadingSpec {
        namespace_mapping_strategy: mapping,
        remote_namespace_name: Some(remote.clone()),
        ..Default::default()
    };
    let twin = twin_namespace_name(&spec, namespace, &cfg.home_cluster_id);
    if mapping == NamespaceMappingStrategy::SelectedName && twin.is_empty() {
        out.push(
            "spec.remoteNamespaceName: required when spec.namespaceMappingStrategy is \
             SelectedName (it names the namespace created on remote clusters)"
                .to_owned(),
        );
        return;
    }
    let Err(problem) = check_dns1123_label(&twin) else {
        return;
    };
    out.push(match mapping {
        NamespaceMappingStrategy::SelectedName => format!(
            "spec.remoteNamespaceName: {twin:?} is not a valid namespace name \
             (DNS-1123 label): {problem}"
        ),
        NamespaceMappingStrategy::DefaultName => format!(
            "spec.namespaceMappingStrategy: DefaultName names the remote namespace {twin:?} \
             (<namespace>-<home-cluster-id>), which is not a valid namespace name \
             (DNS-1123 label): {problem} (use SelectedName with a valid \
             spec.remoteNamespaceName instead)"
        ),
        NamespaceMappingStrategy::EnforceSameName => format!(
            "spec.namespaceMappingStrategy: EnforceSameName names the remote namespace \
             {twin:?}, which is not a valid namespace name (DNS-1123 label): {problem}"
        ),
    });
}

/// §5 rule 4: the same parser as the reconciler's.
fn check_selector(selector: Option<&Value>, out: &mut Vec<String>) {
    let Some(raw) = selector else {
        return;
    };
    let parsed: NodeSelector = match serde_json::from_value(raw.clone()) {
        Ok(s) => s,
        Err(e) => {
            out.push(format!(
                "spec.clusterSelector: not a valid NodeSelector ({e}), expected \
                 {{\"nodeSelectorTerms\": [{{\"matchExpressions\": [...]}}]}}"
            ));
            return;
        }
    };
    if let Err(e) = ParsedSelector::parse(&parsed) {
        out.extend(e.errors.iter().map(ToString::to_string));
    }
}

/// An enum field: the value as written (or the default's name when absent), for comparing old
/// and new, and the parsed value or a message naming the field.
struct EnumField<T> {
    key: String,
    value: Result<T, String>,
}

impl<T> EnumField<T>
where
    T: std::str::FromStr<Err = crate::api::UnknownValue> + Default + std::fmt::Display,
{
    fn read(spec: Option<&Value>, field: &str) -> Self {
        match spec.and_then(|s| s.get(field)) {
            None | Some(Value::Null) => {
                let d = T::default();
                EnumField {
                    key: d.to_string(),
                    value: Ok(d),
                }
            }
            Some(Value::String(s)) => EnumField {
                key: s.clone(),
                value: s.parse().map_err(|e| format!("spec.{field}: {e}")),
            },
            Some(other) => EnumField {
                key: other.to_string(),
                value: Err(format!("spec.{field}: must be a string, not {other}")),
            },
        }
    }
}

/// The fields validation looks at, read without failing.
struct Fields {
    name: String,
    namespace: String,
    /// Set when `spec` is present but not an object.
    spec_problem: Option<String>,
    mapping: EnumField<NamespaceMappingStrategy>,
    /// `remoteNamespaceName` as written; absent, `null` and `""` are all `""`.
    remote_key: String,
    remote: Result<String, String>,
    pod: EnumField<PodOffloadingStrategy>,
    /// `clusterSelector`; `null` reads as absent.
    selector: Option<Value>,
}

impl Fields {
    fn read(obj: &Value) -> Self {
        let text = |ptr: &str| {
            obj.pointer(ptr)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let raw_spec = obj.get("spec").filter(|s| !s.is_null());
        let spec_problem = raw_spec
            .filter(|s| !s.is_object())
            .map(|s| format!("spec: must be an object, not {s}"));
        let spec = raw_spec.filter(|s| s.is_object());
        let (remote_key, remote) = match spec.and_then(|s| s.get("remoteNamespaceName")) {
            None | Some(Value::Null) => (String::new(), Ok(String::new())),
            Some(Value::String(s)) => (s.clone(), Ok(s.clone())),
            Some(other) => (
                other.to_string(),
                Err(format!(
                    "spec.remoteNamespaceName: must be a string, not {other}"
                )),
            ),
        };
        Fields {
            name: text("/metadata/name"),
            namespace: text("/metadata/namespace"),
            spec_problem,
            mapping: EnumField::read(spec, "namespaceMappingStrategy"),
            remote_key,
            remote,
            pod: EnumField::read(spec, "podOffloadingStrategy"),
            selector: spec
                .and_then(|s| s.get("clusterSelector"))
                .filter(|v| !v.is_null())
                .cloned(),
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
