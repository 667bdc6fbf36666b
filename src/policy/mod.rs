//! Pure decisions: no I/O, no async, no API client.
//!
//! Everything an admission answer or a reconcile depends on is decided here from plain values,
//! so it can be tested with tables of vectors (SPEC §3–§5, §7). The admission layer only
//! decodes requests, calls these functions and encodes the answer.

mod affinity;
pub(crate) mod drift;
pub mod explain;
pub mod gate;
pub(crate) mod label_selector;
pub mod mutate;
pub(crate) mod namespace;
pub(crate) mod naming;
pub(crate) mod nodes;
pub(crate) mod object;
pub(crate) mod patch;
pub mod selector;
pub(crate) mod selector_text;
mod toleration;
pub mod validate;

pub use affinity::ImposedSelector;
pub use toleration::{tolerates_virtual_node, virtual_node_toleration};

/// The outcome of a validating decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Admit, possibly with warnings for the requesting client.
    Allow {
        /// Messages shown to the user (kubectl prints them as `Warning: ...`).
        warnings: Vec<String>,
    },
    /// Refuse, with a message written for a person: what is wrong and what to do.
    Deny(String),
}

impl Verdict {
    /// Admit without warnings.
    pub fn allow() -> Self {
        Verdict::Allow {
            warnings: Vec::new(),
        }
    }

    /// Whether the request is admitted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allow { .. })
    }
}
