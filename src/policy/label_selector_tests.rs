//! SPEC §9 vectors L1–L7 and more selector cases.

use super::*;

fn r(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: op.to_owned(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn terms(flags: &[&str]) -> Vec<Vec<NodeSelectorRequirement>> {
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    parse_cluster_selector(&flags)
        .unwrap()
        .node_selector_terms
        .into_iter()
        .map(|t| t.match_expressions.unwrap_or_default())
        .collect()
}

#[test]
fn l1_equality() {
    assert_eq!(terms(&["key=value"]), [vec![r("key", "In", &["value"])]]);
}

#[test]
fn l2_and_within_one_flag() {
    assert_eq!(
        terms(&["key=value,!staging"]),
        [vec![
            r("key", "In", &["value"]),
            r("staging", "DoesNotExist", &[])
        ]]
    );
}

#[test]
fn l3_repeated_flags_are_ored() {
    assert_eq!(
        terms(&["key=value", "!staging"]),
        [
            vec![r("key", "In", &["value"])],
            vec![r("staging", "DoesNotExist", &[])]
        ]
    );
}

#[test]
fn l4_set_and_spaces() {
    assert_eq!(
        terms(&["region in (europe,us-west), !staging"]),
        [vec![
            r("region", "In", &["europe", "us-west"]),
            r("staging", "DoesNotExist", &[])
        ]]
    );
}

#[test]
fn l5_values_sorted_and_deduplicated() {
    assert_eq!(
        terms(&["env notin (b,a,a)"]),
        [vec![r("env", "NotIn", &["a", "b"])]]
    );
}

#[test]
fn l6_not_equal() {
    assert_eq!(terms(&["a!=b"]), [vec![r("a", "NotIn", &["b"])]]);
}

#[test]
fn l7_unfinished_set_names_the_position() {
    let err = parse_term("a in (").unwrap_err();
    assert_eq!(err.position, 7);
    assert!(err.to_string().contains("position 7"), "{err}");
}

#[test]
fn more_forms() {
    assert_eq!(terms(&["k==v"]), [vec![r("k", "In", &["v"])]]);
    assert_eq!(terms(&["gpu"]), [vec![r("gpu", "Exists", &[])]]);
    assert_eq!(
        terms(&[" liqo.io/provider = aws "]),
        [vec![r("liqo.io/provider", "In", &["aws"])]]
    );
    assert_eq!(
        terms(&["k in ( a , b )"]),
        [vec![r("k", "In", &["a", "b"])]]
    );
    // `in` and `notin` are keywords only as whole words.
    assert_eq!(terms(&["index"]), [vec![r("index", "Exists", &[])]]);
    assert_eq!(
        terms(&["k=", "x"]),
        [vec![r("k", "In", &[""])], vec![r("x", "Exists", &[])]]
    );
    // No selector: zero terms, every cluster (SPEC §9).
    assert!(terms(&[]).is_empty());
}

#[test]
fn errors_point_at_the_problem() {
    let cases = [
        ("", 1, "expected a label key"),
        ("a,", 3, "expected a label key"),
        ("a=b c", 5, "unexpected"),
        ("a in b", 6, "expected '('"),
        ("a in (b c)", 9, "expected ',' or ')'"),
        ("a in ()", 7, "expected a value"),
        ("Bad Key=1", 5, "unexpected"),
        ("-k=v", 1, "not a valid label key"),
        ("k=-v", 3, "not a valid label value"),
        ("!", 2, "expected a label key"),
    ];
    for (text, position, needle) in cases {
        let err = parse_term(text).unwrap_err();
        assert_eq!(err.position, position, "{text:?}: {err}");
        assert!(err.message.contains(needle), "{text:?}: {err}");
    }
}

#[test]
fn output_is_accepted_by_the_webhook_parser() {
    let flags = [
        "region in (europe,us-west),!staging".to_owned(),
        "gpu,tier!=free".to_owned(),
    ];
    let selector = parse_cluster_selector(&flags).unwrap();
    assert!(ParsedSelector::parse(&selector).is_ok());
}
