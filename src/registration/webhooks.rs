//! The webhook configurations that make the API server call nsoffload, and their
//! server-side apply.
//!
//! They are built from code rather than shipped as static YAML because the `caBundle` is only
//! known at run time with self-managed certificates, and changes when the CA rotates: at
//! start-up and after each rotation the caller applies them again. Server-side apply with
//! the field manager `nsoffload` creates or updates in one request and owns exactly the
//! fields set here. Before applying, each configuration is read: one that exists without
//! the `app.kubernetes.io/managed-by=nsoffload` label belongs to someone else (another
//! installation, a hand-made configuration) and nothing is changed.
//!
//! Choices that are not in the specification:
//! - The pod webhook has `reinvocationPolicy: IfNeeded`: if a later mutating webhook rewrites
//!   the pod's affinity or tolerations, nsoffload runs again and restores the constraints that
//!   keep the pod on selected clusters. The mutation is idempotent (SPEC §3), so a second call
//!   changes nothing otherwise, and costs a call only when another webhook changed the pod.
//! - The namespace webhook has `reinvocationPolicy: Never`: it adds one label that no other
//!   webhook has a reason to remove.
//! - nsoffload's own namespace is excluded with `kubernetes.io/metadata.name NotIn [own]`,
//!   as a `namespaceSelector` for namespaced resources and an `objectSelector` for Namespace
//!   objects. `NotIn` also matches objects without the label, so nothing else is excluded.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::ByteString;
mod apply;

pub use apply::{register, unregister_url, RegistrationError};

use super::{MANAGED_BY_LABEL, MANAGER};
use crate::admission::Webhook;
use crate::api::consts::{OFFLOADING_ENABLED_LABEL, SCHEDULING_ENABLED_LABEL};

/// Name of both webhook configurations.
pub const CONFIGURATION_NAME: &str = "nsoffload";
/// The pod mutation webhook.
pub const POD_WEBHOOK: &str = "pod.mutate.nsoffload.liqo.io";
/// The namespace mutation webhook (quick offloading).
pub const NAMESPACE_WEBHOOK: &str = "namespace.mutate.nsoffload.liqo.io";
/// The NamespaceOffloading validation webhook.
pub const NSOFF_WEBHOOK: &str = "namespaceoffloading.validate.nsoffload.liqo.io";
/// Path of the pod mutation endpoint (the router's).
pub const MUTATE_POD_PATH: &str = Webhook::MutatePod.path();
/// Path of the namespace mutation endpoint (the router's).
pub const MUTATE_NAMESPACE_PATH: &str = Webhook::MutateNamespace.path();
/// Path of the NamespaceOffloading validation endpoint (the router's).
pub const VALIDATE_NSOFF_PATH: &str = Webhook::ValidateNamespaceOffloading.path();
/// Label the API server sets on every namespace to its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// How long the API server waits for an answer.
const TIMEOUT_SECONDS: i32 = 5;

/// Where the API server reaches the webhook server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// In the cluster, through a Service.
    Service {
        /// The Service's namespace.
        namespace: String,
        /// The Service's name.
        name: String,
        /// The Service's port.
        port: i32,
    },
    /// Outside the cluster (`--webhook-url`): a base URL such as `https://host:8443`; the
    /// endpoint paths are appended to it.
    Url(String),
}

fn client_config(ca_bundle_pem: &str, endpoint: &Endpoint, path: &str) -> WebhookClientConfig {
    let ca_bundle = Some(ByteString(ca_bundle_pem.as_bytes().to_vec()));
    match endpoint {
        Endpoint::Service {
            namespace,
            name,
            port,
        } => WebhookClientConfig {
            ca_bundle,
            service: Some(ServiceReference {
                name: name.clone(),
                namespace: namespace.clone(),
                path: Some(path.to_owned()),
                port: Some(*port),
            }),
            url: None,
        },
        Endpoint::Url(base) => WebhookClientConfig {
            ca_bundle,
            service: None,
            url: Some(format!("{}{path}", base.trim_end_matches('/'))),
        },
    }
}

fn requirement(key: &str, operator: &str, value: &str) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: Some(vec![value.to_owned()]),
    }
}

/// Objects labelled `label=true`, except the one named / in the namespace `own_namespace`.
fn selector(label: &str, own_namespace: &str) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![
            requirement(label, "In", "true"),
            requirement(NAMESPACE_NAME_LABEL, "NotIn", own_namespace),
        ]),
        match_labels: None,
    }
}

