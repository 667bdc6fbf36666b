//! Which remote clusters a NamespaceOffloading selects (SPEC §7 steps 2 and 8).
//!
//! Remote clusters are known only through their virtual nodes, so the nodes are first grouped
//! by the cluster id label; the decision is then made once per cluster with the webhook's own
//! selector parser ([`crate::policy::selector`]). Grouping into ordered maps makes the result
//! independent of the order in which the API server lists nodes (the reference decided per
//! node, so the last node seen won). An invalid selector selects nothing and says why.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Node;

use crate::api::consts::{REMOTE_CLUSTER_ID_LABEL, VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE};
use crate::api::NamespaceOffloadingSpec;
use crate::policy::selector::{parse_terms, selects_cluster};

/// One virtual node: its name and labels.
pub type NodeLabels = (String, BTreeMap<String, String>);

/// Virtual nodes grouped by remote cluster id.
pub type Clusters = BTreeMap<String, Vec<NodeLabels>>;

/// Groups virtual nodes by their `liqo.io/remote-cluster-id` label. Nodes that are not
/// virtual, or carry no (or an empty) cluster id, belong to no remote cluster and are skipped.
pub fn group_virtual_nodes<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Clusters {
    let mut clusters = Clusters::new();
    for node in nodes {
        let Some(labels) = node.metadata.labels.as_ref() else {
            continue;
        };
        if labels.get(VIRTUAL_NODE_LABEL).map(String::as_str) != Some(VIRTUAL_NODE_VALUE) {
            continue;
        }
        let Some(id) = labels
            .get(REMOTE_CLUSTER_ID_LABEL)
            .filter(|id| !id.is_empty())
        else {
            continue;
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        clusters
            .entry(id.clone())
            .or_default()
            .push((name, labels.clone()));
    }
    for nodes in clusters.values_mut() {
        nodes.sort();
    }
    clusters
}

/// The outcome of matching a selector against every known remote cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Clusters that get a twin namespace.
    pub selected: BTreeSet<String>,
    /// Clusters that do not.
    pub not_selected: BTreeSet<String>,
    /// Why the selector could not be used (then nothing is selected).
    pub error: Option<String>,
}

impl Selection {
    /// Whether `cluster` is selected.
    pub fn is_selected(&self, cluster: &str) -> bool {
        self.selected.contains(cluster)
    }
}

