//! The NamespaceOffloading an `offload namespace` invocation asks for, built without I/O.
//!
//! The command declares the whole offloading, as `kubectl apply` does with a file: a mutable
//! field left out takes its default (`LocalAndRemote`; no `--selector` is zero terms, every
//! cluster). The selector is always sent, even with zero terms, so that one written by someone
//! else is replaced too. The mapping strategy and the remote namespace name are immutable:
//! when left out, an existing object's values are kept (so re-running the command with other
//! flags just works); when given and different, the command refuses before sending anything
//! and says how to change them (unoffload first), instead of leaving the user with the
//! webhook's denial. `--remote-namespace-name` alone implies `SelectedName`, the only strategy
//! that uses it.

use k8s_openapi::api::core::v1::NodeSelector;
use kube::api::ObjectMeta;

use super::CtlError;
use crate::api::consts::NSOFF_NAME;
use crate::api::{
    NamespaceMappingStrategy, NamespaceOffloading, NamespaceOffloadingSpec, PodOffloadingStrategy,
};
use crate::policy::label_selector::parse_cluster_selector;
use crate::policy::naming::check_dns1123_label;

/// The flags of `offload namespace`, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--namespace-mapping-strategy`.
    pub mapping: Option<NamespaceMappingStrategy>,
    /// `--remote-namespace-name`.
    pub remote_namespace_name: Option<String>,
    /// `--pod-offloading-strategy`.
    pub pod: Option<PodOffloadingStrategy>,
    /// Every `--selector`, in order.
    pub selectors: Vec<String>,
}

/// Checked flags: what every named namespace should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    mapping: Option<NamespaceMappingStrategy>,
    remote_namespace_name: Option<String>,
    pod: PodOffloadingStrategy,
    selector: NodeSelector,
    /// The namespaces, in the order given, without repeats.
    pub namespaces: Vec<String>,
}

impl Intent {
    /// Checks the flags against each other and the namespace names.
    pub fn new(flags: Flags, namespaces: &[String]) -> Result<Intent, CtlError> {
        let invalid = |m: String| Err(CtlError::Invalid(m));
        let mut unique: Vec<String> = Vec::new();
        for ns in namespaces {
            if let Err(e) = check_dns1123_label(ns) {
                return invalid(format!("{ns:?} is not a namespace name: it {e}"));
            }
            if !unique.contains(ns) {
                unique.push(ns.clone());
            }
        }
        if unique.is_empty() {
            return invalid("name at least one namespace".to_owned());
        }
        if let Some(name) = &flags.remote_namespace_name {
            if unique.len() > 1 {
                return invalid(format!(
                    "--remote-namespace-name gives one remote name, but {} namespaces are named; \
                     offload them one at a time",
                    unique.len()
                ));
            }
            if let Some(m) = flags
                .mapping
                .filter(|m| *m != NamespaceMappingStrategy::SelectedName)
            {
                return invalid(format!(
                    "--remote-namespace-name is used only with --namespace-mapping-strategy \
                     SelectedName, not {m}"
                ));
            }
            if let Err(e) = check_dns1123_label(name) {
                return invalid(format!(
                    "--remote-namespace-name {name:?} is not a namespace name: it {e}"
                ));
            }
        }
        let selector = parse_cluster_selector(&flags.selectors)
            .map_err(|e| CtlError::Invalid(format!("--selector: {e}")))?;
        let mapping = flags.mapping.or_else(|| {
            flags
                .remote_namespace_name
                .as_ref()
                .map(|_| NamespaceMappingStrategy::SelectedName)
        });
        // Asking for SelectedName is asking to choose the name: without one, the flags are
        // incomplete, whatever an existing object says.
        if mapping == Some(NamespaceMappingStrategy::SelectedName)
            && flags.remote_namespace_name.is_none()
        {
            return invalid(
                "--namespace-mapping-strategy SelectedName needs --remote-namespace-name"
                    .to_owned(),
            );
        }
        Ok(Intent {
            mapping,
            remote_namespace_name: flags.remote_namespace_name,
            pod: flags.pod.unwrap_or_default(),
            selector,
            namespaces: unique,
        })
    }

    /// The object to apply in `namespace`, given the spec already there (if any).
    pub fn object(
        &self,
        namespace: &str,
        existing: Option<&NamespaceOffloadingSpec>,
    ) -> Result<NamespaceOffloading, CtlError> {
        let mapping = self
            .mapping
            .or(existing.map(|e| e.namespace_mapping_strategy))
            .unwrap_or_default();
        let existing_remote = existing
            .and_then(|e| e.remote_namespace_name.clone())
            .filter(|n| !n.is_empty());
        let remote = self
            .remote_namespace_name
            .clone()
            .or(existing_remote.clone());
        let immutable = |message: String| {
            Err(CtlError::Immutable {
                namespace: namespace.to_owned(),
                message,
            })
        };
        if let Some(e) = existing {
            if e.namespace_mapping_strategy != mapping {
                return immutable(format!(
                    "it is offloaded with namespace mapping strategy {}, which cannot change; \
                     to use {mapping}, unoffload it first",
                    e.namespace_mapping_strategy
                ));
            }
            if existing_remote != remote {
                return immutable(format!(
                    "it is offloaded with remote namespace name {:?}, which cannot change; to \
                     use {:?}, unoffload it first",
                    existing_remote.unwrap_or_default(),
                    remote.unwrap_or_default()
                ));
            }
        }
        if mapping == NamespaceMappingStrategy::SelectedName && remote.is_none() {
            return Err(CtlError::Invalid(
                "--namespace-mapping-strategy SelectedName needs --remote-namespace-name"
                    .to_owned(),
            ));
        }
        Ok(NamespaceOffloading {
            metadata: ObjectMeta {
                name: Some(NSOFF_NAME.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec: NamespaceOffloadingSpec {
                namespace_mapping_strategy: mapping,
                remote_namespace_name: remote,
                pod_offloading_strategy: self.pod,
                cluster_selector: Some(self.selector.clone()),
            },
            status: None,
        })
    }
}

/// `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// YAML, one document per namespace, separated by `---`.
    Yaml,
    /// JSON: the object, or a `v1` `List` of them for several namespaces (as kubectl prints).
    Json,
}

/// The objects as `--output` prints them, ending with a newline.
pub fn render(objects: &[NamespaceOffloading], format: Format) -> Result<String, CtlError> {
    let print = |e: &dyn std::fmt::Display| CtlError::Print(e.to_string());
    match format {
        Format::Yaml => {
            let docs = objects
                .iter()
                .map(|o| serde_yaml::to_string(o).map_err(|e| print(&e)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(docs.join("---\n"))
        }
        Format::Json => {
            /// kubectl's shape for several objects; fields keep their declared order.
            #[derive(serde::Serialize)]
            #[serde(rename_all = "camelCase")]
            struct List<'a> {
                api_version: &'static str,
                kind: &'static str,
                items: &'a [NamespaceOffloading],
            }
            let text = match objects {
                [one] => serde_json::to_string_pretty(one),
                items => serde_json::to_string_pretty(&List {
                    api_version: "v1",
                    kind: "List",
                    items,
                }),
            };
            let mut text = text.map_err(|e| print(&e))?;
            text.push('\n');
            Ok(text)
        }
    }
}

#[cfg(test)]
#[path = "intent_tests.rs"]
mod tests;
