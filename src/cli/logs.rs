//! `serve`'s log output: `tracing` lines on stderr, as text or one JSON object per line; the
//! level comes from `RUST_LOG` (default `info`).
//!
//! JSON lines are read by programs (`jq`, log pipelines), which keep only one value per key:
//! every line must be an object with unique keys. Event fields are flattened to the top level,
//! and the current span is one nested object, `span`, which carries the span's own name under
//! `name`; so no span field may be called `name` (the admission span calls the object's name
//! `object_name`), and the list of all spans is left out, since it repeats the same fields.
//! Text lines are coloured only on a terminal, and never when `NO_COLOR` is set.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use super::args::LogFormat;

/// Whether text logs may carry ANSI colours: stderr is a terminal and `NO_COLOR` is unset.
fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber; a second call (in tests) keeps the first.
pub(super) fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
