//! The webhook router: one POST route per admission endpoint, the body limit, metrics.
//!
//! Routing is on the path alone (the API server appends `?timeout=10s`). Bodies over 3 MiB are
//! refused with 413 while they are read, so a chunked body without a length cannot get past
//! the limit either; unknown paths get 404 and other methods 405 (axum's method router).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::admission::review::{shorten, MAX_REASON_BYTES};
use crate::admission::{Admission, Webhook};
use crate::metrics::Metrics;

/// Largest accepted request body (3 MiB, the API server's own limit for objects).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What every admission handler shares.
#[derive(Debug)]
pub struct App {
    /// Decisions and state.
    pub admission: Admission,
    /// Request counters and latency.
    pub metrics: Arc<Metrics>,
}

/// The webhook router.
pub fn router(app: Arc<App>) -> Router {
    let mut r = Router::new();
    for webhook in Webhook::ALL {
        r = r.route(
            webhook.path(),
            post(
                move |state: State<Arc<App>>, headers: HeaderMap, body: Bytes| {
                    handle(state, webhook, headers, body)
                },
            ),
        );
    }
    r.fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

fn is_json(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
        None => true,
        Some(Ok(v)) => v
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")),
        Some(Err(_)) => false,
    }
}

async fn handle(
    State(app): State<Arc<App>>,
    webhook: Webhook,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    let (outcome, response) = if !is_json(&headers) {
        (
            "bad_request",
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/json\n",
            )
                .into_response(),
        )
    } else {
        match app.admission.handle(webhook, &body).await {
            Ok(answer) => (
                answer.outcome.as_str(),
                ([(header::CONTENT_TYPE, "application/json")], answer.body).into_response(),
            ),
            Err(e) => {
                tracing::debug!(webhook = webhook.name(), error = %e, "rejected a body that is not an AdmissionReview");
                (
                    "bad_request",
                    (
                        StatusCode::BAD_REQUEST,
                        format!("{}\n", shorten(&e.to_string(), MAX_REASON_BYTES)),
                    )
                        .into_response(),
                )
            }
        }
    };
    app.metrics
        .admission
        .observe(webhook.name(), outcome, start.elapsed().as_secs_f64());
    response
}
