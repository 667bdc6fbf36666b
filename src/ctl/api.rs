//! The API calls of the commands, on one NamespaceOffloading per namespace.
//!
//! Requests are built by hand and sent with `kube::Client::send` because the typed API drops
//! the response headers, and the webhooks' advice arrives in `Warning` headers (e.g. "pods
//! already running may violate the stricter policy"); kubectl prints them, so do we. Errors
//! keep the API server's own message (a webhook denial says what to fix) and the HTTP code.

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use kube::client::Body;
use kube::Resource as _;
use serde::de::DeserializeOwned;

use super::CtlError;
use crate::api::consts::{NSOFF_NAME, OFFLOADING_ENABLED_LABEL, PODS_EVICTED_ANNOTATION};
use crate::api::NamespaceOffloading;

/// The field manager of server-side apply.
pub const FIELD_MANAGER: &str = "nsoffload-cli";

/// An answer with the warnings that came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// What the API server returned.
    pub value: T,
    /// The texts of its `Warning` headers, in order.
    pub warnings: Vec<String>,
}

fn path(namespace: &str) -> String {
    format!(
        "{}/{NSOFF_NAME}",
        NamespaceOffloading::url_path(&(), Some(namespace))
    )
}

/// The text of a `Warning` header (`299 - "text"`, RFC 7234 §5.5), unquoted.
pub fn warning_text(header: &str) -> String {
    let mut parts = header.splitn(3, ' ');
    let (Some(_code), Some(_agent), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return header.to_owned();
    };
    let Some(quoted) = rest.strip_prefix('"') else {
        return header.to_owned();
    };
    let mut text = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return text,
            '\\' => text.extend(chars.next()),
            c => text.push(c),
        }
    }
    header.to_owned()
}

/// The message of an error answer: the `Status` message, else the body, else the code.
fn error_message(code: StatusCode, body: &[u8]) -> String {
    let from_status = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
        .filter(|m| !m.is_empty());
    from_status.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        if text.is_empty() {
            code.canonical_reason().unwrap_or("error").to_owned()
        } else {
            text
        }
    })
}

/// One request; `Ok(None)` for 404, an error for any other failure.
pub(super) async fn call(
    client: &kube::Client,
    namespace: &str,
    doing: &'static str,
    request: Request<Body>,
) -> Result<Option<Answer<Bytes>>, CtlError> {
    let unreachable = |error| CtlError::Unreachable {
        namespace: namespace.to_owned(),
        doing,
        error,
    };
    let response = client.send(request).await.map_err(unreachable)?;
    let (parts, body) = response.into_parts();
    let body = body.collect_bytes().await.map_err(unreachable)?;
    if parts.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !parts.status.is_success() {
        return Err(CtlError::Refused {
            namespace: namespace.to_owned(),
            doing,
            code: parts.status.as_u16(),
            message: error_message(parts.status, &body),
        });
    }
    let warnings = parts
        .headers
        .get_all(header::WARNING)
        .iter()
        .map(|v| warning_text(&String::from_utf8_lossy(v.as_bytes())))
        .collect();
    Ok(Some(Answer {
        value: body,
        warnings,
    }))
}

pub(super) fn decode<T: DeserializeOwned>(
    namespace: &str,
    doing: &'static str,
    body: &[u8],
) -> Result<T, CtlError> {
    serde_json::from_slice(body).map_err(|error| CtlError::Decode {
        namespace: namespace.to_owned(),
        doing,
        error,
    })
}

pub(super) fn request(
    method: Method,
    uri: String,
    content_type: &str,
    body: Vec<u8>,
) -> Result<Request<Body>, CtlError> {
    let mut builder = Request::builder()
        .method(method)
        .uri(&uri)
        .header(header::ACCEPT, "application/json");
    if !body.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder
        .body(Body::from(body))
        .map_err(|e| CtlError::Request {
            message: e.to_string(),
            uri,
        })
}

/// Reads the NamespaceOffloading of `namespace`; `None` when there is none.
pub async fn get(
    client: &kube::Client,
    namespace: &str,
) -> Result<Option<NamespaceOffloading>, CtlError> {
    const DOING: &str = "read its NamespaceOffloading";
    let uri = path(namespace);
    match call(
        client,
        namespace,
        DOING,
        request(Method::GET, uri, "", Vec::new())?,
    )
    .await?
    {
        Some(answer) => decode(namespace, DOING, &answer.value).map(Some),
        None => Ok(None),
    }
}

