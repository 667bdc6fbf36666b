//! `explain` (SPEC §11) as a library: read what the explanation needs from the home cluster,
//! then hand it to the pure core ([`crate::policy::explain`]).
//!
//! Only reads, and only what the webhook and the reconciler base their decisions on: the
//! namespace's `liqo.io/scheduling-enabled` label, its NamespaceOffloading, every node, and the
//! RuntimeClass the pod names. For a stored pod, two cheap extras make the answer better and
//! are skipped when they cannot be read: its ReplicaSet's pod template (what a recreated pod
//! is made from) and, while it is Pending, the scheduler's last `FailedScheduling` message.
//! The calls go through one `kube::Client` so the flows run against a scripted API server in
//! tests.

#[path = "explain_manifest.rs"]
pub mod manifest;
#[path = "explain_render.rs"]
pub mod render;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::ListParams;
use kube::Api;
use serde::Serialize;
use serde_json::Value;

use crate::api::consts::{NSOFF_NAME, SCHEDULING_ENABLED_LABEL};
use crate::api::NamespaceOffloading;
use crate::policy::explain::{explain, Explanation, Inputs, Subject};
use manifest::{wrap, Manifest};

/// One explained pod: what the command prints, and the `-o json` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// What was explained: `pod web`, `Deployment web (pod template)`.
    pub source: String,
    /// The explanation.
    #[serde(flatten)]
    pub explanation: Explanation,
    /// For a Pending pod, the scheduler's last `FailedScheduling` message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_message: Option<String>,
}

/// Why `explain` could not answer; each says what to do, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The namespace does not exist.
    #[error(
        "namespace {0} does not exist; check the name (-n) and the cluster (--context): \
         kubectl get namespaces"
    )]
    NoNamespace(String),
    /// The pod does not exist.
    #[error(
        "pod {name} does not exist in namespace {namespace}; list its pods with: kubectl get \
         pods -n {namespace}"
    )]
    NoPod {
        /// The namespace.
        namespace: String,
        /// The pod's name.
        name: String,
    },
    /// The API server refused a read for lack of permission.
    #[error("cannot {doing}: forbidden; explain needs permission to {doing} (ask for a role that allows it, or use another --context)")]
    Forbidden {
        /// What was attempted: `list nodes`.
        doing: String,
    },
    /// Another failed read.
    #[error("cannot {doing}: {message}")]
    Read {
        /// What was attempted.
        doing: String,
        /// Why, in one line.
        message: String,
    },
    /// The core could not read the pod.
    #[error("{what}: {error}")]
    Pod {
        /// What was explained.
        what: String,
        /// Why it cannot be read.
        error: crate::policy::explain::ExplainError,
    },
}

/// What the webhook is configured with, which the explanation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The webhook's RuntimeClass (its `--runtime-class`).
    pub runtime_class: String,
}

/// Turns a failed read into an [`ExplainError`] (a missing object is `Ok(None)` before this).
fn failed(doing: String, error: kube::Error) -> ExplainError {
    match &error {
        kube::Error::Api(status) if status.code == 403 => ExplainError::Forbidden { doing },
        kube::Error::Api(status) => ExplainError::Read {
            doing,
            message: format!("{} (HTTP {})", status.message, status.code),
        },
        other => ExplainError::Read {
            doing,
            message: super::errors::describe(other),
        },
    }
}

/// What every pod of a namespace is explained against, read once.
struct Home {
    /// `None` until listed (a cluster may have no node at all).
    nodes: Option<Vec<Node>>,
    namespaces: BTreeMap<String, (bool, Option<NamespaceOffloading>)>,
    runtime_classes: BTreeMap<String, Option<RuntimeClass>>,
}

impl Home {
    fn new() -> Self {
        Home {
            nodes: None,
            namespaces: BTreeMap::new(),
            runtime_classes: BTreeMap::new(),
        }
    }

    /// Reads the namespace's label and NamespaceOffloading, once per namespace.
    async fn namespace(&mut self, client: &kube::Client, ns: &str) -> Result<(), ExplainError> {
        if self.namespaces.contains_key(ns) {
            return Ok(());
        }
        let enabled = namespace_enabled(client, ns).await?;
        let nsoffs: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
        let nsoff = nsoffs
            .get_opt(NSOFF_NAME)
            .await
            .map_err(|e| failed(format!("read the NamespaceOffloading of namespace {ns}"), e))?;
        self.namespaces.insert(ns.to_owned(), (enabled, nsoff));
        Ok(())
    }

    /// Lists every node, once.
    async fn nodes(&mut self, client: &kube::Client) -> Result<(), ExplainError> {
        if self.nodes.is_none() {
            let nodes: Api<Node> = Api::all(client.clone());
            let list = nodes
                .list(&ListParams::default())
                .await
                .map_err(|e| failed("list nodes".to_owned(), e))?;
            self.nodes = Some(list.items);
        }
        Ok(())
    }

    /// Reads the RuntimeClass `pod` names, once per name.
    async fn runtime_class(
        &mut self,
        client: &kube::Client,
        pod: &Value,
    ) -> Result<(), ExplainError> {
        let Some(name) = runtime_class_name(pod) else {
            return Ok(());
        };
        if !self.runtime_classes.contains_key(name) {
            let classes: Api<RuntimeClass> = Api::all(client.clone());
            let class = classes
                .get_opt(name)
                .await
                .map_err(|e| failed(format!("read RuntimeClass {name}"), e))?;
            self.runtime_classes.insert(name.to_owned(), class);
        }
        Ok(())
    }