/// Applies the spec's cluster selector to every cluster: zero terms select every cluster; an
/// invalid selector selects none and reports the parse error.
pub fn select(spec: &NamespaceOffloadingSpec, clusters: &Clusters) -> Selection {
    let mut selection = Selection::default();
    let parsed = match parse_terms(spec.selector_terms()) {
        Ok(parsed) => parsed,
        Err(e) => {
            selection.error = Some(e.to_string());
            selection.not_selected = clusters.keys().cloned().collect();
            return selection;
        }
    };
    for (id, nodes) in clusters {
        let nodes = nodes.iter().map(|(name, labels)| (name.as_str(), labels));
        if selects_cluster(&parsed, nodes) {
            selection.selected.insert(id.clone());
        } else {
            selection.not_selected.insert(id.clone());
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    fn vnode(name: &str, cluster: &str, region: &str) -> Node {
        node(
            name,
            &[
                (VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE),
                (REMOTE_CLUSTER_ID_LABEL, cluster),
                ("region", region),
            ],
        )
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.to_owned(),
            operator: op.to_owned(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn spec(terms: Vec<Vec<NodeSelectorRequirement>>) -> NamespaceOffloadingSpec {
        NamespaceOffloadingSpec {
            cluster_selector: Some(NodeSelector {
                node_selector_terms: terms
                    .into_iter()
                    .map(|exprs| NodeSelectorTerm {
                        match_expressions: Some(exprs),
                        match_fields: None,
                    })
                    .collect(),
            }),
            ..NamespaceOffloadingSpec::default()
        }
    }

    fn three() -> Clusters {
        group_virtual_nodes(&[
            vnode("vk-r1", "r1", "eu"),
            vnode("vk-r2", "r2", "us"),
            vnode("vk-r3", "r3", "ap"),
        ])
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn grouping_skips_real_nodes_and_nodes_without_a_cluster_id() {
        let nodes = [
            node("worker", &[("region", "eu")]),
            node("no-id", &[(VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE)]),
            node(
                "empty-id",
                &[
                    (VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE),
                    (REMOTE_CLUSTER_ID_LABEL, ""),
                ],
            ),
            node(
                "other-type",
                &[(VIRTUAL_NODE_LABEL, "x"), (REMOTE_CLUSTER_ID_LABEL, "r9")],
            ),
            vnode("vk-b", "r1", "eu"),
            vnode("vk-a", "r1", "us"),
        ];
        let clusters = group_virtual_nodes(&nodes);
        assert_eq!(clusters.keys().collect::<Vec<_>>(), ["r1"]);
        let names: Vec<_> = clusters["r1"].iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["vk-a", "vk-b"]);
    }

    #[test]
    fn r1_no_selector_selects_every_cluster() {
        let s = select(&NamespaceOffloadingSpec::default(), &three());
        assert_eq!(s.selected, set(&["r1", "r2", "r3"]));
        assert!(s.not_selected.is_empty());
        assert_eq!(s.error, None);
    }

    #[test]
    fn r2_selector_matching_one_cluster() {
        let s = select(&spec(vec![vec![req("region", "In", &["eu"])]]), &three());
        assert_eq!(s.selected, set(&["r1"]));
        assert_eq!(s.not_selected, set(&["r2", "r3"]));
    }

    #[test]
    fn r3_selector_matching_nothing() {
        let s = select(&spec(vec![vec![req("region", "In", &["mars"])]]), &three());
        assert!(s.selected.is_empty());
        assert_eq!(s.not_selected, set(&["r1", "r2", "r3"]));
    }

    #[test]
    fn r8_no_virtual_nodes_selects_nothing() {
        let s = select(&NamespaceOffloadingSpec::default(), &Clusters::new());
        assert_eq!(s, Selection::default());
    }

    #[test]
    fn terms_are_ored_and_expressions_anded() {
        let sel = spec(vec![
            vec![
                req("region", "In", &["eu"]),
                req("region", "NotIn", &["eu"]),
            ],
            vec![req("region", "In", &["ap"])],
        ]);
        assert_eq!(select(&sel, &three()).selected, set(&["r3"]));
    }

    #[test]
    fn one_matching_node_selects_its_cluster_whatever_the_node_order() {
        let a = vnode("vk-r1-a", "r1", "us");
        let b = vnode("vk-r1-b", "r1", "eu");
        let sel = spec(vec![vec![req("region", "In", &["eu"])]]);
        for order in [vec![a.clone(), b.clone()], vec![b, a]] {
            let s = select(&sel, &group_virtual_nodes(&order));
            assert_eq!(s.selected, set(&["r1"]));
        }
    }

    #[test]
    fn match_fields_compare_the_node_name() {
        let mut sel = spec(vec![]);
        sel.cluster_selector = Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: None,
                match_fields: Some(vec![req("metadata.name", "In", &["vk-r2"])]),
            }],
        });
        assert_eq!(select(&sel, &three()).selected, set(&["r2"]));
    }

    #[test]
    fn an_invalid_selector_selects_nothing_and_says_why() {
        let s = select(&spec(vec![vec![req("region", "Near", &["eu"])]]), &three());
        assert!(s.selected.is_empty());
        assert_eq!(s.not_selected, set(&["r1", "r2", "r3"]));
        let error = s.error.expect("a parse error");
        assert!(error.contains("operator"), "{error}");
    }

    #[test]
    fn an_empty_term_matches_nothing() {
        let mut sel = spec(vec![]);
        sel.cluster_selector = Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm::default()],
        });
        let s = select(&sel, &three());
        assert!(s.selected.is_empty());
        assert!(s.error.is_some(), "an empty term is reported as invalid");
    }
}
