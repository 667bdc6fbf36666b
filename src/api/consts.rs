//! Names shared with users' manifests and with Liqo: labels, annotations, keys.
//!
//! They live in one place because every one of them is part of the contract (SPEC §1): a typo
//! here would silently stop pods from being offloaded, so tests and code refer to these
//! constants rather than repeating the strings.

/// The only accepted NamespaceOffloading name in a namespace.
pub const NSOFF_NAME: &str = "offloading";
/// Namespace label that turns the pod webhook on (value `true`).
pub const SCHEDULING_ENABLED_LABEL: &str = "liqo.io/scheduling-enabled";
/// Namespace label for quick offloading (value `true`).
pub const OFFLOADING_ENABLED_LABEL: &str = "liqo.io/enabled";
/// Label key marking virtual nodes.
pub const VIRTUAL_NODE_LABEL: &str = "liqo.io/type";
/// Value of [`VIRTUAL_NODE_LABEL`] on virtual nodes.
pub const VIRTUAL_NODE_VALUE: &str = "virtual-node";
/// Cluster id label on virtual nodes, credential secrets and twin namespaces.
pub const REMOTE_CLUSTER_ID_LABEL: &str = "liqo.io/remote-cluster-id";
/// Taint key of virtual nodes, and key of the toleration added to offloadable pods.
pub const VIRTUAL_NODE_TAINT_KEY: &str = "virtual-node.liqo.io/not-allowed";
/// Value of the virtual-node taint.
pub const VIRTUAL_NODE_TAINT_VALUE: &str = "true";
/// Effect of the virtual-node taint and of its toleration.
pub const VIRTUAL_NODE_TAINT_EFFECT: &str = "NoExecute";
/// Default RuntimeClass that forces remote scheduling.
pub const DEFAULT_RUNTIME_CLASS: &str = "liqo";
/// Finalizer set on NamespaceOffloadings by the reconciler.
pub const NSOFF_FINALIZER: &str = "namespaceoffloading-controller.liqo.io/finalizer";
/// Annotation on twin namespaces: the local namespace name.
pub const ORIGINAL_NAME_ANNOTATION: &str = "liqo.io/original-name";
/// Annotation on twin namespaces: `<home-cluster-id>/<local-namespace>`.
pub const OWNER_ANNOTATION: &str = "offloading.liqo.io/owner";
/// Annotation on NamespaceOffloadings created by quick offloading.
pub const CREATED_BY_LABEL_ANNOTATION: &str = "offloading.liqo.io/created-by-label";
/// Annotation that lets a user release the finalizer without unreachable clusters.
pub const ORPHAN_UNREACHABLE_ANNOTATION: &str = "offloading.liqo.io/orphan-unreachable";
/// Annotation `evict namespace` sets on a NamespaceOffloading (the time) after evicting its
/// pods, so the reconciler judges them again at once rather than at the next resync.
pub const PODS_EVICTED_ANNOTATION: &str = "offloading.liqo.io/pods-evicted-at";
/// Label that lets objects skip some webhooks; it never bypasses nsoff validation.
pub const WEBHOOK_SKIP_LABEL: &str = "liqo.io/webhook-skip";
