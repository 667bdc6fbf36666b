//! The virtual-node toleration, and whether a pod already has an equivalent one.
//!
//! The reference appended the toleration on every admission, so a pod that already tolerated
//! virtual nodes (by hand, or because it went through the webhook twice) got duplicates. Here
//! the check follows the Kubernetes rules for "does this toleration tolerate that taint",
//! including the wildcard `operator: Exists` with no key, and refuses bounded tolerations:
//! a `tolerationSeconds` would still get the pod evicted from a virtual node.
//!
//! The same rule ([`tolerates`]) decides, for `explain`, which node taints a pod tolerates, so
//! the webhook and the explanation cannot disagree on what a toleration covers.

use k8s_openapi::api::core::v1::{Taint, Toleration};

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
    t.toleration_seconds.is_none()
        && tolerates_parts(
            t,
            VIRTUAL_NODE_TAINT_KEY,
            VIRTUAL_NODE_TAINT_VALUE,
            VIRTUAL_NODE_TAINT_EFFECT,
        )
}

/// Whether `t` tolerates `taint` by the Kubernetes rules: the effect is empty or equal; with
/// `Exists` the key is empty (every taint) or equal; with `Equal` (also an empty operator) key
/// and value are equal (a missing value is `""`). `tolerationSeconds` is not judged here: a
/// bounded toleration still lets the scheduler place the pod, it only limits how long the pod
/// stays once a `NoExecute` taint applies.
pub(super) fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    tolerates_parts(
        t,
        &taint.key,
        taint.value.as_deref().unwrap_or(""),
        &taint.effect,
    )
}

/// [`tolerates`] on borrowed parts, so the webhook's hot path builds no `Taint`.
fn tolerates_parts(t: &Toleration, key: &str, value: &str, effect: &str) -> bool {
    let effect_ok = match t.effect.as_deref() {
        None | Some("") => true,
        Some(e) => e == effect,
    };
    if !effect_ok {
        return false;
    }
    let t_key = t.key.as_deref().unwrap_or("");
    match t.operator.as_deref().unwrap_or("Equal") {
        // An empty key with Exists matches every taint.
        "Exists" => t_key.is_empty() || t_key == key,
        // Equal (also the default when the operator is empty).
        "Equal" | "" => t_key == key && t.value.as_deref().unwrap_or("") == value,
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

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.to_owned(),
            value: value.map(str::to_owned),
            effect: effect.to_owned(),
            time_added: None,
        }
    }

    #[test]
    fn tolerates_any_taint_by_the_kubernetes_rules() {
        let gpu = taint("gpu", Some("yes"), "NoSchedule");
        let bare = taint("dedicated", None, "NoExecute");
        let cases = [
            (
                tol(Some("gpu"), Some("Equal"), Some("yes"), Some("NoSchedule")),
                &gpu,
                true,
            ),
            (tol(Some("gpu"), None, Some("yes"), None), &gpu, true),
            (
                tol(Some("gpu"), Some("Equal"), Some("no"), None),
                &gpu,
                false,
            ),
            (tol(Some("gpu"), Some("Exists"), None, None), &gpu, true),
            (
                tol(Some("gpu"), Some("Exists"), None, Some("NoExecute")),
                &gpu,
                false,
            ),
            (tol(None, Some("Exists"), None, None), &gpu, true),
            (
                tol(None, Some("Exists"), None, Some("NoExecute")),
                &bare,
                true,
            ),
            (tol(Some("other"), Some("Exists"), None, None), &gpu, false),
            (
                tol(Some("dedicated"), Some("Equal"), None, None),
                &bare,
                true,
            ),
            (
                tol(Some("dedicated"), Some("Equal"), Some(""), None),
                &bare,
                true,
            ),
            (
                tol(Some("dedicated"), Some("Lt"), Some("1"), None),
                &bare,
                false,
            ),
        ];
        for (t, taint, want) in cases {
            assert_eq!(tolerates(&t, taint), want, "{t:?} vs {taint:?}");
        }
        // A bounded toleration still tolerates for scheduling.
        let mut t = tol(Some("dedicated"), Some("Exists"), None, None);
        t.toleration_seconds = Some(60);
        assert!(tolerates(&t, &bare));
    }

    #[test]
    fn virtual_node_check_is_the_general_rule_on_its_taint() {
        let tv = taint(
            VIRTUAL_NODE_TAINT_KEY,
            Some(VIRTUAL_NODE_TAINT_VALUE),
            VIRTUAL_NODE_TAINT_EFFECT,
        );
        let k = Some(VIRTUAL_NODE_TAINT_KEY);
        for t in [
            tol(k, Some("Exists"), None, None),
            tol(None, Some("Exists"), None, None),
            tol(k, Some("Equal"), Some("false"), None),
            tol(k, Some("Exists"), None, Some("NoSchedule")),
            tol(Some("x"), None, Some("true"), None),
        ] {
            assert_eq!(tolerates_virtual_node(&t), tolerates(&t, &tv), "{t:?}");
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
