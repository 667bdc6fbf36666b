//! What the commands print while they work.
//!
//! Every event worth keeping is a line: the object applied, a cluster that became ready or
//! started failing, a twin removed, the end result. Those lines are the same on a terminal and
//! in a pipe or CI log, so scripts and people read the same thing. On a terminal a spinner line
//! also shows what is still awaited; it is redrawn in place and cleared before the next
//! permanent line, and never written when stdout is not a terminal (no control characters in
//! logs). Warnings and failures go to the error stream, as kubectl does.

use std::collections::BTreeMap;
use std::io::Write;

use super::watch::ClusterState;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Prints progress to an output and an error stream.
pub struct Reporter<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    tty: bool,
    frame: usize,
    spinning: bool,
    /// Last seen state of each cluster, per namespace.
    seen: BTreeMap<String, BTreeMap<String, ClusterState>>,
}

impl<'a> Reporter<'a> {
    /// A reporter; `tty` is whether `out` is a terminal.
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write, tty: bool) -> Self {
        Reporter {
            out,
            err,
            tty,
            frame: 0,
            spinning: false,
            seen: BTreeMap::new(),
        }
    }

    fn clear_spinner(&mut self) {
        if self.spinning {
            // Printing fails only when the reader went away; there is nobody to tell then.
            let _ = write!(self.out, "\r\x1b[K");
            self.spinning = false;
        }
    }

    /// A line on the output stream.
    pub fn line(&mut self, text: &str) {
        self.clear_spinner();
        let _ = writeln!(self.out, "{text}");
    }

    /// A line on the error stream.
    pub fn error_line(&mut self, text: &str) {
        self.clear_spinner();
        let _ = self.out.flush();
        let _ = writeln!(self.err, "{text}");
    }

    /// A warning from the API server or about the result.
    pub fn warning(&mut self, text: &str) {
        self.error_line(&format!("Warning: {text}"));
    }

    /// The spinner line (terminal only): what is still awaited.
    pub fn waiting(&mut self, text: &str) {
        if !self.tty {
            return;
        }
        self.clear_spinner();
        let frame = FRAMES[self.frame % FRAMES.len()];
        self.frame += 1;
        let _ = write!(self.out, "{frame} {text}");
        let _ = self.out.flush();
        self.spinning = true;
    }

    /// Prints what changed for the clusters of `namespace` since the last call: a line when a
    /// cluster becomes ready (offloading only), starts failing (or fails differently), or no
    /// longer holds a twin namespace.
    pub fn clusters(
        &mut self,
        namespace: &str,
        now: &BTreeMap<String, ClusterState>,
        removing: bool,
    ) {
        let before = self.seen.remove(namespace).unwrap_or_default();
        let mut lines = Vec::new();
        for (id, state) in now {
            let old = before.get(id);
            if old == Some(state) {
                continue;
            }
            match state {
                ClusterState::Ready if !removing => {
                    lines.push(format!("{namespace}: cluster {id} ready"))
                }
                ClusterState::Failing(m) => {
                    lines.push(format!("{namespace}: cluster {id} failing: {m}"))
                }
                ClusterState::NotSelected if old.is_some() => {
                    lines.push(format!("{namespace}: cluster {id} twin namespace deleted"))
                }
                _ => {}
            }
        }
        let gone = before
            .iter()
            .filter(|(id, s)| **s != ClusterState::NotSelected && !now.contains_key(*id));
        for (id, _) in gone {
            lines.push(format!("{namespace}: cluster {id} twin namespace deleted"));
        }
        for line in lines {
            self.line(&line);
        }
        self.seen.insert(namespace.to_owned(), now.clone());
    }

    /// Ends the output: clears the spinner and flushes.
    pub fn finish(&mut self) {
        self.clear_spinner();
        let _ = self.out.flush();
        let _ = self.err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(items: &[(&str, ClusterState)]) -> BTreeMap<String, ClusterState> {
        items
            .iter()
            .map(|(id, s)| ((*id).to_owned(), s.clone()))
            .collect()
    }

    #[test]
    fn a_line_per_cluster_change_and_no_control_characters_off_a_terminal() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut r = Reporter::new(&mut out, &mut err, false);
        let pending = ClusterState::Pending("creating".into());
        let first = states(&[
            ("r1", pending.clone()),
            ("r2", pending),
            ("r3", ClusterState::NotSelected),
        ]);
        r.clusters("shop", &first, false);
        r.waiting("shop: waiting for r1, r2");
        let second = states(&[
            ("r1", ClusterState::Ready),
            ("r2", ClusterState::Failing("refused".into())),
            ("r3", ClusterState::NotSelected),
        ]);
        r.clusters("shop", &second, false);
        // Unchanged states print nothing.
        r.clusters("shop", &second, false);
        r.clusters(
            "shop",
            &states(&[
                ("r2", ClusterState::Ready),
                ("r3", ClusterState::NotSelected),
            ]),
            false,
        );
        // Removing: ready clusters are not news; deleted twins are.
        r.clusters("other", &states(&[("r1", ClusterState::Ready)]), true);
        r.clusters("other", &states(&[("r1", ClusterState::NotSelected)]), true);
        r.warning("careful");
        r.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "shop: cluster r1 ready\n\
             shop: cluster r2 failing: refused\n\
             shop: cluster r2 ready\n\
             shop: cluster r1 twin namespace deleted\n\
             other: cluster r1 twin namespace deleted\n"
        );
        assert_eq!(String::from_utf8(err).unwrap(), "Warning: careful\n");
    }

    #[test]
    fn the_spinner_is_redrawn_and_cleared_on_a_terminal() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut r = Reporter::new(&mut out, &mut err, true);
        r.waiting("a");
        r.waiting("b");
        r.line("done");
        r.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "⠋ a\r\x1b[K⠙ b\r\x1b[Kdone\n"
        );
    }
}
