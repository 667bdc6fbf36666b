//! The pods `explain -f FILE` is asked about: every YAML or JSON document of the file, each a
//! Pod or a workload whose pod template is taken and wrapped as a Pod.
//!
//! The webhook sees the pods a controller creates, not the Deployment, so a workload is
//! explained through its pod template, as the Pod the controller would submit: the template's
//! metadata and spec, in the workload's namespace. The rules for the namespace are kubectl's:
//! a document's own namespace wins, `-n` fills in the others, and the two disagreeing is an
//! error rather than a guess.

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// One pod to explain.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// What it comes from, for people: `Pod web`, `Deployment shop/web (pod template)`.
    pub source: String,
    /// The namespace it would be created in (`None`: neither the document nor `-n` names one;
    /// the kubeconfig context's namespace is used).
    pub namespace: Option<String>,
    /// The Pod (`metadata.namespace` set when `namespace` is known).
    pub pod: Value,
}

/// A file that cannot be explained; nothing was read from the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML (or JSON).
    #[error("document {index}: not YAML: {message}")]
    Syntax {
        /// 1-based position in the file.
        index: usize,
        /// The parser's message.
        message: String,
    },
    /// A document that is not an object with a `kind`.
    #[error("document {index}: not a Kubernetes object (no kind)")]
    NoKind {
        /// 1-based position in the file.
        index: usize,
    },
    /// A kind without a pod template.
    #[error(
        "document {index}: kind {kind} has no pod to explain; explain takes a Pod, \
         Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or CronJob"
    )]
    Unsupported {
        /// 1-based position in the file.
        index: usize,
        /// The document's kind.
        kind: String,
    },
    /// A workload without its pod template.
    #[error("document {index}: {kind} {name} has no {path}")]
    NoTemplate {
        /// 1-based position in the file.
        index: usize,
        /// The document's kind.
        kind: String,
        /// Its name.
        name: String,
        /// Where the template should be.
        path: &'static str,
    },
    /// `-n` names another namespace than the document.
    #[error(
        "document {index}: {kind} {name} is in namespace {own}, but -n says {flag}; drop -n or \
         make them agree"
    )]
    NamespaceMismatch {
        /// 1-based position in the file.
        index: usize,
        /// The document's kind.
        kind: String,
        /// Its name.
        name: String,
        /// Its `metadata.namespace`.
        own: String,
        /// The namespace given with `-n`.
        flag: String,
    },
    /// The file holds no document.
    #[error("no object in the file")]
    Empty,
}

/// Where each supported kind keeps its pod template (`None`: it is the Pod).
fn template_path(kind: &str) -> Option<Option<&'static str>> {
    match kind {
        "Pod" => Some(None),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            Some(Some("/spec/template"))
        }
        "CronJob" => Some(Some("/spec/jobTemplate/spec/template")),
        _ => None,
    }
}

/// The pods of `text` (YAML documents separated by `---`, or JSON), in file order; `flag` is
/// `-n`.
pub fn manifests(text: &str, flag: Option<&str>) -> Result<Vec<Manifest>, ManifestError> {
    let mut found = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = Value::deserialize(document).map_err(|e| ManifestError::Syntax {
            index,
            message: e.to_string(),
        })?;
        if value.is_null() {
            // An empty document (a trailing `---`).
            continue;
        }
        found.push(manifest(index, &value, flag)?);
    }
    if found.is_empty() {
        return Err(ManifestError::Empty);
    }
    Ok(found)
}

fn manifest(index: usize, value: &Value, flag: Option<&str>) -> Result<Manifest, ManifestError> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(ManifestError::NoKind { index })?
        .to_owned();
    let path = template_path(&kind).ok_or_else(|| ManifestError::Unsupported {
        index,
        kind: kind.clone(),
    })?;
    let text = |p: &str| value.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let name = text("/metadata/name")
        .or_else(|| text("/metadata/generateName").map(|g| format!("{g}*")))
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let namespace = match (text("/metadata/namespace"), flag) {
        (Some(own), Some(flag)) if own != flag => {
            return Err(ManifestError::NamespaceMismatch {
                index,
                kind,
                name,
                own,
                flag: flag.to_owned(),
            })
        }
        (Some(own), _) => Some(own),
        (None, flag) => flag.map(str::to_owned),
    };
    let (source, mut pod) = match path {
        None => (format!("Pod {name}"), value.clone()),
        Some(path) => {
            let template = value
                .pointer(path)
                .filter(|t| t.is_object())
                .ok_or_else(|| ManifestError::NoTemplate {
                    index,
                    kind: kind.clone(),
                    name: name.clone(),
                    path,
                })?;
            let source = format!("{kind} {name} (pod template)");
            (source, wrap(template))
        }
    };
    if let Some(ns) = &namespace {
        pod["metadata"]["namespace"] = Value::String(ns.clone());
    }
    Ok(Manifest {
        source,
        namespace,
        pod,
    })
}

/// A pod template as the Pod its controller submits (its metadata and spec).
pub fn wrap(template: &Value) -> Value {
    let metadata = match template.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {disk: ssd}
      containers: [{name: web, image: nginx}]
";

    #[test]
    fn a_workload_is_explained_through_its_pod_template() {
        let found = manifests(DEPLOYMENT, None).unwrap();
        assert_eq!(
            found,
            [Manifest {
                source: "Deployment web (pod template)".to_owned(),
                namespace: Some("shop".to_owned()),
                pod: json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"labels": {"app": "web"}, "namespace": "shop"},
                    "spec": {
                        "nodeSelector": {"disk": "ssd"},
                        "containers": [{"name": "web", "image": "nginx"}],
                    },
                }),
            }]
        );
    }

    #[test]
    fn every_document_in_order_with_the_namespace_rules() {
        let text = "kind: Pod\nmetadata: {name: a}\nspec: {}\n---\n\
                    kind: CronJob\nmetadata: {name: b}\n\
                    spec: {jobTemplate: {spec: {template: {spec: {}}}}}\n---\n";
        let found = manifests(text, Some("shop")).unwrap();
        let got: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|m| (m.source.as_str(), m.namespace.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("Pod a", Some("shop")),
                ("CronJob b (pod template)", Some("shop"))
            ]
        );
        assert_eq!(found[1].pod["metadata"], json!({"namespace": "shop"}));
        let found = manifests("kind: Pod\nmetadata: {generateName: a-}\n", None).unwrap();
        assert_eq!(
            (found[0].source.as_str(), found[0].namespace.as_deref()),
            ("Pod a-*", None)
        );
    }

    #[test]
    fn what_cannot_be_explained_is_said_in_one_line() {
        let cases = [
            ("kind: Service\nmetadata: {name: s}\n", "document 1: kind Service has no pod to explain; explain takes a Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or CronJob"),
            ("- a\n", "document 1: not a Kubernetes object (no kind)"),
            ("kind: Job\nmetadata: {name: j}\nspec: {}\n", "document 1: Job j has no /spec/template"),
            ("kind: Pod\nmetadata: {name: p, namespace: a}\n", "document 1: Pod p is in namespace a, but -n says shop; drop -n or make them agree"),
            ("", "no object in the file"),
        ];
        for (text, want) in cases {
            let got = manifests(text, Some("shop")).unwrap_err();
            assert_eq!(got.to_string(), want, "{text}");
        }
        let bad = manifests("kind: [", None).unwrap_err();
        assert!(
            matches!(bad, ManifestError::Syntax { index: 1, .. }),
            "{bad:?}"
        );
    }
}
