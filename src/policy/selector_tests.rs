//! Table tests for the cluster selector: every parse rule, every operator, OR/AND semantics.

use super::*;

fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: op.to_owned(),
        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn req_no_values(key: &str, op: &str) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: op.to_owned(),
        values: None,
    }
}

fn term(exprs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: Some(exprs),
        match_fields: None,
    }
}

fn field_term(fields: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(fields),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse_ok(terms: Vec<NodeSelectorTerm>) -> ParsedSelector {
    match parse_terms(&terms) {
        Ok(s) => s,
        Err(e) => panic!("unexpected parse error: {e}"),
    }
}

fn parse_err(terms: Vec<NodeSelectorTerm>) -> SelectorError {
    match parse_terms(&terms) {
        Ok(s) => panic!("expected a parse error, got {s:?}"),
        Err(e) => e,
    }
}

const E0: &str = "spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[0]";
const F0: &str = "spec.clusterSelector.nodeSelectorTerms[0].matchFields[0]";

#[test]
fn each_rule_reports_its_field() {
    let cases: Vec<(&str, NodeSelectorRequirement, String, &str)> = vec![
        (
            "unknown operator",
            req("region", "Equals", &["eu"]),
            format!("{E0}.operator"),
            "unknown operator \"Equals\" (allowed operators: In, NotIn, Exists, DoesNotExist, Gt, Lt)",
        ),
        (
            "lower-case operator",
            req("region", "in", &["eu"]),
            format!("{E0}.operator"),
            "unknown operator \"in\"",
        ),
        (
            "In without values",
            req_no_values("region", "In"),
            format!("{E0}.values"),
            "operator In needs at least one value",
        ),
        (
            "NotIn with empty values",
            req("region", "NotIn", &[]),
            format!("{E0}.values"),
            "operator NotIn needs at least one value",
        ),
        (
            "Exists with values",
            req("region", "Exists", &["eu"]),
            format!("{E0}.values"),
            "operator Exists takes no values (it has 1)",
        ),
        (
            "DoesNotExist with values",
            req("region", "DoesNotExist", &["a", "b"]),
            format!("{E0}.values"),
            "operator DoesNotExist takes no values (it has 2)",
        ),
        (
            "Gt without values",
            req_no_values("cpu", "Gt"),
            format!("{E0}.values"),
            "operator Gt needs exactly one value, an integer (it has 0)",
        ),
        (
            "Lt with two values",
            req("cpu", "Lt", &["1", "2"]),
            format!("{E0}.values"),
            "operator Lt needs exactly one value, an integer (it has 2)",
        ),
        (
            "Gt with a non-integer",
            req("cpu", "Gt", &["4.5"]),
            format!("{E0}.values[0]"),
            "\"4.5\" is not an integer (operator Gt compares integers)",
        ),
        (
            "Lt beyond i64",
            req("cpu", "Lt", &["99999999999999999999"]),
            format!("{E0}.values[0]"),
            "is not an integer",
        ),
        (
            "invalid key",
            req("bad key", "Exists", &[]),
            format!("{E0}.key"),
            "\"bad key\" is not a valid label key: name part must consist of",
        ),
        (
            "empty key",
            req("", "Exists", &[]),
            format!("{E0}.key"),
            "is not a valid label key: name part must not be empty",
        ),
    ];
    for (what, r, path, msg) in cases {
        let err = parse_err(vec![term(vec![r])]);
        assert_eq!(err.errors.len(), 1, "{what}: {err}");
        assert_eq!(err.errors[0].path, path, "{what}");
        assert!(err.errors[0].message.contains(msg), "{what}: {err}");
        assert!(err.to_string().starts_with(&path), "{what}: {err}");
    }
}

#[test]
fn match_fields_rules() {
    let cases: Vec<(&str, NodeSelectorRequirement, String, &str)> = vec![
        (
            "other field",
            req("metadata.uid", "In", &["x"]),
            format!("{F0}.key"),
            "unsupported field \"metadata.uid\" (matchFields supports only metadata.name)",
        ),
        (
            "Exists",
            req("metadata.name", "Exists", &["n1"]),
            format!("{F0}.operator"),
            "operator \"Exists\" is not supported in matchFields (allowed: In, NotIn)",
        ),
        (
            "no value",
            req_no_values("metadata.name", "In"),
            format!("{F0}.values"),
            "matchFields needs exactly one value, a node name (it has 0)",
        ),
        (
            "two values",
            req("metadata.name", "NotIn", &["a", "b"]),
            format!("{F0}.values"),
            "(it has 2)",
        ),
    ];
    for (what, r, path, msg) in cases {
        let err = parse_err(vec![field_term(vec![r])]);
        assert_eq!(err.errors.len(), 1, "{what}: {err}");
        assert_eq!(err.errors[0].path, path, "{what}");
        assert!(err.errors[0].message.contains(msg), "{what}: {err}");
    }
}

#[test]
fn empty_terms_are_rejected() {
    for t in [
        NodeSelectorTerm::default(),
        term(vec![]),
        NodeSelectorTerm {
            match_expressions: Some(vec![]),
            match_fields: Some(vec![]),
        },
    ] {
        let err = parse_err(vec![term(vec![req_no_values("a", "Exists")]), t]);
        assert_eq!(err.errors.len(), 1, "{err}");
        assert_eq!(
            err.errors[0].path,
            "spec.clusterSelector.nodeSelectorTerms[1]"
        );
        assert!(err.errors[0]
            .message
            .contains("at least one matchExpressions or matchFields"));
    }
}

#[test]
fn all_errors_are_collected() {
    let err = parse_err(vec![
        term(vec![
            req("region", "Exists", &["eu"]),
            req("Bad Key", "Foo", &[]),
        ]),
        NodeSelectorTerm::default(),
        NodeSelectorTerm {
            match_expressions: Some(vec![req("cpu", "Gt", &["x"])]),
            match_fields: Some(vec![req("spec.x", "Exists", &[])]),
        },
    ]);
    let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[0].values",
            "spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[1].key",
            "spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[1].operator",
            "spec.clusterSelector.nodeSelectorTerms[1]",
            "spec.clusterSelector.nodeSelectorTerms[2].matchExpressions[0].values[0]",
            "spec.clusterSelector.nodeSelectorTerms[2].matchFields[0].key",
            "spec.clusterSelector.nodeSelectorTerms[2].matchFields[0].operator",
            "spec.clusterSelector.nodeSelectorTerms[2].matchFields[0].values",
        ]
    );
    let joined: Vec<String> = err.errors.iter().map(ToString::to_string).collect();
    assert_eq!(err.to_string(), joined.join("; "));
}

