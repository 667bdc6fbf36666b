//! A pod's required node affinity read the kube-scheduler's way, for `explain`.
//!
//! Apart from the cluster selector's validation (the parent module) because the two readings
//! differ on purpose: validation rejects an empty or malformed term, the scheduler lets it
//! match no node and still counts the other terms. The requirement parser and the matching
//! code are shared, so a term that parses means the same in both.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NodeSelectorTerm;

use super::{parse_term, SelectorError, Term};

/// Which requirement of a term a node fails: its index in the term's `matchExpressions` or
/// `matchFields`, as written (a term only matches when every requirement parsed, so the
/// indexes are those of the original term).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// `matchExpressions[i]`.
    Expression(usize),
    /// `matchFields[i]`.
    Field(usize),
}

/// How one term of a pod's required node affinity fares against one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermOutcome {
    /// Every requirement holds.
    Matches,
    /// The term has no requirement, so it matches no node.
    Empty,
    /// A requirement cannot be parsed, so the term matches no node; the problems, for people.
    Invalid(String),
    /// The node fails this requirement (the first one it fails).
    Fails(Failed),
}

/// One term read the scheduler's way.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LenientTerm {
    Empty,
    Invalid(String),
    Parsed(Term),
}

/// A pod's required node affinity, read as the kube-scheduler reads it.
///
/// The cluster selector's [`parse_terms`] is a validation: an empty or malformed term is an
/// error the user must fix. The scheduler instead matches what it can: an empty term and a
/// term with a requirement it cannot parse match no node, and the other terms still count.
/// Both readings share the requirement parser and the matching code, so a term that parses
/// means the same in both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulingTerms {
    terms: Vec<LenientTerm>,
}

impl SchedulingTerms {
    /// Reads the terms; never fails.
    pub fn parse(terms: &[NodeSelectorTerm]) -> Self {
        let terms = terms
            .iter()
            .enumerate()
            .map(|(i, term)| {
                if term_is_empty(term) {
                    return LenientTerm::Empty;
                }
                let mut errors = Vec::new();
                let parsed = parse_term(term, &format!("nodeSelectorTerms[{i}]"), &mut errors);
                if errors.is_empty() {
                    LenientTerm::Parsed(parsed)
                } else {
                    LenientTerm::Invalid(SelectorError { errors }.to_string())
                }
            })
            .collect();
        SchedulingTerms { terms }
    }

    /// One outcome per term, in order.
    pub fn outcomes(&self, node_name: &str, labels: &BTreeMap<String, String>) -> Vec<TermOutcome> {
        self.terms
            .iter()
            .map(|t| match t {
                LenientTerm::Empty => TermOutcome::Empty,
                LenientTerm::Invalid(m) => TermOutcome::Invalid(m.clone()),
                LenientTerm::Parsed(t) => match t.first_failure(node_name, labels) {
                    None => TermOutcome::Matches,
                    Some(f) => TermOutcome::Fails(f),
                },
            })
            .collect()
    }

    /// Whether some term matches the node (zero terms match no node, as in the scheduler).
    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().any(|t| match t {
            LenientTerm::Parsed(t) => t.matches(node_name, labels),
            LenientTerm::Empty | LenientTerm::Invalid(_) => false,
        })
    }
}

pub(super) fn term_is_empty(term: &NodeSelectorTerm) -> bool {
    term.match_expressions
        .as_deref()
        .unwrap_or_default()
        .is_empty()
        && term.match_fields.as_deref().unwrap_or_default().is_empty()
}
