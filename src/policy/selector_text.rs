//! Node selectors written in the CLI's selector syntax, for people.
//!
//! `explain` shows the cluster selector and the pod's required node affinity the way users
//! type them in `offload namespace --selector` (SPEC §9): `k=v`, `k!=v`, `k in (a,b)`,
//! `k notin (a,b)`, `k`, `!k`, one term per `--selector` flag. Values are sorted and
//! deduplicated, as the CLI's parser produces them, so a selector written by the CLI reads back
//! as it was typed. What that syntax cannot say is written the way kubectl prints it: `Gt`/`Lt`
//! as `k>n`/`k<n`, and `matchFields` as `metadata.name=n`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};

/// One requirement in selector syntax (a `matchFields` one reads `metadata.name=n`).
pub(crate) fn requirement_text(r: &NodeSelectorRequirement) -> String {
    let values: BTreeSet<&str> = r.values.iter().flatten().map(String::as_str).collect();
    let list = || values.iter().copied().collect::<Vec<_>>().join(",");
    let key = &r.key;
    match (r.operator.as_str(), values.len()) {
        ("In", 1) => format!("{key}={}", list()),
        ("In", _) => format!("{key} in ({})", list()),
        ("NotIn", 1) => format!("{key}!={}", list()),
        ("NotIn", _) => format!("{key} notin ({})", list()),
        ("Exists", 0) => key.clone(),
        ("DoesNotExist", 0) => format!("!{key}"),
        ("Gt", 1) => format!("{key}>{}", list()),
        ("Lt", 1) => format!("{key}<{}", list()),
        (op, _) => format!("{key} {op} ({})", list()),
    }
}

/// One term: its expressions then its fields, joined by `,`; an empty term is `(nothing)`
/// (it matches no node).
pub(crate) fn term_text(t: &NodeSelectorTerm) -> String {
    let parts: Vec<String> = t
        .match_expressions
        .iter()
        .flatten()
        .map(requirement_text)
        .chain(t.match_fields.iter().flatten().map(requirement_text))
        .collect();
    if parts.is_empty() {
        "(nothing)".to_owned()
    } else {
        parts.join(",")
    }
}

/// Every term, one string each (terms are ORed; zero terms give an empty list).
pub(crate) fn terms_text(terms: &[NodeSelectorTerm]) -> Vec<String> {
    terms.iter().map(term_text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::label_selector::parse_term;

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.to_owned(),
            operator: op.to_owned(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn every_operator_reads_as_typed() {
        let cases = [
            (req("region", "In", &["eu"]), "region=eu"),
            (
                req("region", "In", &["us", "eu", "eu"]),
                "region in (eu,us)",
            ),
            (req("env", "NotIn", &["b"]), "env!=b"),
            (req("env", "NotIn", &["b", "a"]), "env notin (a,b)"),
            (req("gpu", "Exists", &[]), "gpu"),
            (req("staging", "DoesNotExist", &[]), "!staging"),
            (req("cores", "Gt", &["4"]), "cores>4"),
            (req("cores", "Lt", &["9"]), "cores<9"),
            (req("x", "Near", &["1"]), "x Near (1)"),
        ];
        for (r, want) in cases {
            assert_eq!(requirement_text(&r), want, "{r:?}");
        }
    }

    #[test]
    fn terms_join_expressions_then_fields() {
        let t = NodeSelectorTerm {
            match_expressions: Some(vec![req("a", "Exists", &[])]),
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        };
        assert_eq!(term_text(&t), "a,metadata.name=n1");
        assert_eq!(term_text(&NodeSelectorTerm::default()), "(nothing)");
        assert_eq!(
            terms_text(&[t, NodeSelectorTerm::default()]),
            ["a,metadata.name=n1", "(nothing)"]
        );
    }

    #[test]
    fn the_cli_parser_reads_the_text_back() {
        for text in [
            "key=value",
            "key=value,!staging",
            "region in (europe,us-west),!staging",
            "env notin (a,b)",
            "a!=b",
            "gpu",
        ] {
            let parsed = parse_term(text).unwrap();
            assert_eq!(term_text(&parsed), text);
        }
    }
}