#[test]
fn valid_selectors_parse() {
    let s = parse_ok(vec![
        term(vec![
            req("topology.kubernetes.io/region", "In", &["eu", "us"]),
            req("gpu", "NotIn", &["none"]),
            req_no_values("liqo.io/type", "Exists"),
            req("staging", "DoesNotExist", &[]),
            req("cpu", "Gt", &["-3"]),
            req("mem", "Lt", &["+10"]),
        ]),
        field_term(vec![req("metadata.name", "In", &["n1"])]),
    ]);
    assert!(!s.is_empty());
    assert!(parse_ok(vec![]).is_empty());
    let whole = NodeSelector {
        node_selector_terms: vec![term(vec![req_no_values("a", "Exists")])],
    };
    assert!(!ParsedSelector::parse(&whole).expect("valid").is_empty());
}

#[test]
fn operators_match_labels() {
    let no = labels(&[]);
    let eu = labels(&[("region", "eu"), ("cpu", "8")]);
    let us = labels(&[("region", "us"), ("cpu", "abc")]);
    let cases: Vec<(NodeSelectorRequirement, &BTreeMap<String, String>, bool)> = vec![
        (req("region", "In", &["eu", "asia"]), &eu, true),
        (req("region", "In", &["eu", "asia"]), &us, false),
        (req("region", "In", &["eu"]), &no, false),
        (req("region", "NotIn", &["eu"]), &eu, false),
        (req("region", "NotIn", &["eu"]), &us, true),
        (req("region", "NotIn", &["eu"]), &no, true),
        (req_no_values("region", "Exists"), &eu, true),
        (req_no_values("region", "Exists"), &no, false),
        (req_no_values("region", "DoesNotExist"), &eu, false),
        (req_no_values("region", "DoesNotExist"), &no, true),
        (req("cpu", "Gt", &["4"]), &eu, true),
        (req("cpu", "Gt", &["8"]), &eu, false),
        (req("cpu", "Gt", &["4"]), &us, false),
        (req("cpu", "Gt", &["4"]), &no, false),
        (req("cpu", "Lt", &["9"]), &eu, true),
        (req("cpu", "Lt", &["8"]), &eu, false),
        (req("cpu", "Lt", &["9"]), &us, false),
        (req("cpu", "Lt", &["9"]), &no, false),
    ];
    for (r, l, want) in cases {
        let s = parse_ok(vec![term(vec![r.clone()])]);
        assert_eq!(s.matches("node", l), want, "{r:?} on {l:?}");
    }
}

