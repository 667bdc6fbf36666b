//! The cluster selector: one parser, two users.
//!
//! Why this exists: a NamespaceOffloading's `clusterSelector` is a core/v1 NodeSelector whose
//! strings (operators, integer values, keys) the API server does not check. The validating
//! webhook (SPEC §5 rule 4) and the reconciler (SPEC §7 steps 2 and 8) both run it through
//! [`parse_terms`], so the webhook rejects exactly what the reconciler could not match, and the
//! reconciler matches virtual nodes with a selector that is already known to be well formed.
//! Parsing reports every problem at once, each naming its field path, so a user fixes the
//! whole selector in one go.
//!
//! A third user, `explain`, reads pods' required node affinity with the same code, the way the
//! kube-scheduler reads it ([`SchedulingTerms`]: a term that is empty or malformed matches no
//! node instead of being an error), and asks which requirement a node fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};

use super::naming::check_label_key;

mod scheduling;
use scheduling::term_is_empty;
pub use scheduling::{Failed, SchedulingTerms, TermOutcome};

/// Path of the selector's terms inside a NamespaceOffloading, used in error messages.
const TERMS_PATH: &str = "spec.clusterSelector.nodeSelectorTerms";
/// The only field `matchFields` may select on.
const NODE_NAME_FIELD: &str = "metadata.name";
/// Operators accepted in `matchExpressions`, for error messages.
const EXPRESSION_OPERATORS: &str = "In, NotIn, Exists, DoesNotExist, Gt, Lt";

/// One problem in a selector, at one field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where, e.g. `spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[1].operator`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a selector (never empty when returned by [`parse_terms`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SelectorError {
    /// The problems, in the order of the selector's fields.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A requirement's operator with its already-parsed operands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

/// One `matchExpressions` entry on a label.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Operator,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match &self.op {
            Operator::In(set) => value.is_some_and(|v| set.contains(v)),
            Operator::NotIn(set) => value.is_none_or(|v| !set.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Gt(n) => int_value(value).is_some_and(|v| v > *n),
            Operator::Lt(n) => int_value(value).is_some_and(|v| v < *n),
        }
    }
}

fn int_value(value: Option<&String>) -> Option<i64> {
    value.and_then(|v| v.parse::<i64>().ok())
}

/// One `matchFields` entry: `metadata.name In [name]` or `metadata.name NotIn [name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameRequirement {
    negated: bool,
    name: String,
}

impl NameRequirement {
    fn matches(&self, node_name: &str) -> bool {
        (self.name == node_name) != self.negated
    }
}

/// One term: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Term {
    expressions: Vec<Requirement>,
    fields: Vec<NameRequirement>,
}

impl Term {
    fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        // A term without requirements matches nothing (parsing rejects it anyway).
        if self.expressions.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.first_failure(node_name, labels).is_none()
    }

    /// The first requirement the node fails, expressions before fields (`None`: all hold).
    fn first_failure(&self, node_name: &str, labels: &BTreeMap<String, String>) -> Option<Failed> {
        if let Some(i) = self.expressions.iter().position(|r| !r.matches(labels)) {
            return Some(Failed::Expression(i));
        }
        self.fields
            .iter()
            .position(|r| !r.matches(node_name))
            .map(Failed::Field)
    }
}

/// A cluster selector known to be well formed, ready to match virtual nodes.
///
/// There is deliberately no `Default`: the natural default (zero terms) selects **every**
/// cluster, which is the opposite of what a caller falling back from a parse error wants
/// (SPEC §7 step 8: an invalid selector selects nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSelector {
    terms: Vec<Term>,
}

impl ParsedSelector {
    /// Parses a whole NodeSelector; see [`parse_terms`].
    pub fn parse(selector: &NodeSelector) -> Result<Self, SelectorError> {
        parse_terms(&selector.node_selector_terms)
    }

    /// Whether the selector has zero terms (which, for a NamespaceOffloading, means every
    /// remote cluster; see [`selects_cluster`]).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Standard node-selector semantics for one node: the terms are ORed, the requirements
    /// within a term ANDed; `matchFields` `metadata.name` compares `node_name`.
    ///
    /// With **zero terms this returns `false`** (no term can match). It is the caller that
    /// decides that zero terms select every remote cluster: use [`selects_cluster`] for the
    /// per-cluster decision rather than testing nodes one by one.
    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().any(|t| t.matches(node_name, labels))
    }
}

/// Whether a remote cluster is selected (SPEC §7 step 2): the selector has zero terms, or at
/// least one of the cluster's virtual nodes (`(name, labels)` pairs) matches it. The answer does
/// not depend on the order of the nodes.
pub fn selects_cluster<'a>(
    selector: &ParsedSelector,
    nodes: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>)>,
) -> bool {
    selector.is_empty()
        || nodes
            .into_iter()
            .any(|(name, labels)| selector.matches(name, labels))
}

