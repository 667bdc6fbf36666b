//! Node affinity tables: the node selector, every operator as the scheduler reads it, and
//! terms ORed with each failing term named.

use super::*;

#[test]
fn node_selector_names_the_key_and_both_values() {
    let pod = PodSpec {
        node_selector: selector(&[("a", "1"), ("b", "2")]),
        ..PodSpec::default()
    };
    let cases = [
        (node("n", &[("a", "1"), ("b", "2")]), None),
        (
            node("n", &[("a", "1")]),
            Some(Blocker::NodeSelector {
                key: "b".to_owned(),
                wanted: "2".to_owned(),
                actual: None,
            }),
        ),
        (
            node("n", &[("a", "0")]),
            Some(Blocker::NodeSelector {
                key: "a".to_owned(),
                wanted: "1".to_owned(),
                actual: Some("0".to_owned()),
            }),
        ),
    ];
    for (n, want) in cases {
        assert_eq!(blocker(&pod, None, &n), want, "{n:?}");
    }
}

#[test]
fn every_operator_follows_the_scheduler() {
    let n = node("n1", &[("region", "eu"), ("cores", "8"), ("tier", "gold")]);
    let one = |r: NodeSelectorRequirement| PodSpec {
        affinity: required(vec![exprs(vec![r])]),
        ..PodSpec::default()
    };
    let cases = [
        (req("region", "In", &["eu", "us"]), None),
        (
            req("region", "In", &["us"]),
            Some(fails(0, "region=us", Some("eu"))),
        ),
        (req("region", "NotIn", &["us"]), None),
        (req("absent", "NotIn", &["x"]), None),
        (
            req("region", "NotIn", &["eu"]),
            Some(fails(0, "region!=eu", Some("eu"))),
        ),
        (req("region", "Exists", &[]), None),
        (req("gpu", "Exists", &[]), Some(fails(0, "gpu", None))),
        (req("gpu", "DoesNotExist", &[]), None),
        (
            req("region", "DoesNotExist", &[]),
            Some(fails(0, "!region", Some("eu"))),
        ),
        (req("cores", "Gt", &["4"]), None),
        (
            req("cores", "Gt", &["8"]),
            Some(fails(0, "cores>8", Some("8"))),
        ),
        (req("cores", "Lt", &["9"]), None),
        (
            req("cores", "Lt", &["8"]),
            Some(fails(0, "cores<8", Some("8"))),
        ),
        // A label value that is not an integer never matches Gt or Lt.
        (
            req("tier", "Gt", &["1"]),
            Some(fails(0, "tier>1", Some("gold"))),
        ),
        (
            req("tier", "Lt", &["1"]),
            Some(fails(0, "tier<1", Some("gold"))),
        ),
        (
            req("absent", "Lt", &["1"]),
            Some(fails(0, "absent<1", None)),
        ),
    ];
    for (r, want) in cases {
        let want = want.map(|f| Blocker::NodeAffinity { terms: vec![f] });
        assert_eq!(blocker(&one(r.clone()), None, &n), want, "{r:?}");
    }
}

#[test]
fn terms_are_ored_and_each_failing_term_is_named() {
    let n = node("n1", &[("region", "eu"), ("gpu", "yes")]);
    let fields = |op: &str, name: &str| NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![req("metadata.name", op, &[name])]),
    };
    let pod = |terms| PodSpec {
        affinity: required(terms),
        ..PodSpec::default()
    };
    let failing = pod(vec![
        exprs(vec![
            req("region", "In", &["eu"]),
            req("gpu", "In", &["no"]),
        ]),
        fields("In", "n2"),
        NodeSelectorTerm::default(),
        exprs(vec![req("region", "Bogus", &["eu"])]),
        fields("NotIn", "n1"),
    ]);
    let Some(Blocker::NodeAffinity { terms }) = blocker(&failing, None, &n) else {
        panic!("expected a node-affinity blocker");
    };
    assert_eq!(
        terms,
        vec![
            fails(0, "gpu=no", Some("yes")),
            fails(1, "metadata.name=n2", Some("n1")),
            TermFailure::Empty { term: 2 },
            TermFailure::Invalid {
                term: 3,
                message: "nodeSelectorTerms[3].matchExpressions[0].operator: unknown operator \
                          \"Bogus\" (allowed operators: In, NotIn, Exists, DoesNotExist, Gt, Lt)"
                    .to_owned(),
            },
            fails(4, "metadata.name!=n1", Some("n1")),
        ]
    );
    // One matching term is enough, even beside empty and invalid ones.
    let ok = pod(vec![
        NodeSelectorTerm::default(),
        exprs(vec![req("region", "Bogus", &["eu"])]),
        fields("In", "n1"),
    ]);
    assert_eq!(blocker(&ok, None, &n), None);
    // A required affinity with zero terms matches no node.
    assert_eq!(
        blocker(&pod(vec![]), None, &n),
        Some(Blocker::NodeAffinity { terms: vec![] })
    );
}
