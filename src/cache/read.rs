//! NamespaceOffloadings read from the API server's JSON one object at a time, leniently.
//!
//! Why: the list readiness waits for comes in one response from the watch cache (see
//! `offloadings::list_from_cache`). Decoded as `DynamicObject`s, the 10,000 objects of that
//! list lived at once as JSON trees with their managed fields (RSS 123–140 MiB at ready, for a
//! store that holds 40). [`Offloading`] decodes each item straight into the cached form: its
//! tree is dropped as soon as the item is read, and managed fields never reach a struct. An
//! item that does not read as a NamespaceOffloading still yields its metadata, so one
//! malformed object is reported instead of failing the whole list.

use std::borrow::Cow;

use kube::core::{NamespaceResourceScope, ObjectMeta};
use kube::Resource;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::api::NamespaceOffloading;

/// Set, in the cache only, on a NamespaceOffloading that does not read as one: why.
pub const UNREADABLE_ANNOTATION: &str = "nsoffload.cache/unreadable";

/// A NamespaceOffloading as the cache keeps it (see [`from_value`]); what watches decode.
#[derive(Clone, Debug)]
pub struct Offloading(pub NamespaceOffloading);

impl<'de> Deserialize<'de> for Offloading {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|raw| Offloading(from_value(raw)))
    }
}

impl Resource for Offloading {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        NamespaceOffloading::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        NamespaceOffloading::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        NamespaceOffloading::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        NamespaceOffloading::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

/// Reads a NamespaceOffloading from its JSON without the managed fields or kubectl's copy of
/// the last applied object (nothing reads either). One that does not read keeps its
/// metadata, with an empty spec and the reason in [`UNREADABLE_ANNOTATION`].
pub fn from_value(mut raw: Value) -> NamespaceOffloading {
    if let Some(meta) = raw.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
        if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    match NamespaceOffloading::deserialize(&raw) {
        Ok(nsoff) => nsoff,
        Err(e) => {
            let mut metadata = raw
                .get("metadata")
                .and_then(|m| ObjectMeta::deserialize(m).ok())
                .unwrap_or_default();
            tracing::warn!(
                namespace = metadata.namespace.as_deref().unwrap_or_default(),
                name = metadata.name.as_deref().unwrap_or_default(),
                error = %e,
                "a NamespaceOffloading that cannot be read is cached without its spec"
            );
            metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(UNREADABLE_ANNOTATION.to_owned(), e.to_string());
            NamespaceOffloading {
                metadata,
                spec: Default::default(),
                status: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::core::ObjectList;
    use serde_json::json;

    use super::*;

    /// A list whose second item is malformed reads whole; items lose what nothing reads.
    #[test]
    fn a_list_reads_item_by_item() {
        let item = |ns: &str, strategy: Value| {
            json!({
                "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
                "metadata": {
                    "name": "offloading", "namespace": ns, "resourceVersion": "7",
                    "managedFields": [{"manager": "kubectl", "operation": "Update"}],
                    "annotations": {
                        "kubectl.kubernetes.io/last-applied-configuration": "{}",
                        "team": "a",
                    },
                },
                "spec": {"podOffloadingStrategy": strategy},
            })
        };
        let list = json!({
            "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloadingList",
            "metadata": {"resourceVersion": "9"},
            "items": [item("a", json!("Remote")), item("b", json!(7))],
        });
        let list: ObjectList<Offloading> = serde_json::from_value(list).unwrap();
        let [good, bad] = [&list.items[0].0, &list.items[1].0];
        assert_eq!(good.metadata.managed_fields, None);
        let annotations = good.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.into_iter().collect::<Vec<_>>(),
            [("team".into(), "a".into())]
        );
        assert_eq!(
            serde_json::to_value(&good.spec).unwrap()["podOffloadingStrategy"],
            "Remote"
        );
        assert_eq!(bad.metadata.namespace.as_deref(), Some("b"));
        assert_eq!(bad.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(bad.metadata.managed_fields, None);
        let why = &bad.metadata.annotations.as_ref().unwrap()[UNREADABLE_ANNOTATION];
        assert!(
            why.contains("podOffloadingStrategy") || why.contains("invalid type"),
            "{why}"
        );
        assert_eq!(bad.spec, Default::default());
    }
}
