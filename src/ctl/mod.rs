//! The `offload namespace` and `unoffload namespace` commands as a library (SPEC §9).
//!
//! The commands are split the same way as the server: `intent` turns flags into the
//! NamespaceOffloading to apply and `watch` reads a status into what a person needs to know,
//! both without I/O, so they are checked as tables; `api` is the only code that talks to the
//! API server (server-side apply, read, delete, with the webhooks' `Warning` headers kept);
//! `progress` prints; `offload` and `unoffload` are the flows, which take a `kube::Client`
//! so they run unchanged against a real cluster or a scripted one in tests. The `cli` module
//! only parses arguments, builds the client and maps the outcome to an exit code.
//! `explain` (SPEC §11) is the read-only command: it gathers what the pure explanation core
//! (`policy::explain`) needs and prints its answer.

pub mod api;
pub(crate) mod drift;
pub(crate) mod errors;
pub mod evict;
mod evict_run;
pub mod explain;
pub mod intent;
pub mod offload;
pub mod progress;
pub mod unoffload;
pub(crate) mod watch;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::api::NamespaceOffloading;
use progress::Reporter;

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The flags do not describe a valid offloading; nothing was sent.
    #[error("{0}")]
    Invalid(String),
    /// The namespace is already offloaded with a value that cannot change.
    #[error("namespace {namespace}: {message}")]
    Immutable {
        /// The local namespace.
        namespace: String,
        /// What differs, and what to do about it.
        message: String,
    },
    /// The API server answered with an error status (e.g. a webhook denial).
    #[error("namespace {namespace}: cannot {doing}: {message} (HTTP {code})")]
    Refused {
        /// The local namespace.
        namespace: String,
        /// What was attempted.
        doing: &'static str,
        /// The HTTP status code.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// The API server could not be reached, or the request failed on the way. The message
    /// says the cause once (and, for the commands' client, names the server), so the error
    /// is not also exposed as a `source` to print again.
    #[error("namespace {namespace}: cannot {doing}: {}", errors::describe(error))]
    Unreachable {
        /// The local namespace.
        namespace: String,
        /// What was attempted.
        doing: &'static str,
        /// The transport error.
        error: kube::Error,
    },
    /// The deadline (`--timeout`) passed before the API server answered.
    #[error("namespace {namespace}: cannot {doing}: no answer from the API server within {}", human(*after))]
    Timeout {
        /// The local namespace.
        namespace: String,
        /// What was attempted.
        doing: &'static str,
        /// The whole timeout.
        after: Duration,
    },
    /// The object could not be printed.
    #[error("cannot print the NamespaceOffloading: {0}")]
    Print(String),
    /// The API server answered with something that is not a NamespaceOffloading.
    #[error("namespace {namespace}: cannot {doing}: unreadable answer: {error}")]
    Decode {
        /// The local namespace.
        namespace: String,
        /// What was attempted.
        doing: &'static str,
        /// Why it could not be read.
        error: serde_json::Error,
    },
    /// A request could not be built (a name the API path cannot carry).
    #[error("cannot build the request to {uri}: {message}")]
    Request {
        /// The path asked for.
        uri: String,
        /// Why.
        message: String,
    },
}

/// How long to wait, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// The whole wait, for every namespace together.
    pub timeout: Duration,
    /// Pause between two reads of the same NamespaceOffloading.
    pub poll: Duration,
}

impl WaitOptions {
    /// The default pause between reads: quick enough to feel live, light on the API server.
    pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

    /// Waits up to `timeout`, reading every [`Self::DEFAULT_POLL`].
    pub fn new(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            poll: Self::DEFAULT_POLL,
        }
    }
}

/// How `offload` ended for one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Offloaded as asked (`Ready`, or `NoClusterSelected`, which is printed as a warning).
    Done,
    /// Not offloaded: failing clusters, a timeout, or an error; already printed.
    Failed,
}