#[test]
fn terms_are_ored_and_requirements_anded() {
    let s = parse_ok(vec![
        term(vec![
            req("region", "In", &["eu"]),
            req_no_values("provider", "Exists"),
        ]),
        term(vec![
            req("region", "In", &["us"]),
            req_no_values("gpu", "Exists"),
        ]),
    ]);
    let cases = [
        (labels(&[("region", "eu"), ("provider", "aws")]), true),
        (labels(&[("region", "eu")]), false),
        (labels(&[("region", "us"), ("gpu", "1")]), true),
        (labels(&[("region", "us"), ("provider", "aws")]), false),
        (labels(&[("provider", "aws"), ("gpu", "1")]), false),
        (labels(&[]), false),
    ];
    for (l, want) in cases {
        assert_eq!(s.matches("n", &l), want, "{l:?}");
    }
}

#[test]
fn match_fields_compare_the_node_name() {
    let pinned = parse_ok(vec![field_term(vec![req("metadata.name", "In", &["n1"])])]);
    assert!(pinned.matches("n1", &labels(&[])));
    assert!(!pinned.matches("n2", &labels(&[])));
    let not = parse_ok(vec![field_term(vec![req(
        "metadata.name",
        "NotIn",
        &["n1"],
    )])]);
    assert!(!not.matches("n1", &labels(&[])));
    assert!(not.matches("n2", &labels(&[])));
    // Fields and expressions of one term are ANDed.
    let both = parse_ok(vec![NodeSelectorTerm {
        match_expressions: Some(vec![req_no_values("gpu", "Exists")]),
        match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
    }]);
    assert!(both.matches("n1", &labels(&[("gpu", "1")])));
    assert!(!both.matches("n1", &labels(&[])));
    assert!(!both.matches("n2", &labels(&[("gpu", "1")])));
}

#[test]
fn zero_terms_match_no_node_but_select_every_cluster() {
    let s = parse_ok(vec![]);
    assert!(s.is_empty());
    assert!(!s.matches("n", &labels(&[("a", "b")])));
    assert!(selects_cluster(&s, std::iter::empty()));
    let l = labels(&[]);
    assert!(selects_cluster(&s, [("n", &l)]));
}

#[test]
fn empty_term_matches_nothing() {
    // Parsing rejects it; the matcher still treats it as matching nothing.
    let s = ParsedSelector {
        terms: vec![Term::default()],
    };
    assert!(!s.is_empty());
    assert!(!s.matches("n", &labels(&[("a", "b")])));
    assert!(!selects_cluster(&s, [("n", &labels(&[]))]));
}

#[test]
fn selects_cluster_is_order_independent() {
    let s = parse_ok(vec![term(vec![req("region", "In", &["eu"])])]);
    let a = labels(&[("region", "us")]);
    let b = labels(&[("region", "eu")]);
    let c = labels(&[]);
    let nodes = [("a", &a), ("b", &b), ("c", &c)];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let it = order.iter().map(|&i| nodes[i]);
        assert!(selects_cluster(&s, it), "{order:?}");
    }
    assert!(!selects_cluster(&s, [("a", &a), ("c", &c)]));
    assert!(!selects_cluster(&s, [("c", &c), ("a", &a)]));
    assert!(!selects_cluster(&s, std::iter::empty()));
}
