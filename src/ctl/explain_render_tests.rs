//! The layout rules the golden files do not reach: colours only on a terminal, large clusters
//! summarised, long verdicts shortened, a node of no known cluster.

use super::*;
use crate::policy::explain::{Blocker, ClusterNodes, NodeResult, OffloadingSummary, Verdict as V};

fn node(name: &str, cluster: Option<&str>, blocker: Option<Blocker>) -> NodeResult {
    NodeResult {
        name: name.to_owned(),
        virtual_node: cluster.is_some(),
        cluster: cluster.map(str::to_owned),
        may_run: blocker.is_none(),
        blocker,
    }
}

fn report(nodes: Vec<NodeResult>, verdict: V) -> Report {
    Report {
        source: "pod web".to_owned(),
        explanation: Explanation {
            namespace: "shop".to_owned(),
            pod: Some("web".to_owned()),
            bound_to: None,
            offloading: OffloadingSummary {
                scheduling_enabled: false,
                exists: false,
                terminating: false,
                strategy: None,
                selector: Vec::new(),
                selector_error: None,
                phase: None,
                stale: false,
                clusters: Vec::new(),
            },
            admission: Admission::NotOffloaded,
            nodes,
            verdict,
        },
        scheduler_message: None,
    }
}

fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect()
}

#[test]
fn more_than_five_nodes_with_one_outcome_in_a_cluster_are_one_line() {
    let mut nodes = Vec::new();
    for i in 1..=7 {
        nodes.push(node(&format!("c{i}"), None, Some(Blocker::Cordoned)));
    }
    let names: Vec<String> = (1..=8).map(|i| format!("w{i}")).collect();
    nodes.extend(names.iter().map(|n| node(n, None, None)));
    nodes.push(node("odd", None, Some(Blocker::Cordoned)));
    nodes.push(node("v1", Some("r1"), Some(Blocker::Cordoned)));
    let verdict = V::MayRun {
        clusters: vec![ClusterNodes {
            cluster: None,
            nodes: names,
        }],
    };
    let text = human(&[report(nodes, verdict)], false);
    assert_eq!(
        section(&text, "Nodes"),
        [
            "  local  8 nodes  cordoned (unschedulable)",
            "  local  8 nodes  may run",
            "  r1     v1       cordoned (unschedulable)",
        ]
    );
    assert_eq!(
        section(&text, "Verdict"),
        ["  may run on 8 nodes: w1, w2, w3, w4, w5 and 3 more (local)"]
    );
}

#[test]
fn colours_only_on_a_terminal() {
    let nodes = vec![
        node("l1", None, None),
        node("v1", Some("r1"), Some(Blocker::Cordoned)),
    ];
    let verdict = V::MayRun {
        clusters: vec![ClusterNodes {
            cluster: None,
            nodes: vec!["l1".to_owned()],
        }],
    };
    let reports = [report(nodes, verdict)];
    let plain = human(&reports, false);
    assert!(!plain.contains('\x1b'), "{plain}");
    let coloured = human(&reports, true);
    assert!(coloured.contains("\x1b[1mNodes\x1b[0m"), "{coloured}");
    assert!(
        coloured.contains("  local  l1  \x1b[32mmay run\x1b[0m\n"),
        "{coloured}"
    );
    assert!(
        coloured.contains("\x1b[31mcordoned (unschedulable)\x1b[0m"),
        "{coloured}"
    );
    // Without the escapes, the same text.
    let stripped = coloured
        .replace("\x1b[1m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[31m", "")
        .replace("\x1b[33m", "")
        .replace("\x1b[0m", "");
    assert_eq!(stripped, plain);
}

#[test]
fn json_is_one_document_or_an_array() {
    let verdict = || V::NoNode {
        change: crate::policy::explain::Change::CreateOffloading,
        then_recreate: true,
    };
    let one = json(&[report(Vec::new(), verdict())]);
    let value: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(value["source"], "pod web");
    assert_eq!(value["verdict"]["change"]["change"], "createOffloading");
    assert!(value.get("schedulerMessage").is_none());
    let two = json(&[report(Vec::new(), verdict()), report(Vec::new(), verdict())]);
    let value: serde_json::Value = serde_json::from_str(&two).unwrap();
    assert_eq!(value.as_array().map(Vec::len), Some(2));
    let text = human(&[report(Vec::new(), verdict())], false);
    assert_eq!(
        section(&text, "Verdict"),
        [
            "  no node may run the pod",
            "  first change:  offload the namespace: nsoffload offload namespace shop",
            "  then:          recreate the pod: kubectl delete pod web -n shop (and create it \
             again if no controller does)",
        ]
    );
    assert_eq!(section(&text, "Nodes"), ["  no node in the cluster"]);
}