/// A duration as flags are written: `20s`, `2m`, `1h`, `500ms`, `1m30s`.
pub fn human(d: Duration) -> String {
    let (secs, millis) = (d.as_secs(), d.subsec_millis());
    if secs == 0 {
        return format!("{millis}ms");
    }
    let mut text = String::new();
    for (n, unit) in [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")] {
        if n > 0 {
            text.push_str(&format!("{n}{unit}"));
        }
    }
    if millis > 0 {
        text.push_str(&format!("{millis}ms"));
    }
    text
}

/// Sorts outcomes into the order the namespaces were named in.
fn in_order(mut outcomes: Vec<(String, Outcome)>, names: &[String]) -> Vec<(String, Outcome)> {
    outcomes.sort_by_key(|(ns, _)| names.iter().position(|n| n == ns));
    outcomes
}

/// A call bounded by the command's deadline.
async fn bounded<T>(
    deadline: Instant,
    timeout: Duration,
    namespace: &str,
    doing: &'static str,
    call: impl Future<Output = Result<T, CtlError>>,
) -> Result<T, CtlError> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(CtlError::Timeout {
                namespace: namespace.to_owned(),
                doing,
                after: timeout,
            })
        })
}

/// What one look at a namespace's NamespaceOffloading decided.
enum Step {
    /// Keep waiting; the text is what is awaited (shown on the spinner line after the
    /// namespace).
    Pending(String),
    /// Settled, with this outcome (already printed).
    Done(Outcome),
}

/// Reads the NamespaceOffloading of every namespace in `pending`, every `wait.poll`, handing
/// each read to `step`, until every namespace is settled or the deadline passes. Returns the
/// outcomes of settled namespaces and, for the others, the last thing awaited.
async fn poll(
    client: &kube::Client,
    mut pending: Vec<String>,
    deadline: Instant,
    wait: WaitOptions,
    report: &mut Reporter<'_>,
    mut step: impl FnMut(&str, Option<&NamespaceOffloading>, &mut Reporter<'_>) -> Step,
) -> (Vec<(String, Outcome)>, Vec<(String, String)>) {
    const DOING: &str = "read its NamespaceOffloading";
    let mut settled = Vec::new();
    // What each pending namespace was last seen waiting for.
    let mut awaited: BTreeMap<String, String> = BTreeMap::new();
    loop {
        for ns in std::mem::take(&mut pending) {
            let read = bounded(deadline, wait.timeout, &ns, DOING, api::get(client, &ns)).await;
            let next = match read {
                Ok(object) => step(&ns, object.as_ref(), report),
                // The deadline passed during the read: what was awaited before still holds.
                Err(CtlError::Timeout { .. }) => {
                    pending.push(ns);
                    continue;
                }
                // A network blip is retried until the deadline; the error is what is awaited.
                Err(CtlError::Unreachable { error, .. }) => Step::Pending(format!(
                    "cannot read the NamespaceOffloading: {}",
                    errors::describe(&error)
                )),
                Err(e) => {
                    report.error_line(&format!("error: {e}"));
                    Step::Done(Outcome::Failed)
                }
            };
            match next {
                Step::Done(outcome) => {
                    awaited.remove(&ns);
                    settled.push((ns, outcome));
                }
                Step::Pending(why) => {
                    awaited.insert(ns.clone(), why);
                    pending.push(ns);
                }
            }
        }
        let now = Instant::now();
        if pending.is_empty() || now >= deadline {
            break;
        }
        let texts: Vec<String> = awaited
            .iter()
            .map(|(ns, why)| format!("{ns}: {why}"))
            .collect();
        report.waiting(&texts.join("; "));
        tokio::time::sleep_until((now + wait.poll).min(deadline)).await;
    }
    let left = pending
        .into_iter()
        .map(|ns| {
            let why = awaited
                .remove(&ns)
                .unwrap_or_else(|| "no answer from the API server".to_owned());
            (ns, why)
        })
        .collect();
    (settled, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_flags() {
        let cases = [
            (Duration::from_secs(20), "20s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1s500ms"),
        ];
        for (d, text) in cases {
            assert_eq!(human(d), text);
        }
    }
}
