//! How an explanation is printed: for people, short aligned sections in SPEC §11's order
//! (offloading, admission, nodes, verdict), coloured only on a terminal; for machines, the
//! same values as JSON.
//!
//! Large clusters would bury the answer under thousands of identical node lines, so within a
//! cluster the nodes that share one outcome are summarised as one line with a count when there
//! are more than [`SUMMARY_ABOVE`] of them; the verdict lists a few names per cluster.

#[cfg(test)]
#[path = "explain_render_tests.rs"]
mod tests;
#[path = "explain_words.rs"]
mod words;

use std::fmt::Write as _;

use super::Report;
use crate::api::consts::SCHEDULING_ENABLED_LABEL;
use crate::policy::explain::{Admission, Change, Explanation, NodeResult, TwinState, Verdict};

/// More nodes than this with the same outcome in one cluster are shown as one line.
pub const SUMMARY_ABOVE: usize = 5;

/// How a cell is coloured on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Good,
    Bad,
    Warn,
}

type Row = Vec<(String, Style)>;

fn plain(text: impl Into<String>) -> (String, Style) {
    (text.into(), Style::Plain)
}

/// Writes rows with every column but the last padded to its widest cell.
struct Printer {
    tty: bool,
    text: String,
}

impl Printer {
    fn paint(&self, text: &str, style: Style) -> String {
        let code = match style {
            _ if !self.tty => return text.to_owned(),
            Style::Plain => return text.to_owned(),
            Style::Good => "32",
            Style::Bad => "31",
            Style::Warn => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn heading(&mut self, title: &str) {
        let title = if self.tty {
            format!("\x1b[1m{title}\x1b[0m")
        } else {
            title.to_owned()
        };
        let _ = writeln!(self.text, "{title}");
    }

    fn rows(&mut self, rows: &[Row]) {
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                let cells = rows
                    .iter()
                    .filter(|r| c + 1 < r.len())
                    .map(|r| r[c].0.chars().count());
                cells.max().unwrap_or(0)
            })
            .collect();
        for row in rows {
            let mut line = String::from(" ");
            for (c, (text, style)) in row.iter().enumerate() {
                line.push(' ');
                line.push_str(&self.paint(text, *style));
                if c + 1 < row.len() {
                    let pad = widths[c].saturating_sub(text.chars().count()) + 1;
                    line.push_str(&" ".repeat(pad));
                }
            }
            let _ = writeln!(self.text, "{}", line.trim_end());
        }
    }
}

/// The human form of `reports`, one after another, separated by a blank line.
pub fn human(reports: &[Report], tty: bool) -> String {
    let mut p = Printer {
        tty,
        text: String::new(),
    };
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            p.text.push('\n');
        }
        one(&mut p, report);
    }
    p.text
}

/// The `-o json` form: one document for one report, an array for several.
pub fn json(reports: &[Report]) -> String {
    let text = match reports {
        [one] => serde_json::to_string_pretty(one),
        all => serde_json::to_string_pretty(all),
    };
    // Plain data of strings, booleans and lists: serializing it cannot fail.
    text.unwrap_or_default() + "\n"
}

fn one(p: &mut Printer, report: &Report) {
    let e = &report.explanation;
    let mut header = format!("{} in namespace {}", report.source, e.namespace);
    if let Some(node) = &e.bound_to {
        let _ = write!(header, ", bound to {node}");
    }
    p.heading(&header);
    p.text.push('\n');
    p.heading("Offloading");
    p.rows(&offloading(e));
    p.heading("Admission");
    p.rows(&admission(e));
    p.heading("Nodes");
    p.rows(&nodes(&e.nodes));
    if let Some(message) = &report.scheduler_message {
        // Apart from the node table, so its label does not widen the cluster column.
        p.rows(&[vec![
            plain("scheduler says:"),
            (message.clone(), Style::Warn),
        ]]);
    }
    p.heading("Verdict");
    p.rows(&verdict(e));
}

