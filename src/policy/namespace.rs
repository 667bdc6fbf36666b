//! The namespace mutation (SPEC §6): turn the pod webhook on together with quick offloading.
//!
//! A namespace labelled `liqo.io/enabled=true` gets `liqo.io/scheduling-enabled=true` as it is
//! created (or when an update adds the first label), so pods applied in the same `kubectl
//! apply` are denied by the pod gate until offloading is ready, instead of being admitted
//! unmutated and staying Pending. Other updates are left alone, so this never fights the
//! reconciler, which removes the scheduling label for the `Local` strategy.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::object::object_only;
use super::patch::PatchOp;
use crate::api::consts::{OFFLOADING_ENABLED_LABEL, SCHEDULING_ENABLED_LABEL};

/// The part of a Namespace this mutation reads (only a JSON object reads as one; see
/// [`super::object`]).
#[derive(Debug, Default, Deserialize)]
#[serde(remote = "Self")]
pub(crate) struct NamespaceView {
    /// Only the labels are read.
    #[serde(default)]
    pub metadata: Option<MetadataView>,
}

/// `metadata.labels`.
#[derive(Debug, Default, Deserialize)]
#[serde(remote = "Self")]
pub(crate) struct MetadataView {
    /// The namespace's labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

object_only!(NamespaceView, "a namespace (a JSON object)");
object_only!(MetadataView, "namespace metadata (a JSON object)");

impl NamespaceView {
    fn label(&self, key: &str) -> Option<&str> {
        self.metadata
            .as_ref()?
            .labels
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }
}

/// The JSON Pointer of the scheduling label (`/` in the key escaped as `~1`).
const SCHEDULING_LABEL_PATH: &str = "/metadata/labels/liqo.io~1scheduling-enabled";

/// The patch that adds the scheduling label, when `new` (created, or updated from `old`) has
/// just been labelled for quick offloading; empty otherwise.
pub(crate) fn scheduling_label_patch(
    new: &NamespaceView,
    old: Option<&NamespaceView>,
) -> Vec<PatchOp<'static>> {
    let enabled = |ns: &NamespaceView| ns.label(OFFLOADING_ENABLED_LABEL) == Some("true");
    let just_enabled = enabled(new) && !old.is_some_and(enabled);
    if !just_enabled || new.label(SCHEDULING_ENABLED_LABEL) == Some("true") {
        return Vec::new();
    }
    // `new` carries the quick-offloading label, so its labels map exists.
    vec![PatchOp::add(
        SCHEDULING_LABEL_PATH,
        Cow::Owned(Value::String("true".to_owned())),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::patch::to_json_patch;
    use serde_json::json;

    fn ns(labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": labels}})
    }

    fn apply(new: &Value, old: Option<&Value>) -> Value {
        let view = |v: &Value| <NamespaceView as Deserialize>::deserialize(v).unwrap();
        let ops = scheduling_label_patch(&view(new), old.map(view).as_ref());
        let mut out = new.clone();
        json_patch::patch(&mut out, &to_json_patch(&ops)).unwrap();
        out
    }

    /// A namespace or its metadata given as an array is not read positionally.
    #[test]
    fn only_objects_read_as_namespaces() {
        let labelled = json!({"liqo.io/enabled": "true"});
        for bad in [
            json!({"metadata": [{"labels": labelled}]}),
            json!([{"labels": labelled}]),
            json!({"metadata": [labelled]}),
        ] {
            assert!(
                serde_json::from_value::<NamespaceView>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(serde_json::from_value::<NamespaceView>(ns(labelled)).is_ok());
    }

    #[test]
    fn created_with_the_label_gets_scheduling_enabled() {
        let got = apply(&ns(json!({"liqo.io/enabled": "true", "team": "a"})), None);
        assert_eq!(
            got,
            ns(
                json!({"liqo.io/enabled": "true", "team": "a", "liqo.io/scheduling-enabled": "true"})
            )
        );
    }

    #[test]
    fn update_that_adds_the_label_gets_scheduling_enabled() {
        let old = ns(json!({"team": "a"}));
        let got = apply(&ns(json!({"liqo.io/enabled": "true"})), Some(&old));
        assert_eq!(
            got,
            ns(json!({"liqo.io/enabled": "true", "liqo.io/scheduling-enabled": "true"}))
        );
    }

    #[test]
    fn other_updates_are_left_alone() {
        let enabled = ns(json!({"liqo.io/enabled": "true"}));
        // The reconciler removed the scheduling label (Local strategy): do not put it back.
        assert_eq!(apply(&enabled, Some(&enabled)), enabled);
        // The label is being removed.
        let plain = ns(json!({}));
        assert_eq!(apply(&plain, Some(&enabled)), plain);
    }

    #[test]
    fn no_patch_when_not_enabled_or_already_labelled() {
        for labels in [
            json!({}),
            json!({"liqo.io/enabled": "false"}),
            json!({"liqo.io/enabled": "true", "liqo.io/scheduling-enabled": "true"}),
        ] {
            let new = <NamespaceView as Deserialize>::deserialize(&ns(labels.clone())).unwrap();
            assert!(scheduling_label_patch(&new, None).is_empty(), "{labels}");
        }
    }
}
