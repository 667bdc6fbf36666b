//! The imposed node selector and its merge into a pod's required node affinity (SPEC §3.4–5).
//!
//! Pod terms are handled as the JSON that was received, never as re-serialized typed values:
//! a newer API server may send fields this build does not know, and a patch built from a typed
//! copy would silently drop them. Requirements are compared through a normalized identity
//! (key, operator, set of values), so duplicates are dropped and the merge is idempotent.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use serde_json::{Map, Value};

use crate::api::consts::{VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE};
use crate::api::PodOffloadingStrategy;

const EXPRESSIONS: &str = "matchExpressions";
const FIELDS: &str = "matchFields";

/// The identity of a requirement: same key, same operator, same set of values.
/// A missing `values` equals an empty one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReqId {
    key: String,
    operator: String,
    values: BTreeSet<String>,
}

impl ReqId {
    /// Reads a requirement leniently; `None` for JSON that is not a requirement (it then
    /// equals nothing, and is kept as it is).
    fn of(v: &Value) -> Option<ReqId> {
        let o = v.as_object()?;
        let text = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let values = match o.get("values") {
            None | Some(Value::Null) => BTreeSet::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
            Some(_) => return None,
        };
        Some(ReqId {
            key: text("key"),
            operator: text("operator"),
            values,
        })
    }
}

/// One requirement of an imposed term: its identity and the JSON to insert.
#[derive(Debug, Clone, PartialEq)]
struct Req {
    id: ReqId,
    json: Value,
}

impl Req {
    fn new(r: &NodeSelectorRequirement) -> Req {
        let json = serde_json::to_value(r).unwrap_or(Value::Null);
        let id = ReqId::of(&json).unwrap_or(ReqId {
            key: r.key.clone(),
            operator: r.operator.clone(),
            values: BTreeSet::new(),
        });
        Req { id, json }
    }
}

/// One imposed term, ready to be merged.
#[derive(Debug, Clone, PartialEq)]
struct ImposedTerm {
    expressions: Vec<Req>,
    fields: Vec<Req>,
}

/// The selector imposed on a namespace's pods, computed once per NamespaceOffloading change.
#[derive(Debug, Clone, PartialEq)]
pub struct ImposedSelector {
    terms: Vec<ImposedTerm>,
    /// The terms as JSON wrapped in 0 to 3 of their parents (`nodeSelectorTerms` alone, then
    /// with `requiredDuringScheduling…`, `nodeAffinity`, `affinity`'s content): what is added
    /// when the pod lacks that level.
    nested: [Value; 4],
}

fn virtual_node_requirement(operator: &str) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: VIRTUAL_NODE_LABEL.to_owned(),
        operator: operator.to_owned(),
        values: Some(vec![VIRTUAL_NODE_VALUE.to_owned()]),
    }
}

impl ImposedSelector {
    /// The imposed selector I of SPEC §3.4 for `strategy` and the cluster selector's terms;
    /// `None` when the affinity must be left untouched.
    pub fn for_strategy(strategy: PodOffloadingStrategy, cs: &[NodeSelectorTerm]) -> Option<Self> {
        let terms: Vec<NodeSelectorTerm> = match strategy {
            PodOffloadingStrategy::Local => return None,
            PodOffloadingStrategy::Remote if cs.is_empty() => vec![NodeSelectorTerm {
                match_expressions: Some(vec![virtual_node_requirement("In")]),
                match_fields: None,
            }],
            PodOffloadingStrategy::Remote => cs
                .iter()
                .map(|t| {
                    let mut t = t.clone();
                    t.match_expressions
                        .get_or_insert_with(Vec::new)
                        .push(virtual_node_requirement("In"));
                    t
                })
                .collect(),
            PodOffloadingStrategy::LocalAndRemote if cs.is_empty() => return None,
            PodOffloadingStrategy::LocalAndRemote => {
                let mut terms = cs.to_vec();
                terms.push(NodeSelectorTerm {
                    match_expressions: Some(vec![virtual_node_requirement("NotIn")]),
                    match_fields: None,
                });
                terms
            }
        };
        Some(Self::from_terms(&terms))
    }

