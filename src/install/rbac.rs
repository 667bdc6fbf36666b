//! Least-privilege RBAC for the server.
//!
//! Cluster-wide: NamespaceOffloadings are read by admission and reconciled (finalizer and
//! status patches; create/delete only for quick offloading); Namespaces are read and patched
//! (the scheduling label only); virtual Nodes are read; Pods are listed, namespace by
//! namespace, to report those that no longer follow the policy (never watched, never
//! written: evicting them is the `evict` command's, run by a person); Events are written. The two webhook
//! configurations are managed by name (`get`/`patch`/`update` limited to `nsoffload`;
//! `create` cannot be limited by name in Kubernetes RBAC, so it is granted on the kind, and
//! the server still never touches a configuration it does not own). No Secret is readable
//! outside nsoffload's own namespace. There, it keeps the certificate Secret (by name except
//! for `create`), watches the remote-cluster credential Secrets, and holds the
//! leader-election Lease (by name except for `create`).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{labels, yaml_docs, NAME, NAMESPACE, TLS_SECRET};
use crate::registration::webhooks::CONFIGURATION_NAME;

/// The leader-election Lease (the `serve` default of `--lease-name`).
pub const LEASE_NAME: &str = "nsoffload-reconciler";

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        resource_names: (!names.is_empty()).then(|| strings(names)),
        non_resource_urls: None,
    }
}

fn meta(namespaced: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(NAME.to_owned()),
        namespace: namespaced.then(|| NAMESPACE.to_owned()),
        labels: Some(labels()),
        ..ObjectMeta::default()
    }
}

fn subjects() -> Option<Vec<Subject>> {
    Some(vec![Subject {
        kind: "ServiceAccount".to_owned(),
        name: NAME.to_owned(),
        namespace: Some(NAMESPACE.to_owned()),
        api_group: None,
    }])
}

/// The cluster-wide rules.
pub(super) fn cluster_rules() -> Vec<PolicyRule> {
    let webhooks = [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ];
    vec![
        rule(
            &["offloading.liqo.io"],
            &["namespaceoffloadings"],
            &["get", "list", "watch", "patch", "create", "delete"],
            &[],
        ),
        rule(
            &["offloading.liqo.io"],
            &["namespaceoffloadings/status"],
            &["patch"],
            &[],
        ),
        rule(
            &[""],
            &["namespaces"],
            &["get", "list", "watch", "patch"],
            &[],
        ),
        rule(&[""], &["nodes"], &["get", "list", "watch"], &[]),
        // One paginated list per offloaded namespace and resync (SPEC §12); no watch.
        rule(&[""], &["pods"], &["list"], &[]),
        rule(&["events.k8s.io"], &["events"], &["create", "patch"], &[]),
        rule(
            &["admissionregistration.k8s.io"],
            &webhooks,
            &["get", "patch", "update"],
            &[CONFIGURATION_NAME],
        ),
        rule(
            &["admissionregistration.k8s.io"],
            &webhooks,
            &["create"],
            &[],
        ),
    ]
}

/// The rules in nsoffload's own namespace.
pub(super) fn namespace_rules() -> Vec<PolicyRule> {
    vec![
        rule(&[""], &["secrets"], &["get", "update"], &[TLS_SECRET]),
        rule(&[""], &["secrets"], &["create", "list", "watch"], &[]),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["get", "update"],
            &[LEASE_NAME],
        ),
        rule(&["coordination.k8s.io"], &["leases"], &["create"], &[]),
    ]
}

/// ServiceAccount, ClusterRole and Role with their bindings.
pub(super) fn yaml(header: &str) -> String {
    let role_ref = |kind: &str| RoleRef {
        api_group: "rbac.authorization.k8s.io".to_owned(),
        kind: kind.to_owned(),
        name: NAME.to_owned(),
    };
    let docs = [
        serde_yaml::to_value(ServiceAccount {
            metadata: meta(true),
            ..ServiceAccount::default()
        }),
        serde_yaml::to_value(ClusterRole {
            metadata: meta(false),
            rules: Some(cluster_rules()),
            aggregation_rule: None,
        }),
        serde_yaml::to_value(ClusterRoleBinding {
            metadata: meta(false),
            role_ref: role_ref("ClusterRole"),
            subjects: subjects(),
        }),
        serde_yaml::to_value(Role {
            metadata: meta(true),
            rules: Some(namespace_rules()),
        }),
        serde_yaml::to_value(RoleBinding {
            metadata: meta(true),
            role_ref: role_ref("Role"),
            subjects: subjects(),
        }),
    ];
    yaml_docs(
        header,
        &docs.into_iter().filter_map(Result::ok).collect::<Vec<_>>(),
    )
}
