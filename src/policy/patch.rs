//! JSON Patch operations (RFC 6902) that borrow their values.
//!
//! The values a pod mutation adds are, most of the time, the same for every pod of a
//! namespace (the toleration, the imposed selector with its missing parents). They are built
//! once per NamespaceOffloading; operations borrow them and are serialized straight into the
//! answer, instead of deep-copying JSON trees on every request. `to_json_patch` converts to
//! the `json-patch` crate's types for tools and tests that apply patches.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

/// One `add` or `replace` operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchOp<'a> {
    /// `add` or `replace`.
    pub op: &'static str,
    /// JSON Pointer of the target.
    pub path: &'static str,
    /// The value to write.
    pub value: Cow<'a, Value>,
}

impl<'a> PatchOp<'a> {
    /// An `add` operation (also replaces an existing object member, per RFC 6902).
    pub fn add(path: &'static str, value: Cow<'a, Value>) -> Self {
        PatchOp {
            op: "add",
            path,
            value,
        }
    }

    /// A `replace` operation (the target must exist).
    pub fn replace(path: &'static str, value: Cow<'a, Value>) -> Self {
        PatchOp {
            op: "replace",
            path,
            value,
        }
    }
}

/// The operations as the `json-patch` crate's types.
pub(crate) fn to_json_patch(ops: &[PatchOp<'_>]) -> json_patch::Patch {
    // Every PatchOp is a valid RFC 6902 operation, so the round trip cannot fail.
    serde_json::to_value(ops)
        .and_then(serde_json::from_value)
        .unwrap_or(json_patch::Patch(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_as_rfc6902_and_converts() {
        let v = json!({"a": 1});
        let ops = [
            PatchOp::add("/spec/x", Cow::Borrowed(&v)),
            PatchOp::replace("/spec/y", Cow::Owned(json!([]))),
        ];
        assert_eq!(
            serde_json::to_value(ops.as_slice()).unwrap(),
            json!([{"op": "add", "path": "/spec/x", "value": {"a": 1}}, {"op": "replace", "path": "/spec/y", "value": []}])
        );
        let mut doc = json!({"spec": {"y": 3}});
        json_patch::patch(&mut doc, &to_json_patch(&ops)).unwrap();
        assert_eq!(doc, json!({"spec": {"x": {"a": 1}, "y": []}}));
    }
}