fn offloading(e: &Explanation) -> Vec<Row> {
    let o = &e.offloading;
    let webhook = if o.scheduling_enabled {
        plain(format!("on ({SCHEDULING_ENABLED_LABEL}=true)"))
    } else {
        (
            format!("off (namespace not labelled {SCHEDULING_ENABLED_LABEL}=true)"),
            Style::Warn,
        )
    };
    if !o.exists {
        return vec![
            vec![
                plain("NamespaceOffloading"),
                (
                    "none: the namespace is not offloaded".to_owned(),
                    Style::Warn,
                ),
            ],
            vec![plain("pod webhook"), webhook],
        ];
    }
    let strategy = o.strategy.map(|s| s.to_string()).unwrap_or_default();
    let mut selector = plain(words::terms(&o.selector));
    if let Some(error) = &o.selector_error {
        selector = (
            format!("{} (invalid, selects no cluster: {error})", selector.0),
            Style::Bad,
        );
    }
    let mut phase = match o.phase {
        None => ("not processed yet".to_owned(), Style::Warn),
        Some(p) if p.to_string() == "Ready" => plain("Ready"),
        Some(p) => (p.to_string(), Style::Warn),
    };
    if o.stale {
        phase
            .0
            .push_str(" (for an older version of the spec; being processed)");
    }
    if o.terminating {
        phase = (format!("{} (being deleted)", phase.0), Style::Warn);
    }
    let mut rows = vec![
        vec![plain("strategy"), plain(strategy)],
        vec![plain("selector"), selector],
        vec![plain("phase"), phase],
        vec![plain("pod webhook"), webhook],
    ];
    if o.clusters.is_empty() {
        rows.push(vec![
            plain("clusters"),
            plain("none known (no virtual node)"),
        ]);
    }
    for c in &o.clusters {
        let twin = words::twin(&c.twin);
        let twin_style = match c.twin {
            TwinState::Ready => Style::Good,
            _ if c.selected => Style::Warn,
            _ => Style::Plain,
        };
        let selected = if c.selected {
            "selected"
        } else {
            "not selected"
        };
        rows.push(vec![
            plain(format!("cluster {}", c.cluster)),
            plain(selected),
            (twin, twin_style),
        ]);
    }
    rows
}

fn admission(e: &Explanation) -> Vec<Row> {
    let row = |key: &str, text: String, style| vec![plain(key), (text, style)];
    let affinity = |terms: &Option<Vec<String>>| match terms {
        None => "none".to_owned(),
        Some(t) => t.join("  OR  "),
    };
    match &e.admission {
        Admission::NotCalled => vec![row(
            "webhook",
            "not called: the pod is stored as written".to_owned(),
            Style::Warn,
        )],
        Admission::Denied { message } => {
            vec![row("webhook", format!("denies it: {message}"), Style::Bad)]
        }
        Admission::Invalid { message } => {
            vec![row(
                "webhook",
                format!("cannot patch it: {message}"),
                Style::Bad,
            )]
        }
        Admission::Admitted {
            toleration_added,
            affinity_changed,
            required_affinity,
        } => {
            let toleration = if *toleration_added {
                "added"
            } else {
                "not added"
            };
            let mut terms = affinity(required_affinity);
            if *affinity_changed {
                terms.push_str(" (set by the webhook)");
            }
            vec![
                row("webhook", "admits it".to_owned(), Style::Good),
                row(
                    "toleration",
                    format!("virtual-node toleration {toleration}"),
                    Style::Plain,
                ),
                row("affinity", terms, Style::Plain),
            ]
        }
        Admission::NotOffloaded => vec![row(
            "policy",
            "none: the namespace has no NamespaceOffloading".to_owned(),
            Style::Plain,
        )],
        Admission::UpToDate => vec![row(
            "policy",
            "followed: the pod carries what the policy asks for now".to_owned(),
            Style::Good,
        )],
        Admission::Outdated {
            why,
            toleration_missing,
            required_affinity_now,
            controlled,
        } => {
            let mut rows = vec![row(
                "policy",
                format!("not followed: {}", words::outdated(*why)),
                Style::Warn,
            )];
            if *toleration_missing {
                let text = "the virtual-node toleration".to_owned();
                rows.push(row("missing", text, Style::Plain));
            }
            let now = affinity(required_affinity_now);
            rows.push(row("affinity now", now, Style::Plain));
            let todo = words::recreate(&e.namespace, e.pod.as_deref(), Some(*controlled));
            rows.push(row("to do", todo, Style::Plain));
            rows
        }
        Admission::Refused { message } => vec![row(
            "policy",
            format!("the webhook would deny such a pod now: {message}"),
            Style::Bad,
        )],
    }
}

