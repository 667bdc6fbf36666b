//! Bodies that are not AdmissionReviews, wrong methods and paths, oversized bodies: each gets
//! the HTTP answer of SPEC §8 with a short reason, never a panic or an internal detail.

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use common::router::*;
use futures_util::stream;
use nsoffload::server::router::MAX_BODY_BYTES;

async fn post_status(body: impl Into<Body>, content_type: Option<&str>) -> (StatusCode, String) {
    let (s, b) = call(
        &webhooks(),
        "POST",
        "/mutate/pod",
        content_type,
        body.into(),
    )
    .await;
    (s, String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test]
async fn unparseable_bodies_get_400_with_a_short_reason() {
    let full = fixture("pod-create-kubectl-apply.json");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (full[..full.len() / 2].to_vec(), "invalid AdmissionReview"),
        (b"".to_vec(), "invalid AdmissionReview"),
        (b"not json".to_vec(), "invalid AdmissionReview"),
        (vec![0xff, 0xfe, 0x00], "invalid AdmissionReview"),
        (br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(), "kind must be AdmissionReview"),
        (br#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"x"}}"#.to_vec(), "unsupported apiVersion"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), "has no request"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#.to_vec(), "uid"),
        (br#"[1,2,3]"#.to_vec(), "invalid AdmissionReview"),
    ];
    for (body, needle) in cases {
        let (status, text) = post_status(body.clone(), Some("application/json")).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert!(text.contains(needle), "{text:?} should mention {needle:?}");
        assert!(text.len() < 300, "reason should be short: {text}");
    }
}

#[tokio::test]
async fn wrong_content_type_gets_415() {
    let (status, text) =
        post_status(fixture("pod-create-kubectl-apply.json"), Some("text/plain")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(text.contains("application/json"));
    let (status, _) = post_status(
        fixture("pod-create-kubectl-apply.json"),
        Some("application/json; charset=utf-8"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_404_and_wrong_methods_405() {
    let app = webhooks();
    assert_eq!(
        call(
            &app,
            "POST",
            "/mutate/deployment",
            Some("application/json"),
            Body::empty()
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "GET", "/", None, Body::empty()).await.0,
        StatusCode::NOT_FOUND
    );
    for method in ["GET", "PUT", "DELETE"] {
        assert_eq!(
            call(&app, method, "/mutate/pod", None, Body::empty())
                .await
                .0,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
    }
}

/// The fixture padded with trailing white space (still valid JSON) to exactly `len` bytes.
fn padded(len: usize) -> Vec<u8> {
    let mut body = fixture("pod-create-kubectl-apply.json");
    body.resize(len, b' ');
    body
}

#[tokio::test]
async fn exactly_3_mib_is_accepted_one_byte_more_is_413() {
    let (status, _) = post_status(padded(MAX_BODY_BYTES), Some("application/json")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post_status(padded(MAX_BODY_BYTES + 1), Some("application/json")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn chunked_bodies_without_a_length_are_limited_too() {
    let chunks = |total: usize| {
        let body = padded(total);
        let parts: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        Body::from_stream(stream::iter(parts))
    };
    let (status, _) = post_status(chunks(MAX_BODY_BYTES + 1), Some("application/json")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = post_status(chunks(MAX_BODY_BYTES), Some("application/json")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn reasons_stay_short_even_when_the_input_is_huge() {
    let huge = "x".repeat(1 << 20);
    let body = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"{huge}"}}"#
    );
    let (status, text) = post_status(body, Some("application/json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.len() < 300, "{} bytes", text.len());

    let mut input: serde_json::Value =
        serde_json::from_slice(&fixture("pod-create-kubectl-apply.json")).unwrap();
    input["request"]["namespace"] = serde_json::json!("shop");
    input["request"]["object"]["spec"]["tolerations"] = serde_json::json!(huge);
    let resp = review(
        &webhooks(),
        "/mutate/pod",
        serde_json::to_vec(&input).unwrap(),
    )
    .await;
    assert_eq!(resp["allowed"], false);
    assert!(message(&resp).len() < 300, "{} bytes", message(&resp).len());
}

/// The ReplicaSet pod fixture (namespace `shop`, Remote) after `edit`.
fn pod_review_with(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut input = fixture_json("pod-create-replicaset-synthetic.json");
    edit(&mut input);
    serde_json::to_vec(&input).unwrap()
}

/// serde's derived structs read a JSON array positionally; the pod and its spec must be
/// objects, so such a pod is answered as invalid (HTTP 200, with its uid), never patched.
#[tokio::test]
async fn a_pod_or_spec_given_as_an_array_is_invalid_not_read_positionally() {
    let uid = fixture_json("pod-create-replicaset-synthetic.json")["request"]["uid"].clone();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 3] = [
        ("spec [null, {}]", |v| {
            v["request"]["object"]["spec"] = serde_json::json!([null, {}])
        }),
        ("spec []", |v| {
            v["request"]["object"]["spec"] = serde_json::json!([])
        }),
        ("object [spec]", |v| {
            let spec = v["request"]["object"]["spec"].take();
            v["request"]["object"] = serde_json::json!([spec]);
        }),
    ];
    for (name, edit) in cases {
        // `review` asserts HTTP 200 and an AdmissionReview answer.
        let resp = &review(&webhooks(), "/mutate/pod", pod_review_with(edit)).await;
        assert_eq!(resp["uid"], uid, "{name}");
        assert_eq!(resp["allowed"], false, "{name}: {resp}");
        assert_eq!(resp["status"]["code"], 400, "{name}: {resp}");
        assert!(resp.get("patch").is_none(), "{name}: {resp}");
        assert!(
            message(resp).contains("cannot read the Pod: invalid type: sequence"),
            "{name}: {}",
            message(resp)
        );
    }
}

/// An envelope whose `request` (or its `kind`) is an array is not an AdmissionReview: 400.
#[tokio::test]
async fn a_request_given_as_an_array_gets_400() {
    let positional_request = |v: &mut serde_json::Value| {
        let r = v["request"].take();
        v["request"] = serde_json::json!([
            r["uid"],
            r["kind"],
            null,
            "web",
            r["namespace"],
            r["operation"],
            r["object"]
        ]);
    };
    let positional_kind = |v: &mut serde_json::Value| {
        v["request"]["kind"] = serde_json::json!(["", "v1", "Pod"]);
    };
    for (name, body) in [
        ("request", pod_review_with(positional_request)),
        ("request.kind", pod_review_with(positional_kind)),
    ] {
        let (status, text) = post_status(body, Some("application/json")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {text}");
        assert!(
            text.starts_with("invalid AdmissionReview: invalid type: sequence"),
            "{name}: {text}"
        );
    }
}
