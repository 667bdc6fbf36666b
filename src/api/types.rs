//! NamespaceOffloading spec and status (SPEC §2).
//!
//! Enums are closed on purpose: the generated CRD lists their values so the API server rejects
//! anything else. The webhook still parses incoming objects leniently (see
//! `policy::validate`) so that it can answer a bad value with a message rather than a parse
//! error. The phase is optional because an object that was never processed has no phase (Liqo
//! writes `""`, which reads as `None` here).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::core::v1::NodeSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Desired offloading of one namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "offloading.liqo.io",
    version = "v1beta1",
    kind = "NamespaceOffloading",
    plural = "namespaceoffloadings",
    namespaced,
    status = "NamespaceOffloadingStatus",
    category = "liqo",
    shortname = "nso",
    shortname = "nsof",
    shortname = "nsoff",
    shortname = "nsoffloading",
    printcolumn = r#"{"name":"NamespaceMappingStrategy","type":"string","jsonPath":".spec.namespaceMappingStrategy"}"#,
    printcolumn = r#"{"name":"PodOffloadingStrategy","type":"string","jsonPath":".spec.podOffloadingStrategy"}"#,
    printcolumn = r#"{"name":"OffloadingPhase","type":"string","jsonPath":".status.offloadingPhase"}"#,
    printcolumn = r#"{"name":"RemoteNamespaceName","type":"string","jsonPath":".status.remoteNamespaceName","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceOffloadingSpec {
    /// How the twin namespace is named on remote clusters; immutable.
    #[serde(default)]
    pub namespace_mapping_strategy: NamespaceMappingStrategy,
    /// Twin namespace name; required with `SelectedName`, ignored otherwise; immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_namespace_name: Option<String>,
    /// Where the namespace's pods may run.
    #[serde(default)]
    pub pod_offloading_strategy: PodOffloadingStrategy,
    /// Which remote clusters get a twin namespace; absent or zero terms means every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<NodeSelector>,
}

impl NamespaceOffloadingSpec {
    /// The selector's terms; empty when there is no selector (every remote cluster).
    pub fn selector_terms(&self) -> &[k8s_openapi::api::core::v1::NodeSelectorTerm] {
        self.cluster_selector
            .as_ref()
            .map_or(&[], |s| s.node_selector_terms.as_slice())
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? } default $default:ident) => {
        $(#[$meta])*
        #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every accepted value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every accepted value as written in manifests, in declaration order.
            pub fn names() -> Vec<&'static str> {
                $name::ALL.iter().map(|v| v.as_str()).collect()
            }
            /// The value as written in manifests.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }
        }
        impl Default for $name {
            fn default() -> Self { $name::$default }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| UnknownValue {
                    value: s.to_owned(),
                    allowed: $name::names().join(", "),
                })
            }
        }
    };
}

/// A value that is not one of an enum's accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {value:?}; allowed values: {allowed}")]
pub struct UnknownValue {
    /// What was given.
    pub value: String,
    /// The accepted values, comma separated.
    pub allowed: String,
}

string_enum! {
    /// How a twin namespace is named.
    NamespaceMappingStrategy {
        /// `<local-namespace>-<home-cluster-id>`.
        DefaultName,
        /// The local namespace name.
        EnforceSameName,
        /// `spec.remoteNamespaceName`.
        SelectedName,
    } default DefaultName
}

string_enum! {
    /// Where the namespace's pods may run.
    PodOffloadingStrategy {
        /// On local nodes and on selected remote clusters.
        LocalAndRemote,
        /// Only on selected remote clusters.
        Remote,
        /// Only on local nodes.
        Local,
    } default LocalAndRemote
}

string_enum! {
    /// Summary of the twin namespaces' state.
    OffloadingPhase {
        /// Every selected twin namespace is ready.
        Ready,
        /// No remote cluster matches the selector.
        NoClusterSelected,
        /// Twins are being created.
        InProgress,
        /// Some selected twins failed.
        SomeFailed,
        /// Every selected twin failed.
        AllFailed,
        /// The NamespaceOffloading is being deleted.
        Terminating,
    } default InProgress
}

/// Observed state, written by the reconciler.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceOffloadingStatus {
    /// Summary phase; absent (or `""`) until the reconciler has processed the object.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub offloading_phase: Option<OffloadingPhase>,
    /// The twin namespace name computed from the mapping strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_namespace_name: Option<String>,
    /// Remote cluster id → conditions of its twin namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_namespaces_conditions: BTreeMap<String, Vec<RemoteNamespaceCondition>>,
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard top-level conditions (`SelectorValid`, `Ready`, and `PodsCompliant` once the
    /// pods of a ready namespace were judged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One condition of a twin namespace on one remote cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteNamespaceCondition {
    /// `OffloadingRequired` or `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When status or reason last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffloadingPhase>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}