/// Parses a selector's terms, collecting every problem (SPEC §5 rule 4):
/// an unknown operator; `In`/`NotIn` without values; `Exists`/`DoesNotExist` with values;
/// `Gt`/`Lt` without exactly one integer value; a key that is not a label key; a term with
/// neither `matchExpressions` nor `matchFields`; a `matchFields` entry that is not
/// `metadata.name` `In`/`NotIn` with exactly one value.
///
/// Zero terms is valid and yields an empty selector.
pub fn parse_terms(terms: &[NodeSelectorTerm]) -> Result<ParsedSelector, SelectorError> {
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(terms.len());
    for (i, term) in terms.iter().enumerate() {
        let path = format!("{TERMS_PATH}[{i}]");
        if term_is_empty(term) {
            errors.push(FieldError {
                path: path.clone(),
                message: "a term needs at least one matchExpressions or matchFields entry \
                          (an empty term matches no cluster)"
                    .to_owned(),
            });
        }
        parsed.push(parse_term(term, &path, &mut errors));
    }
    if errors.is_empty() {
        Ok(ParsedSelector { terms: parsed })
    } else {
        Err(SelectorError { errors })
    }
}

/// Parses one term's requirements (whose paths start with `path`), recording their problems.
fn parse_term(term: &NodeSelectorTerm, path: &str, errors: &mut Vec<FieldError>) -> Term {
    let mut out = Term::default();
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    for (j, req) in expressions.iter().enumerate() {
        let path = format!("{path}.matchExpressions[{j}]");
        if let Some(r) = parse_expression(req, &path, errors) {
            out.expressions.push(r);
        }
    }
    let fields = term.match_fields.as_deref().unwrap_or_default();
    for (j, req) in fields.iter().enumerate() {
        let path = format!("{path}.matchFields[{j}]");
        if let Some(r) = parse_field(req, &path, errors) {
            out.fields.push(r);
        }
    }
    out
}

fn push(errors: &mut Vec<FieldError>, path: String, message: String) {
    errors.push(FieldError { path, message });
}

/// Parses one `matchExpressions` entry; `None` after recording its problems.
fn parse_expression(
    req: &NodeSelectorRequirement,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Requirement> {
    let before = errors.len();
    if let Err(e) = check_label_key(&req.key) {
        push(
            errors,
            format!("{path}.key"),
            format!("{:?} is not a valid label key: {e}", req.key),
        );
    }
    let values = req.values.as_deref().unwrap_or_default();
    let op = req.operator.as_str();
    let parsed = match op {
        "In" | "NotIn" => {
            if values.is_empty() {
                push(
                    errors,
                    format!("{path}.values"),
                    format!("operator {op} needs at least one value"),
                );
            }
            let set: BTreeSet<String> = values.iter().cloned().collect();
            Some(if op == "In" {
                Operator::In(set)
            } else {
                Operator::NotIn(set)
            })
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                push(
                    errors,
                    format!("{path}.values"),
                    format!(
                        "operator {op} takes no values (it has {}): remove them, or use In to \
                         match specific values",
                        values.len()
                    ),
                );
            }
            Some(if op == "Exists" {
                Operator::Exists
            } else {
                Operator::DoesNotExist
            })
        }
        "Gt" | "Lt" => parse_integer_operand(op, values, path, errors).map(|n| {
            if op == "Gt" {
                Operator::Gt(n)
            } else {
                Operator::Lt(n)
            }
        }),
        other => {
            push(
                errors,
                format!("{path}.operator"),
                format!("unknown operator {other:?} (allowed operators: {EXPRESSION_OPERATORS})"),
            );
            None
        }
    };
    match parsed {
        Some(op) if errors.len() == before => Some(Requirement {
            key: req.key.clone(),
            op,
        }),
        _ => None,
    }
}

fn parse_integer_operand(
    op: &str,
    values: &[String],
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let [value] = values else {
        push(
            errors,
            format!("{path}.values"),
            format!(
                "operator {op} needs exactly one value, an integer (it has {})",
                values.len()
            ),
        );
        return None;
    };
    match value.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            push(
                errors,
                format!("{path}.values[0]"),
                format!("{value:?} is not an integer (operator {op} compares integers)"),
            );
            None
        }
    }
}

/// Parses one `matchFields` entry; `None` after recording its problems.
fn parse_field(
    req: &NodeSelectorRequirement,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<NameRequirement> {
    let before = errors.len();
    if req.key != NODE_NAME_FIELD {
        push(
            errors,
            format!("{path}.key"),
            format!(
                "unsupported field {:?} (matchFields supports only {NODE_NAME_FIELD})",
                req.key
            ),
        );
    }
    let negated = match req.operator.as_str() {
        "In" => false,
        "NotIn" => true,
        other => {
            push(
                errors,
                format!("{path}.operator"),
                format!("operator {other:?} is not supported in matchFields (allowed: In, NotIn)"),
            );
            false
        }
    };
    let values = req.values.as_deref().unwrap_or_default();
    let name = match values {
        [name] => Some(name.clone()),
        _ => {
            push(
                errors,
                format!("{path}.values"),
                format!(
                    "matchFields needs exactly one value, a node name (it has {})",
                    values.len()
                ),
            );
            None
        }
    };
    match name {
        Some(name) if errors.len() == before => Some(NameRequirement { negated, name }),
        _ => None,
    }
}

#[cfg(test)]
#[path = "selector_tests.rs"]
mod tests;
