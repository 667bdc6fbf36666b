//! Standalone state: a multi-document YAML file of NamespaceOffloading, Namespace and Node
//! objects, served without a cluster (`serve --standalone FILE`).
//!
//! Used by `make run`, the benchmarks and demos. The file is validated strictly: an unknown
//! kind or a document that does not parse is an error naming the document, because a demo
//! that silently ignores half its state is worse than one that refuses to start.

use std::path::Path;

use k8s_openapi::api::core::v1::{Namespace, Node};
use serde::Deserialize;

use super::Snapshot;
use crate::api::NamespaceOffloading;

/// Why a standalone state file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A document is not valid YAML or not a valid object of its kind.
    #[error("{path}: document {index}: {message}")]
    Document {
        /// The file.
        path: String,
        /// 1-based document number.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads and parses a standalone state file.
pub fn load_standalone(path: &Path) -> Result<Snapshot, StandaloneError> {
    let text = std::fs::read_to_string(path).map_err(|source| StandaloneError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_standalone(&text).map_err(|(index, message)| StandaloneError::Document {
        path: path.display().to_string(),
        index,
        message,
    })
}

/// Parses the text of a standalone state file; errors carry the 1-based document number.
pub fn parse_standalone(text: &str) -> Result<Snapshot, (usize, String)> {
    let mut nsoffs = Vec::new();
    let mut namespaces = Vec::new();
    let mut nodes = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| (index, e.to_string()))?;
        if value.is_null() {
            continue; // an empty document, e.g. after a trailing `---`
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_owned();
        let bad = |e: serde_yaml::Error| (index, format!("invalid {kind}: {e}"));
        match kind.as_str() {
            "NamespaceOffloading" => {
                nsoffs.push(serde_yaml::from_value::<NamespaceOffloading>(value).map_err(bad)?)
            }
            "Namespace" => {
                namespaces.push(serde_yaml::from_value::<Namespace>(value).map_err(bad)?)
            }
            "Node" => nodes.push(serde_yaml::from_value::<Node>(value).map_err(bad)?),
            "" => return Err((index, "document has no kind".to_owned())),
            other => {
                return Err((
                    index,
                    format!(
                    "unsupported kind {other:?} (expected NamespaceOffloading, Namespace or Node)"
                ),
                ))
            }
        }
    }
    Ok(Snapshot::new(nsoffs, namespaces, nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_skips_empty_documents() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
            apiVersion: offloading.liqo.io/v1beta1\nkind: NamespaceOffloading\n\
            metadata: {name: offloading, namespace: shop}\nspec: {podOffloadingStrategy: Remote}\n\
            status: {offloadingPhase: Ready}\n---\n\
            apiVersion: v1\nkind: Node\nmetadata: {name: vk, labels: {liqo.io/type: virtual-node}}\n---\n";
        let snap = parse_standalone(text).unwrap();
        assert!(snap.namespace("shop").is_some());
        assert_eq!(snap.nodes().len(), 1);
        let entry = snap.offloading("shop").unwrap();
        assert!(entry.gate.is_allowed());
    }

    #[test]
    fn errors_name_the_document() {
        let (i, m) =
            parse_standalone("kind: Namespace\nmetadata: {name: a}\n---\nkind: Pod\n").unwrap_err();
        assert_eq!(i, 2);
        assert!(m.contains("Pod"), "{m}");
        let (i, m) = parse_standalone("kind: NamespaceOffloading\nmetadata: {name: offloading}\nspec: {podOffloadingStrategy: Nope}\n").unwrap_err();
        assert_eq!(i, 1);
        assert!(m.contains("Nope"), "{m}");
        assert_eq!(parse_standalone("a: [\n").unwrap_err().0, 1);
        assert!(parse_standalone("metadata: {}\n")
            .unwrap_err()
            .1
            .contains("no kind"));
    }

    #[test]
    fn ignores_wrongly_named_offloadings() {
        let snap = parse_standalone(
            "kind: NamespaceOffloading\nmetadata: {name: other, namespace: a}\nspec: {}\n",
        )
        .unwrap();
        assert_eq!(snap.offloading_count(), 0);
    }
}