fn rule(
    group: &str,
    version: &str,
    resource: &str,
    ops: &[&str],
    scope: &str,
) -> RuleWithOperations {
    let one = |s: &str| Some(vec![s.to_owned()]);
    RuleWithOperations {
        api_groups: one(group),
        api_versions: one(version),
        operations: Some(ops.iter().map(|&o| o.to_owned()).collect()),
        resources: one(resource),
        scope: Some(scope.to_owned()),
    }
}

fn metadata() -> ObjectMeta {
    ObjectMeta {
        name: Some(CONFIGURATION_NAME.to_owned()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY_LABEL.to_owned(),
            MANAGER.to_owned(),
        )])),
        ..Default::default()
    }
}

fn mutating_webhook(name: &str, client_config: WebhookClientConfig) -> MutatingWebhook {
    MutatingWebhook {
        name: name.to_owned(),
        admission_review_versions: vec!["v1".to_owned()],
        client_config,
        failure_policy: Some("Fail".to_owned()),
        match_policy: Some("Equivalent".to_owned()),
        side_effects: "None".to_owned(),
        timeout_seconds: Some(TIMEOUT_SECONDS),
        ..Default::default()
    }
}

/// The MutatingWebhookConfiguration `nsoffload`: pods on CREATE in namespaces labelled
/// `liqo.io/scheduling-enabled=true`, and namespaces labelled `liqo.io/enabled=true` on
/// CREATE and UPDATE; `own_namespace` excluded from both.
pub fn mutating_configuration(
    ca_bundle_pem: &str,
    endpoint: &Endpoint,
    own_namespace: &str,
) -> MutatingWebhookConfiguration {
    let pod = MutatingWebhook {
        namespace_selector: Some(selector(SCHEDULING_ENABLED_LABEL, own_namespace)),
        reinvocation_policy: Some("IfNeeded".to_owned()),
        rules: Some(vec![rule("", "v1", "pods", &["CREATE"], "Namespaced")]),
        ..mutating_webhook(
            POD_WEBHOOK,
            client_config(ca_bundle_pem, endpoint, MUTATE_POD_PATH),
        )
    };
    let namespace = MutatingWebhook {
        object_selector: Some(selector(OFFLOADING_ENABLED_LABEL, own_namespace)),
        reinvocation_policy: Some("Never".to_owned()),
        rules: Some(vec![rule(
            "",
            "v1",
            "namespaces",
            &["CREATE", "UPDATE"],
            "Cluster",
        )]),
        ..mutating_webhook(
            NAMESPACE_WEBHOOK,
            client_config(ca_bundle_pem, endpoint, MUTATE_NAMESPACE_PATH),
        )
    };
    MutatingWebhookConfiguration {
        metadata: metadata(),
        webhooks: Some(vec![pod, namespace]),
    }
}

/// The ValidatingWebhookConfiguration `nsoffload`: namespaceoffloadings on CREATE and UPDATE,
/// `own_namespace` excluded.
pub fn validating_configuration(
    ca_bundle_pem: &str,
    endpoint: &Endpoint,
    own_namespace: &str,
) -> ValidatingWebhookConfiguration {
    let nsoff = ValidatingWebhook {
        name: NSOFF_WEBHOOK.to_owned(),
        admission_review_versions: vec!["v1".to_owned()],
        client_config: client_config(ca_bundle_pem, endpoint, VALIDATE_NSOFF_PATH),
        failure_policy: Some("Fail".to_owned()),
        match_policy: Some("Equivalent".to_owned()),
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![requirement(
                NAMESPACE_NAME_LABEL,
                "NotIn",
                own_namespace,
            )]),
            match_labels: None,
        }),
        rules: Some(vec![rule(
            "offloading.liqo.io",
            "v1beta1",
            "namespaceoffloadings",
            &["CREATE", "UPDATE"],
            "Namespaced",
        )]),
        side_effects: "None".to_owned(),
        timeout_seconds: Some(TIMEOUT_SECONDS),
        ..Default::default()
    };
    ValidatingWebhookConfiguration {
        metadata: metadata(),
        webhooks: Some(vec![nsoff]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Webhook;

    #[test]
    fn paths_match_the_router() {
        assert_eq!(Webhook::MutatePod.path(), MUTATE_POD_PATH);
        assert_eq!(
            Webhook::ValidateNamespaceOffloading.path(),
            VALIDATE_NSOFF_PATH
        );
    }

    #[test]
    fn url_endpoint_joins_paths_without_double_slashes() {
        for base in ["https://h:8443", "https://h:8443/"] {
            let c = client_config("x", &Endpoint::Url(base.into()), MUTATE_POD_PATH);
            assert_eq!(c.url.as_deref(), Some("https://h:8443/mutate/pod"));
        }
    }
}