    /// `[[NotIn]]`: local nodes only. What `LocalAndRemote` imposes when the cluster selector
    /// selects no cluster (SPEC §3: the mutation never widens what the selector allows).
    pub fn local_only() -> Self {
        Self::from_terms(&[NodeSelectorTerm {
            match_expressions: Some(vec![virtual_node_requirement("NotIn")]),
            match_fields: None,
        }])
    }

    fn from_terms(terms: &[NodeSelectorTerm]) -> Self {
        let reqs = |list: &Option<Vec<NodeSelectorRequirement>>| -> Vec<Req> {
            let mut out: Vec<Req> = Vec::new();
            for r in list.iter().flatten().map(Req::new) {
                if !out.iter().any(|o| o.id == r.id) {
                    out.push(r);
                }
            }
            out
        };
        let terms: Vec<ImposedTerm> = terms
            .iter()
            .map(|t| ImposedTerm {
                expressions: reqs(&t.match_expressions),
                fields: reqs(&t.match_fields),
            })
            .collect();
        let json: Vec<Value> = terms.iter().map(|t| extend_term(&Map::new(), t)).collect();
        let wrap = |inner: &Value, key: &str| {
            Value::Object(Map::from_iter([(key.to_owned(), inner.clone())]))
        };
        let n0 = Value::Array(json);
        let n1 = wrap(&n0, "nodeSelectorTerms");
        let n2 = wrap(&n1, "requiredDuringSchedulingIgnoredDuringExecution");
        let n3 = wrap(&n2, "nodeAffinity");
        ImposedSelector {
            terms,
            nested: [n0, n1, n2, n3],
        }
    }

    /// The imposed terms wrapped in `parents` of their missing parents (0 to 3): the terms
    /// alone, `{nodeSelectorTerms}`, `{requiredDuring…: {…}}`, `{nodeAffinity: {…}}`.
    pub fn nested(&self, parents: usize) -> &Value {
        &self.nested[parents.min(3)]
    }

    /// The AND of the pod's terms and the imposed ones, in disjunctive form (SPEC §3.5): for
    /// each pod term (outer) and imposed term (inner), the pod term extended with the imposed
    /// requirements it lacks; a pod term that already holds every requirement of some imposed
    /// term is emitted alone, which is what makes the merge idempotent.
    pub fn merge_into(&self, pod_terms: &[Value]) -> Vec<Value> {
        let mut out = Vec::with_capacity(pod_terms.len() * self.terms.len().max(1));
        let empty = Map::new();
        for p in pod_terms {
            let p_obj = p.as_object().unwrap_or(&empty);
            let have_exprs = ids(p_obj.get(EXPRESSIONS));
            let have_fields = ids(p_obj.get(FIELDS));
            let implied = self.terms.iter().any(|i| {
                i.expressions.iter().all(|r| have_exprs.contains(&r.id))
                    && i.fields.iter().all(|r| have_fields.contains(&r.id))
            });
            if implied {
                out.push(p.clone());
                continue;
            }
            for i in &self.terms {
                out.push(extend_term(p_obj, i));
            }
        }
        out
    }
}

fn ids(list: Option<&Value>) -> Vec<ReqId> {
    list.and_then(Value::as_array)
        .map_or_else(Vec::new, |a| a.iter().filter_map(ReqId::of).collect())
}

/// `base` (a pod term, kept as received) with the imposed term's requirements appended, except
/// those it already holds.
fn extend_term(base: &Map<String, Value>, imposed: &ImposedTerm) -> Value {
    let mut term = base.clone();
    append_missing(&mut term, EXPRESSIONS, &imposed.expressions);
    append_missing(&mut term, FIELDS, &imposed.fields);
    Value::Object(term)
}

fn append_missing(term: &mut Map<String, Value>, field: &str, reqs: &[Req]) {
    if reqs.is_empty() {
        return;
    }
    let have = ids(term.get(field));
    let missing: Vec<Value> = reqs
        .iter()
        .filter(|r| !have.contains(&r.id))
        .map(|r| r.json.clone())
        .collect();
    if missing.is_empty() {
        return;
    }
    match term.get_mut(field) {
        Some(Value::Array(list)) => list.extend(missing),
        // Absent, null, or not a list (a malformed pod the API server will reject anyway).
        _ => {
            term.insert(field.to_owned(), Value::Array(missing));
        }
    }
}