/// One line per node, grouped by cluster (local first, as the core orders them); within a
/// cluster, more than [`SUMMARY_ABOVE`] nodes with one outcome become one line.
fn nodes(nodes: &[NodeResult]) -> Vec<Row> {
    let outcome = |n: &NodeResult| match &n.blocker {
        None => ("may run".to_owned(), Style::Good),
        Some(b) => (words::blocker(b), Style::Bad),
    };
    let group = |n: &NodeResult| match (&n.cluster, n.virtual_node) {
        (Some(c), _) => c.clone(),
        (None, false) => "local".to_owned(),
        (None, true) => "?".to_owned(),
    };
    let mut rows = Vec::new();
    let mut start = 0;
    while start < nodes.len() {
        let name = group(&nodes[start]);
        let end = start
            + nodes[start..]
                .iter()
                .take_while(|n| group(n) == name)
                .count();
        let members = &nodes[start..end];
        let outcomes: Vec<(String, Style)> = members.iter().map(outcome).collect();
        let mut summarised: Vec<&str> = Vec::new();
        for (i, node) in members.iter().enumerate() {
            let same = outcomes.iter().filter(|o| o.0 == outcomes[i].0).count();
            if same <= SUMMARY_ABOVE {
                rows.push(vec![plain(&name), plain(&node.name), outcomes[i].clone()]);
            } else if !summarised.contains(&outcomes[i].0.as_str()) {
                summarised.push(&outcomes[i].0);
                let count = format!("{same} nodes");
                rows.push(vec![plain(&name), plain(count), outcomes[i].clone()]);
            }
        }
        start = end;
    }
    if rows.is_empty() {
        rows.push(vec![("no node in the cluster".to_owned(), Style::Bad)]);
    }
    rows
}

fn verdict(e: &Explanation) -> Vec<Row> {
    match &e.verdict {
        Verdict::MayRun { clusters } => {
            let count: usize = clusters.iter().map(|c| c.nodes.len()).sum();
            let groups: Vec<String> = clusters
                .iter()
                .map(|c| {
                    let mut names = c.nodes[..c.nodes.len().min(SUMMARY_ABOVE)].join(", ");
                    if c.nodes.len() > SUMMARY_ABOVE {
                        let _ = write!(names, " and {} more", c.nodes.len() - SUMMARY_ABOVE);
                    }
                    format!("{names} ({})", c.cluster.as_deref().unwrap_or("local"))
                })
                .collect();
            let nodes = if count == 1 { "node" } else { "nodes" };
            vec![vec![(
                format!("may run on {count} {nodes}: {}", groups.join("; ")),
                Style::Good,
            )]]
        }
        Verdict::NoNode {
            change,
            then_recreate,
        } => {
            let mut rows = vec![
                vec![("no node may run the pod".to_owned(), Style::Bad)],
                vec![
                    plain("first change:"),
                    plain(words::change(change, &e.namespace, &e.offloading)),
                ],
            ];
            let controlled = match &e.admission {
                Admission::Outdated { controlled, .. } => Some(*controlled),
                _ => None,
            };
            let todo = words::recreate(&e.namespace, e.pod.as_deref(), controlled);
            if *then_recreate {
                rows.push(vec![
                    plain("then:"),
                    plain(format!("recreate the pod: {todo}")),
                ]);
            } else if matches!(change, Change::RecreatePod) {
                rows.push(vec![plain("how:"), plain(todo)]);
            }
            rows
        }
    }
}
