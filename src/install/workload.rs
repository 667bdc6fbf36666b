//! The workload objects: Namespace, ConfigMap, Deployment, Service, PodDisruptionBudget and
//! the `liqo` RuntimeClass.
//!
//! The Deployment runs two replicas by default (every replica serves admission, so one can
//! restart while the other answers; only the holder of the leader-election Lease reconciles),
//! as a non-root user with a read-only root filesystem and no capabilities, probed on the
//! admin port. The PodDisruptionBudget lets one replica go at a time: with two or more, one
//! keeps answering during drains; with one, node drains are not blocked forever.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapKeySelector, Container, ContainerPort, EnvVar,
    EnvVarSource, HTTPGetAction, Namespace, ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Service, ServicePort, ServiceSpec, Toleration, WeightedPodAffinityTerm,
};
use k8s_openapi::api::node::v1::{RuntimeClass, Scheduling};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{labels, Options, ADMIN_PORT, NAME, NAMESPACE, WEBHOOK_PORT};
use crate::api::consts::{DEFAULT_RUNTIME_CLASS, VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE};
use crate::policy::virtual_node_toleration;

fn meta(name: &str, namespaced: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespaced.then(|| NAMESPACE.to_owned()),
        labels: Some(labels()),
        ..ObjectMeta::default()
    }
}

fn selector_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_owned(), NAME.to_owned())])
}

/// The namespace, labelled with its own name so the webhooks' namespace selectors can exclude
/// it also on API servers older than 1.21 (which do not set that label themselves).
pub(super) fn namespace() -> Namespace {
    let mut m = meta(NAMESPACE, false);
    m.labels.get_or_insert_with(BTreeMap::new).insert(
        "kubernetes.io/metadata.name".to_owned(),
        NAMESPACE.to_owned(),
    );
    Namespace {
        metadata: m,
        ..Namespace::default()
    }
}

/// The installation's settings: the home cluster id (an overlay merges its own value in with
/// kustomize's `configMapGenerator`, `behavior: merge`).
pub(super) fn config_map(cluster_id: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(NAME, true),
        data: Some(BTreeMap::from([(
            "cluster-id".to_owned(),
            cluster_id.to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

fn probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("admin".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_owned(), Quantity(cpu.to_owned())),
        ("memory".to_owned(), Quantity(memory.to_owned())),
    ])
}

fn container(image: &str) -> Container {
    let port = |name: &str, port: i32| ContainerPort {
        name: Some(name.to_owned()),
        container_port: port,
        ..ContainerPort::default()
    };
    Container {
        name: NAME.to_owned(),
        image: Some(image.to_owned()),
        args: Some(vec!["serve".to_owned()]),
        env: Some(vec![
            EnvVar {
                name: "NSOFFLOAD_CLUSTER_ID".to_owned(),
                value_from: Some(EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: NAME.to_owned(),
                        key: "cluster-id".to_owned(),
                        optional: None,
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
            field_env("NSOFFLOAD_NAMESPACE", "metadata.namespace"),
            // Names this replica in the leader-election Lease and in Events.
            field_env("POD_NAME", "metadata.name"),
            env("NSOFFLOAD_BIND_ADDRESS", &format!("0.0.0.0:{WEBHOOK_PORT}")),
            env("NSOFFLOAD_ADMIN_ADDRESS", &format!("0.0.0.0:{ADMIN_PORT}")),
            env("NSOFFLOAD_LOG_FORMAT", "json"),
        ]),
        ports: Some(vec![
            port("webhook", WEBHOOK_PORT),
            port("admin", ADMIN_PORT),
        ]),
        liveness_probe: Some(probe("/livez")),
        readiness_probe: Some(probe("/readyz")),
        resources: Some(ResourceRequirements {
            requests: Some(quantities("50m", "64Mi")),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity("256Mi".to_owned()),
            )])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The ConfigMap and the Deployment of `options`.
pub(super) fn deployment(options: &Options) -> Vec<serde_yaml::Value> {
    let pod = PodSpec {
        service_account_name: Some(NAME.to_owned()),
        containers: vec![container(&options.image)],
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 100,
                        pod_affinity_term: PodAffinityTerm {
                            label_selector: Some(LabelSelector {
                                match_labels: Some(selector_labels()),
                                match_expressions: None,
                            }),
                            topology_key: "kubernetes.io/hostname".to_owned(),
                            ..PodAffinityTerm::default()
                        },
                    },
                ]),
                ..PodAntiAffinity::default()
            }),
            ..Affinity::default()
        }),
        termination_grace_period_seconds: Some(super::TERMINATION_GRACE_SECONDS),
        ..PodSpec::default()
    };
    let deployment = Deployment {
        metadata: meta(NAME, true),
        spec: Some(DeploymentSpec {
            replicas: Some(options.replicas),
            selector: LabelSelector {
                match_labels: Some(selector_labels()),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };
    [
        serde_yaml::to_value(config_map(&options.cluster_id)),
        serde_yaml::to_value(deployment),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect()
}

/// The Service the API server calls (443 → the webhook port).
pub(super) fn service() -> Service {
    Service {
        metadata: meta(NAME, true),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels()),
            ports: Some(vec![ServicePort {
                name: Some("webhook".to_owned()),
                port: super::SERVICE_PORT,
                target_port: Some(IntOrString::String("webhook".to_owned())),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Lets one replica go at a time during voluntary disruptions, whatever the replica count.
pub(super) fn pod_disruption_budget() -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(NAME, true),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels()),
                match_expressions: None,
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// The RuntimeClass that forces pods onto virtual nodes (SPEC §10).
pub(super) fn runtime_class() -> RuntimeClass {
    let tv: Toleration = virtual_node_toleration();
    RuntimeClass {
        metadata: meta(DEFAULT_RUNTIME_CLASS, false),
        handler: DEFAULT_RUNTIME_CLASS.to_owned(),
        scheduling: Some(Scheduling {
            node_selector: Some(BTreeMap::from([(
                VIRTUAL_NODE_LABEL.to_owned(),
                VIRTUAL_NODE_VALUE.to_owned(),
            )])),
            tolerations: Some(vec![tv]),
        }),
        overhead: None,
    }
}