/// Creates or updates `object` with server-side apply, taking over fields other managers set
/// (the command states the whole desired offloading).
pub async fn apply(
    client: &kube::Client,
    object: &NamespaceOffloading,
) -> Result<Answer<NamespaceOffloading>, CtlError> {
    const DOING: &str = "apply its NamespaceOffloading";
    let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
    let body = serde_json::to_vec(object).map_err(|error| CtlError::Decode {
        namespace: namespace.to_owned(),
        doing: DOING,
        error,
    })?;
    let uri = format!(
        "{}?fieldManager={FIELD_MANAGER}&force=true",
        path(namespace)
    );
    let req = request(Method::PATCH, uri, "application/apply-patch+yaml", body)?;
    match call(client, namespace, DOING, req).await? {
        Some(answer) => Ok(Answer {
            value: decode(namespace, DOING, &answer.value)?,
            warnings: answer.warnings,
        }),
        // A 404 on apply: the namespace itself does not exist.
        None => Err(CtlError::Refused {
            namespace: namespace.to_owned(),
            doing: DOING,
            code: 404,
            message: format!("namespace {namespace:?} not found"),
        }),
    }
}

/// Deletes the NamespaceOffloading of `namespace`; `value` is false when there was none.
pub async fn delete(client: &kube::Client, namespace: &str) -> Result<Answer<bool>, CtlError> {
    const DOING: &str = "delete its NamespaceOffloading";
    let req = request(Method::DELETE, path(namespace), "", Vec::new())?;
    Ok(match call(client, namespace, DOING, req).await? {
        Some(answer) => Answer {
            value: true,
            warnings: answer.warnings,
        },
        None => Answer {
            value: false,
            warnings: Vec::new(),
        },
    })
}

/// Whether `namespace` asks for quick offloading (label `liqo.io/enabled=true`, SPEC §6);
/// false when the namespace does not exist.
pub async fn quick_offloading(client: &kube::Client, namespace: &str) -> Result<bool, CtlError> {
    const DOING: &str = "read the namespace";
    let uri = format!("/api/v1/namespaces/{namespace}");
    let req = request(Method::GET, uri, "", Vec::new())?;
    let Some(answer) = call(client, namespace, DOING, req).await? else {
        return Ok(false);
    };
    let ns: k8s_openapi::api::core::v1::Namespace = decode(namespace, DOING, &answer.value)?;
    let labels = ns.metadata.labels.unwrap_or_default();
    Ok(labels.get(OFFLOADING_ENABLED_LABEL).map(String::as_str) == Some("true"))
}

/// Removes the quick-offloading label, only if it is still `true` (a `test` guards it), so
/// that quick offloading does not create the NamespaceOffloading again.
pub async fn drop_quick_label(client: &kube::Client, namespace: &str) -> Result<(), CtlError> {
    const DOING: &str = "remove its quick-offloading label";
    let path = format!(
        "/metadata/labels/{}",
        OFFLOADING_ENABLED_LABEL.replace('/', "~1")
    );
    let patch = serde_json::json!([
        {"op": "test", "path": path, "value": "true"},
        {"op": "remove", "path": path},
    ]);
    let uri = format!("/api/v1/namespaces/{namespace}?fieldManager={FIELD_MANAGER}");
    let req = request(
        Method::PATCH,
        uri,
        "application/json-patch+json",
        patch.to_string().into_bytes(),
    )?;
    call(client, namespace, DOING, req).await?;
    Ok(())
}

/// Marks the NamespaceOffloading of `namespace` with the time pods were evicted, so the
/// reconciler judges its pods again at once (SPEC §12).
pub async fn mark_evicted(client: &kube::Client, namespace: &str) -> Result<(), CtlError> {
    const DOING: &str = "mark its NamespaceOffloading";
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {PODS_EVICTED_ANNOTATION: now}}});
    let uri = format!("{}?fieldManager={FIELD_MANAGER}", path(namespace));
    let req = request(
        Method::PATCH,
        uri,
        "application/merge-patch+json",
        patch.to_string().into_bytes(),
    )?;
    call(client, namespace, DOING, req).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_texts() {
        let cases = [
            (r#"299 - "pods may violate it""#, "pods may violate it"),
            (r#"299 - "say \"hi\" \\ bye""#, r#"say "hi" \ bye"#),
            (r#"299 - "text" "Sat, 22 Nov 2026 10:00:00 GMT""#, "text"),
            ("not a warning", "not a warning"),
            (r#"299 - "unterminated"#, r#"299 - "unterminated"#),
        ];
        for (header, text) in cases {
            assert_eq!(warning_text(header), text, "{header}");
        }
    }

    #[test]
    fn error_messages() {
        let status = br#"{"kind":"Status","message":"admission webhook denied it","code":400}"#;
        assert_eq!(
            error_message(StatusCode::BAD_REQUEST, status),
            "admission webhook denied it"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b" proxy down \n"),
            "proxy down"
        );
        assert_eq!(error_message(StatusCode::FORBIDDEN, b""), "Forbidden");
    }

    #[test]
    fn the_path_names_the_one_object() {
        assert_eq!(
            path("shop"),
            "/apis/offloading.liqo.io/v1beta1/namespaces/shop/namespaceoffloadings/offloading"
        );
    }
}
