//! The vocabulary of a NamespaceOffloading's status and Events: condition types, their
//! reasons and the reasons of the Events the reconciler records (SPEC §2, §7, §12).
//!
//! Writers (the reconciler) and readers (`offload` progress, `explain`, the e2e suites) must
//! agree on every one of these strings, and users match them in `kubectl wait` and alerts, so
//! they are part of the API next to the types rather than private to the reconciler.

/// Condition type: per cluster, whether the cluster is selected.
pub const OFFLOADING_REQUIRED: &str = "OffloadingRequired";
/// Condition type: per cluster, whether the twin exists; top level, whether offloading is ready.
pub const READY: &str = "Ready";
/// Top-level condition type: whether the cluster selector could be used.
pub const SELECTOR_VALID: &str = "SelectorValid";
/// Top-level condition type: whether the namespace's pods follow the policy (SPEC §12).
pub const PODS_COMPLIANT: &str = "PodsCompliant";

/// A condition's status when it holds.
pub const TRUE: &str = "True";
/// A condition's status when it does not hold.
pub const FALSE: &str = "False";

/// Condition reasons (SPEC §2's catalogue and §12).
pub mod reason {
    /// The cluster matches the selector.
    pub const CLUSTER_SELECTED: &str = "ClusterSelected";
    /// The cluster does not match the selector.
    pub const CLUSTER_NOT_SELECTED: &str = "ClusterNotSelected";
    /// The twin namespace exists and is ours.
    pub const NAMESPACE_CREATED: &str = "NamespaceCreated";
    /// Selected, not created yet.
    pub const CREATING: &str = "Creating";
    /// Creation fails; the message carries the cause.
    pub const CREATION_LOOP_BACK_OFF: &str = "CreationLoopBackOff";
    /// The twin namespace is being deleted.
    pub const TERMINATING: &str = "Terminating";
    /// The selector parses.
    pub const VALID: &str = "Valid";
    /// The selector does not parse.
    pub const INVALID_SELECTOR: &str = "InvalidSelector";
    /// Every running pod follows the policy.
    pub const PODS_FOLLOW_POLICY: &str = "PodsFollowPolicy";
    /// Some pods do not follow the policy; the message counts and names them.
    pub const PODS_VIOLATE_POLICY: &str = "PodsViolatePolicy";
}

/// Reasons of the Events recorded on NamespaceOffloadings, besides the phases' names (an
/// Event per phase transition carries the new phase as its reason) and
/// [`reason::INVALID_SELECTOR`] and [`reason::PODS_VIOLATE_POLICY`].
pub mod event {
    /// A twin namespace became ready on a cluster.
    pub const TWIN_READY: &str = "TwinReady";
    /// A twin namespace could not be created on a cluster (Warning).
    pub const TWIN_FAILED: &str = "TwinFailed";
    /// A twin namespace is being deleted on a cluster.
    pub const TWIN_DELETING: &str = "TwinDeleting";
    /// A twin namespace could not be deleted on a cluster (Warning).
    pub const TWIN_DELETION_FAILED: &str = "TwinDeletionFailed";
    /// The finalizer was released without deleting twins on unreachable clusters (Warning).
    pub const ORPHANED_UNREACHABLE: &str = "OrphanedUnreachable";
}
