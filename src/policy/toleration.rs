//! The virtual-node toleration, and whether a pod already has an equivalent one.
//!
//! The reference appended the toleration on every admission, so a pod that already tolerated
//! virtual nodes (by hand, or because it went through the webhook twice) got duplicates. Here
//! the check follows the Kubernetes rules for "does this toleration tolerate that taint",
//! including the wildcard `operator: Exists` with no key, and refuses bounded tolerations:
//! a `tolerationSeconds` would still get the pod evicted from a virtual node.

use k8s_openapi::api::core::v1::Toleration;

use crate::api::consts::{
    VIRTUAL_NODE_TAINT_EFFECT, VIRTUAL_NODE_TAINT_KEY, VIRTUAL_NODE_TAINT_VALUE,
};

/// The toleration added to offloadable pods: `operator: Exists, effect: NoExecute`, no value.
pub fn virtual_node_toleration() -> Toleration {
    Toleration {
        key: Some(VIRTUAL_NODE_TAINT_KEY.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(VIRTUAL_NODE_TAINT_EFFECT.to_owned()),
        ..Toleration::default()
    }
}

/// Whether `t` tolerates the virtual-node taint (`…/not-allowed=true:NoExecute`) forever.
pub fn tolerates_virtual_node(t: &Toleration) -> bool {
    if t.toleration_seconds.is_some() {
        return false;
    }
    let effect_ok = match t.effect.as_deref() {
        None | Some("") => true,
        Some(e) => e == VIRTUAL_NODE_TAINT_EFFECT,
    };
    if !effect_ok {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    match t.operator.as_deref().unwrap_or("Equal") {
        // An empty key with Exists matches every taint.
        "Exists" => key.is_empty() || key == VIRTUAL_NODE_TAINT_KEY,
        // Equal (also the default when the operator is empty).
        "Equal" | "" => {
            key == VIRTUAL_NODE_TAINT_KEY
                && t.value.as_deref().unwrap_or("") == VIRTUAL_NODE_TAINT_VALUE
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tol(
        key: Option<&str>,
        op: Option<&str>,
        value: Option<&str>,
        effect: Option<&str>,
    ) -> Toleration {
        Toleration {
            key: key.map(str::to_owned),
            operator: op.map(str::to_owned),
            value: value.map(str::to_owned),
            effect: effect.map(str::to_owned),
            toleration_seconds: None,
        }
    }

    #[test]
    fn recognises_equivalent_tolerations() {
        let k = Some(VIRTUAL_NODE_TAINT_KEY);
        let cases = [
            (tol(k, Some("Exists"), None, Some("NoExecute")), true),
            (tol(k, Some("Exists"), None, None), true),
            (tol(None, Some("Exists"), None, None), true),
            (tol(Some(""), Some("Exists"), None, Some("NoExecute")), true),
            (tol(k, Some("Equal"), Some("true"), Some("NoExecute")), true),
            (tol(k, None, Some("true"), None), true),
            (tol(k, Some("Equal"), Some("false"), None), false),
            (tol(k, Some("Exists"), None, Some("NoSchedule")), false),
            (tol(Some("other"), Some("Exists"), None, None), false),
            (tol(None, Some("Equal"), Some("true"), None), false),
            (tol(k, Some("Bogus"), None, None), false),
        ];
        for (t, want) in cases {
            assert_eq!(tolerates_virtual_node(&t), want, "{t:?}");
        }
    }

    #[test]
    fn bounded_toleration_does_not_count() {
        let mut t = virtual_node_toleration();
        assert!(tolerates_virtual_node(&t));
        t.toleration_seconds = Some(300);
        assert!(!tolerates_virtual_node(&t));
    }
}
