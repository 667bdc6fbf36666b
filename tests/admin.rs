//! The admin port's endpoints: liveness, readiness that follows the flag, and metrics that
//! count admission requests by webhook and outcome.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use common::router::{call, fixture, review};
use nsoffload::metrics::Metrics;
use nsoffload::server::admin::{router, Readiness};
use nsoffload::state::parse_standalone;

#[tokio::test]
async fn readiness_follows_the_flag() {
    let ready = Arc::new(Readiness::default());
    let admin = router(ready.clone(), Arc::new(Metrics::new()));
    assert_eq!(
        call(&admin, "GET", "/livez", None, Body::empty()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&admin, "GET", "/readyz", None, Body::empty()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    ready.set(true);
    assert_eq!(
        call(&admin, "GET", "/readyz", None, Body::empty()).await.0,
        StatusCode::OK
    );
    ready.set(false);
    assert_eq!(
        call(&admin, "GET", "/readyz", None, Body::empty()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn metrics_count_requests_by_webhook_and_outcome() {
    let app = common::http::app(parse_standalone(common::router::STATE).unwrap());
    let metrics = app.metrics.clone();
    let webhooks = nsoffload::server::router::router(app);
    review(
        &webhooks,
        "/mutate/pod",
        fixture("pod-create-kubectl-apply.json"),
    )
    .await;
    review(
        &webhooks,
        "/mutate/pod",
        fixture("pod-create-kubectl-apply.json"),
    )
    .await;
    review(
        &webhooks,
        "/validate/namespace-offloading",
        fixture("namespaceoffloading-create.json"),
    )
    .await;
    call(
        &webhooks,
        "POST",
        "/mutate/pod",
        Some("application/json"),
        Body::from("{"),
    )
    .await;

    let admin = router(Arc::new(Readiness::default()), metrics);
    let (status, body) = call(&admin, "GET", "/metrics", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    for line in [
        r#"nsoffload_admission_requests_total{webhook="mutate-pod",outcome="patched"} 2"#,
        r#"nsoffload_admission_requests_total{webhook="validate-namespace-offloading",outcome="allowed"} 1"#,
        r#"nsoffload_admission_requests_total{webhook="mutate-pod",outcome="bad_request"} 1"#,
        r#"nsoffload_admission_duration_seconds_count{webhook="mutate-pod"} 3"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}