    fn explain(
        &self,
        ns: &str,
        subject: Subject<'_>,
        pod: &Value,
        source: &str,
        options: &Options,
    ) -> Result<Explanation, ExplainError> {
        let (enabled, nsoff) = &self.namespaces[ns];
        let runtime_class = runtime_class_name(pod)
            .and_then(|name| self.runtime_classes.get(name))
            .and_then(Option::as_ref);
        let inputs = Inputs {
            namespace: ns,
            subject,
            offloading: nsoff.as_ref(),
            scheduling_enabled: *enabled,
            nodes: self.nodes.as_deref().unwrap_or_default(),
            runtime_class,
            webhook_runtime_class: &options.runtime_class,
        };
        explain(&inputs).map_err(|error| ExplainError::Pod {
            what: source.to_owned(),
            error,
        })
    }
}

fn runtime_class_name(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/runtimeClassName")
        .and_then(Value::as_str)
}

/// Whether the namespace is labelled `liqo.io/scheduling-enabled=true`; an error when it does
/// not exist.
async fn namespace_enabled(client: &kube::Client, ns: &str) -> Result<bool, ExplainError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = namespaces
        .get_opt(ns)
        .await
        .map_err(|e| failed(format!("read namespace {ns}"), e))?
        .ok_or_else(|| ExplainError::NoNamespace(ns.to_owned()))?;
    let labels = namespace.metadata.labels.unwrap_or_default();
    Ok(labels.get(SCHEDULING_ENABLED_LABEL).map(String::as_str) == Some("true"))
}

/// Explains the stored pod `name` of `ns`.
pub async fn explain_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    options: &Options,
) -> Result<Report, ExplainError> {
    let mut home = Home::new();
    // The namespace first: a missing namespace would otherwise read as a missing pod.
    home.namespace(client, ns).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = pods
        .get_opt(name)
        .await
        .map_err(|e| failed(format!("read pod {name} in namespace {ns}"), e))?
        .ok_or_else(|| ExplainError::NoPod {
            namespace: ns.to_owned(),
            name: name.to_owned(),
        })?;
    let template = owner_template(client, ns, &pod).await;
    home.nodes(client).await?;
    let json = serde_json::to_value(&pod).unwrap_or_default();
    home.runtime_class(client, &json).await?;
    let source = format!("pod {name}");
    let subject = Subject::Existing {
        pod: &json,
        template: template.as_ref(),
    };
    let explanation = home.explain(ns, subject, &json, &source, options)?;
    let scheduler_message = if pending(&pod) {
        failed_scheduling(client, ns, name).await
    } else {
        None
    };
    Ok(Report {
        source,
        explanation,
        scheduler_message,
    })
}

/// Explains manifests not yet created, in order; the nodes are listed once. A manifest with
/// no namespace goes to `default` (the kubeconfig context's namespace).
pub async fn explain_manifests(
    client: &kube::Client,
    manifests: &[Manifest],
    default: &str,
    options: &Options,
) -> Result<Vec<Report>, ExplainError> {
    let mut home = Home::new();
    let mut reports = Vec::new();
    for m in manifests {
        let ns = m.namespace.as_deref().unwrap_or(default);
        let mut pod = m.pod.clone();
        pod["metadata"]["namespace"] = Value::String(ns.to_owned());
        home.namespace(client, ns).await?;
        home.nodes(client).await?;
        home.runtime_class(client, &pod).await?;
        let explanation = home.explain(ns, Subject::Manifest(&pod), &pod, &m.source, options)?;
        reports.push(Report {
            source: m.source.clone(),
            explanation,
            scheduler_message: None,
        });
    }
    Ok(reports)
}

/// A stored pod not bound to a node yet.
fn pending(pod: &Pod) -> bool {
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some();
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !bound && phase.is_none_or(|p| p == "Pending")
}

/// The pod template of the pod's controlling ReplicaSet, wrapped as a Pod; `None` when it has
/// none or it cannot be read (the stored pod then stands for its template).
async fn owner_template(client: &kube::Client, ns: &str, pod: &Pod) -> Option<Value> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")?;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let set = sets.get_opt(&owner.name).await.ok()??;
    let template = serde_json::to_value(set.spec?.template?).ok()?;
    let mut wrapped = wrap(&template);
    wrapped["metadata"]["namespace"] = Value::String(ns.to_owned());
    Some(wrapped)
}

/// The message of the pod's latest `FailedScheduling` event; `None` when there is none or the
/// events cannot be read.
async fn failed_scheduling(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let fields = format!("involvedObject.name={name},involvedObject.kind=Pod");
    let list = events
        .list(&ListParams::default().fields(&fields))
        .await
        .ok()?;
    list.items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
        .max_by_key(|e| {
            let last = e.last_timestamp.as_ref().map(|t| t.0);
            let at = e.event_time.as_ref().map(|t| t.0);
            let created = e.metadata.creation_timestamp.as_ref().map(|t| t.0);
            last.or(at).or(created)
        })
        .and_then(|e| e.message)
}
