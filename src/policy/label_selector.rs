//! Label-selector syntax for cluster selectors (`offload namespace --selector`, SPEC §9).
//!
//! Users write cluster selectors the way they write `kubectl -l`: `,` ANDs requirements
//! within one term, and each repeated flag is another term (ORed). Supported: `k=v`, `k==v`
//! (In), `k!=v` (NotIn; the reference rejected it), `k in (a,b)`, `k notin (a,b)`, `k`
//! (Exists) and `!k` (DoesNotExist). Values are sorted and deduplicated so the same intent
//! always gives the same object. The result is checked with `policy::selector`, the parser
//! the validating webhook runs, so the command line rejects exactly what the server would.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};

use super::naming::check_label_key;
use super::selector::ParsedSelector;

/// A selector that cannot be parsed; `position` is the 1-based character column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {text:?} at position {position}: {message}")]
pub(crate) struct SyntaxError {
    /// The selector as given.
    pub text: String,
    /// 1-based column of the problem.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

struct Scanner<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn error(&self, at: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            text: self.text.to_owned(),
            position: at + 1,
            message: message.into(),
        }
    }

    fn skip_spaces(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self
            .chars
            .get(self.pos..self.pos + n)
            .is_some_and(|w| w.iter().copied().eq(s.chars()))
        {
            self.pos += n;
            return true;
        }
        false
    }

    /// A key or value: everything up to a space, an operator character, `,` or a parenthesis.
    fn word(&mut self) -> (usize, String) {
        self.skip_spaces();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !c.is_whitespace() && !"=!,()".contains(c))
        {
            self.pos += 1;
        }
        (start, self.chars[start..self.pos].iter().collect())
    }

    /// `in`/`notin` as a whole word at the current position.
    fn keyword(&mut self, kw: &str) -> bool {
        let save = self.pos;
        if self.eat(kw) && self.peek().is_none_or(|c| c.is_whitespace() || c == '(') {
            return true;
        }
        self.pos = save;
        false
    }
}

fn check_value(sc: &Scanner<'_>, at: usize, value: &str) -> Result<(), SyntaxError> {
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let ok_ends = value.is_empty()
        || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if value.len() > 63 || !ok_chars || !ok_ends {
        return Err(sc.error(
            at,
            format!("{value:?} is not a valid label value (at most 63 characters: alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)"),
        ));
    }
    Ok(())
}

fn requirement(key: String, operator: &str, values: BTreeSet<String>) -> NodeSelectorRequirement {
    let values = (!values.is_empty()).then(|| values.into_iter().collect());
    NodeSelectorRequirement {
        key,
        operator: operator.to_owned(),
        values,
    }
}

/// `( v, v, … )` after `in`/`notin`.
fn value_set(sc: &mut Scanner<'_>) -> Result<BTreeSet<String>, SyntaxError> {
    sc.skip_spaces();
    if !sc.eat("(") {
        return Err(sc.error(sc.pos, "expected '(' after in/notin"));
    }
    let mut values = BTreeSet::new();
    loop {
        let (at, v) = sc.word();
        if v.is_empty() {
            return Err(sc.error(at, "expected a value"));
        }
        check_value(sc, at, &v)?;
        values.insert(v);
        sc.skip_spaces();
        if sc.eat(")") {
            return Ok(values);
        }
        if !sc.eat(",") {
            return Err(sc.error(sc.pos, "expected ',' or ')'"));
        }
    }
}

fn one_requirement(sc: &mut Scanner<'_>) -> Result<NodeSelectorRequirement, SyntaxError> {
    sc.skip_spaces();
    let negated = sc.eat("!");
    let (key_at, key) = sc.word();
    if key.is_empty() {
        return Err(sc.error(key_at, "expected a label key"));
    }
    check_label_key(&key)
        .map_err(|e| sc.error(key_at, format!("{key:?} is not a valid label key: {e}")))?;
    if negated {
        return Ok(requirement(key, "DoesNotExist", BTreeSet::new()));
    }
    sc.skip_spaces();
    let operator = if sc.eat("==") || sc.eat("=") {
        "In"
    } else if sc.eat("!=") {
        "NotIn"
    } else if sc.keyword("notin") {
        return Ok(requirement(key, "NotIn", value_set(sc)?));
    } else if sc.keyword("in") {
        return Ok(requirement(key, "In", value_set(sc)?));
    } else {
        return Ok(requirement(key, "Exists", BTreeSet::new()));
    };
    let (at, value) = sc.word();
    check_value(sc, at, &value)?;
    Ok(requirement(key, operator, BTreeSet::from([value])))
}

/// One selector (one term): requirements separated by `,`.
pub(crate) fn parse_term(text: &str) -> Result<NodeSelectorTerm, SyntaxError> {
    let mut sc = Scanner {
        text,
        chars: text.chars().collect(),
        pos: 0,
    };
    let mut expressions = Vec::new();
    loop {
        expressions.push(one_requirement(&mut sc)?);
        sc.skip_spaces();
        match sc.peek() {
            None => break,
            Some(',') => sc.pos += 1,
            Some(c) => {
                return Err(sc.error(sc.pos, format!("unexpected {c:?}; expected ',' or the end")))
            }
        }
    }
    Ok(NodeSelectorTerm {
        match_expressions: Some(expressions),
        match_fields: None,
    })
}

/// Every `--selector` value as one term each (ORed); no value gives zero terms (every
/// cluster, SPEC §9). The result is checked with the webhook's selector parser.
pub(crate) fn parse_cluster_selector(flags: &[String]) -> Result<NodeSelector, String> {
    let terms = flags
        .iter()
        .map(|f| parse_term(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let selector = NodeSelector {
        node_selector_terms: terms,
    };
    ParsedSelector::parse(&selector).map_err(|e| e.to_string())?;
    Ok(selector)
}

#[cfg(test)]
#[path = "label_selector_tests.rs"]
mod tests;
