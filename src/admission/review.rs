//! Decoding AdmissionReview requests and encoding answers.
//!
//! The request side borrows from the body and is generic over the object's type, so the pod
//! endpoint reads only the three pod fields it needs while the envelope is parsed, in a single
//! pass over the body (this is the hot path: the API server waits on it for every pod). The
//! answer side writes the patch as base64, as the API server's Go types expect (`[]byte`),
//! which is a third of the size of kube's JSON array of numbers.
//!
//! The envelope's structs read only JSON objects (an array is not read positionally, see
//! `policy::object`). An answer is never "allowed, unmutated" because of an internal error:
//! a patch that cannot be serialized denies the request (fail closed, SPEC §8).

use std::borrow::Cow;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::policy::object::{self, Fields};

/// The AdmissionReview API versions this server answers.
pub const API_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// Why a body is not an AdmissionReview request; answered with HTTP 400 and this text.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not shaped like an AdmissionReview.
    #[error("invalid AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    /// `kind` is not AdmissionReview.
    #[error("invalid AdmissionReview: kind must be AdmissionReview, got {0:?}")]
    Kind(String),
    /// `apiVersion` is not one this server speaks.
    #[error("invalid AdmissionReview: unsupported apiVersion {0:?} (expected admission.k8s.io/v1 or v1beta1)")]
    ApiVersion(String),
    /// No `request` member.
    #[error("invalid AdmissionReview: it has no request")]
    NoRequest,
}

#[derive(Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
struct ReviewIn<'a, O> {
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default = "none")]
    request: Option<Request<'a, O>>,
}

fn none<T>() -> Option<T> {
    None
}

/// Group, version and kind of the object under review.
#[derive(Debug, Default, Deserialize)]
#[serde(remote = "Self")]
pub struct Gvk<'a> {
    /// API group (empty for core).
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    /// API version.
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    /// Kind.
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

/// The parts of an AdmissionRequest the webhooks use; `O` is how the objects are read
/// (raw JSON by default).
#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct Request<'a, O = &'a RawValue> {
    /// Identifier echoed in the answer.
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    /// Kind of the object.
    #[serde(borrow, default)]
    pub kind: Gvk<'a>,
    /// Subresource, e.g. `status`.
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    /// Object name (may be empty for generated names).
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// Namespace of the request (set even when the object's metadata has none).
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    #[serde(borrow, default)]
    pub operation: Cow<'a, str>,
    /// The object.
    #[serde(default = "none")]
    pub object: Option<O>,
    /// The previous object on UPDATE.
    #[serde(default = "none")]
    pub old_object: Option<O>,
}

// Each struct reads only a JSON object: `Fields` is the derived code (the inherent
// `Self::deserialize` made by `remote = "Self"`), the trait goes through `object::deserialize`.

impl<'de: 'a, 'a, O: Deserialize<'de>> Fields<'de> for ReviewIn<'a, O> {
    const EXPECTING: &'static str = "an AdmissionReview (a JSON object)";
    fn fields<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ReviewIn::deserialize(deserializer)
    }
}

impl<'de: 'a, 'a, O: Deserialize<'de>> Deserialize<'de> for ReviewIn<'a, O> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object::deserialize(deserializer)
    }
}

impl<'de: 'a, 'a> Fields<'de> for Gvk<'a> {
    const EXPECTING: &'static str = "a group, version and kind (a JSON object)";
    fn fields<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Gvk::deserialize(deserializer)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Gvk<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object::deserialize(deserializer)
    }
}

impl<'de: 'a, 'a, O: Deserialize<'de>> Fields<'de> for Request<'a, O> {
    const EXPECTING: &'static str = "an AdmissionRequest (a JSON object)";
    fn fields<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Request::deserialize(deserializer)
    }
}

impl<'de: 'a, 'a, O: Deserialize<'de>> Deserialize<'de> for Request<'a, O> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object::deserialize(deserializer)
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), marked with `…` when cut.
/// Parse errors quote the offending input, which may be megabytes long: reasons sent back
/// stay short.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Longest reason sent back for a request that cannot be read.
pub const MAX_REASON_BYTES: usize = 240;

/// A decoded review: the request and the API version to answer with.
#[derive(Debug)]
pub struct Review<'a, O = &'a RawValue> {
    /// `admission.k8s.io/v1` or `admission.k8s.io/v1beta1`.
    pub api_version: &'static str,
    /// The request.
    pub request: Request<'a, O>,
}

/// Decodes a body, reading objects as `O`; borrowed strings point into `body`.
pub fn decode<'a, O: Deserialize<'a>>(body: &'a [u8]) -> Result<Review<'a, O>, DecodeError> {
    let review: ReviewIn<'a, O> = serde_json::from_slice(body)?;
    let kind = review.kind.unwrap_or_default();
    if kind != "AdmissionReview" {
        return Err(DecodeError::Kind(kind.into_owned()));
    }
    let version = review.api_version.unwrap_or_default();
    let api_version = API_VERSIONS
        .iter()
        .find(|v| **v == version)
        .ok_or_else(|| DecodeError::ApiVersion(version.into_owned()))?;
    let request = review.request.ok_or(DecodeError::NoRequest)?;
    Ok(Review {
        api_version,
        request,
    })
}

/// What a webhook decided about one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Admit, with the patch to apply (empty: none) and warnings for the client.
    Allow {
        /// The JSON Patch, serialized (empty: no patch).
        patch: Vec<u8>,
        /// Warnings shown by kubectl.
        warnings: Vec<String>,
    },
    /// Refuse with a message for a person (HTTP-like code 403).
    Deny(String),
    /// The request itself is malformed for this webhook (code 400).
    Invalid(String),
}

impl Decision {
    /// Admit unchanged.
    pub fn allow() -> Self {
        Decision::Allow {
            patch: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Admit with these patch operations (none: unchanged); deny if they cannot be
    /// serialized.
    pub fn patched(ops: &[crate::policy::patch::PatchOp<'_>]) -> Self {
        if ops.is_empty() {
            return Decision::allow();
        }
        Decision::with_patch(ops)
    }

    /// Admit with `patch` serialized as the JSON Patch. Fails closed: if serialization fails
    /// (it should not, for JSON values), the request is denied with a generic message and the
    /// cause is logged, rather than admitted without the patch it needs.
    fn with_patch<P: Serialize + ?Sized>(patch: &P) -> Self {
        match serde_json::to_vec(patch) {
            Ok(patch) => Decision::Allow {
                patch,
                warnings: Vec::new(),
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize the JSON Patch; denying the request");
                Decision::Deny(PATCH_FAILED.to_owned())
            }
        }
    }
}

/// The message of a request denied because its patch could not be built (details are logged,
/// not sent).
pub const PATCH_FAILED: &str = "internal error: the object could not be patched; retry";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [String],
}

#[derive(Serialize)]
struct StatusOut<'a> {
    code: u16,
    reason: &'static str,
    message: &'a str,
}

/// Encodes the answer to the request `uid` as an AdmissionReview of `api_version`.
pub fn encode(api_version: &str, uid: &str, decision: &Decision) -> Vec<u8> {
    let (allowed, status, patch, warnings): (
        bool,
        Option<StatusOut<'_>>,
        Option<String>,
        &[String],
    ) = match decision {
        Decision::Allow { patch, warnings } => {
            let encoded = (!patch.is_empty())
                .then(|| base64::engine::general_purpose::STANDARD.encode(patch));
            (true, None, encoded, warnings)
        }
        Decision::Deny(m) => (
            false,
            Some(StatusOut {
                code: 403,
                reason: "Forbidden",
                message: m,
            }),
            None,
            &[],
        ),
        Decision::Invalid(m) => (
            false,
            Some(StatusOut {
                code: 400,
                reason: "BadRequest",
                message: m,
            }),
            None,
            &[],
        ),
    };
    let patch_type = patch.as_ref().map(|_| "JSONPatch");
    let out = ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed,
            status,
            patch,
            patch_type,
            warnings,
        },
    };
    // Serializing plain strings, booleans and numbers into a Vec cannot fail. If it did, the
    // empty body fails the call, which the API server treats as a denial (`failurePolicy:
    // Fail`): never an admission without the patch.
    serde_json::to_vec(&out).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize the AdmissionReview answer");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_cuts_on_character_boundaries() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…");
        assert_eq!(shorten("aé", 2), "a…");
    }

    /// A patch whose serialization fails, as an internal error would.
    struct Unserializable;

    impl Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("secret internal detail"))
        }
    }

    #[test]
    fn a_patch_that_cannot_be_serialized_denies() {
        let d = Decision::with_patch(&Unserializable);
        assert_eq!(d, Decision::Deny(PATCH_FAILED.to_owned()));
        let v: serde_json::Value =
            serde_json::from_slice(&encode("admission.k8s.io/v1", "u", &d)).unwrap();
        assert_eq!(v["response"]["allowed"], false);
        assert!(!v.to_string().contains("secret"), "{v}");
    }

    #[test]
    fn patched_serializes_the_operations() {
        use crate::policy::patch::PatchOp;
        assert_eq!(Decision::patched(&[]), Decision::allow());
        let value = serde_json::json!(1);
        let ops = [PatchOp::add("/spec/x", Cow::Borrowed(&value))];
        assert_eq!(
            Decision::patched(&ops),
            Decision::Allow {
                patch: br#"[{"op":"add","path":"/spec/x","value":1}]"#.to_vec(),
                warnings: Vec::new(),
            }
        );
    }

    #[test]
    fn envelope_structs_read_objects_only() {
        let body = |request: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
            )
        };
        let ok = body(r#"{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"}}"#);
        let review = decode::<&RawValue>(ok.as_bytes()).unwrap();
        assert!(matches!(review.request.uid, Cow::Borrowed("u")));
        assert!(matches!(review.request.kind.kind, Cow::Borrowed("Pod")));
        for bad in [
            body(r#"["u"]"#),
            body(r#"{"uid":"u","kind":["","v1","Pod"]}"#),
            r#"["admission.k8s.io/v1","AdmissionReview",{"uid":"u"}]"#.to_owned(),
        ] {
            let e = decode::<&RawValue>(bad.as_bytes()).unwrap_err();
            assert!(
                e.to_string().contains("invalid type: sequence"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn encode_answers_each_decision() {
        let allow =
            String::from_utf8(encode("admission.k8s.io/v1", "u1", &Decision::allow())).unwrap();
        assert_eq!(
            allow,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u1","allowed":true}}"#
        );
        let patched = Decision::Allow {
            patch: b"[]".to_vec(),
            warnings: vec!["careful".into()],
        };
        let v: serde_json::Value =
            serde_json::from_slice(&encode("admission.k8s.io/v1beta1", "u2", &patched)).unwrap();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(v["response"]["patch"], "W10=");
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        assert_eq!(v["response"]["warnings"], serde_json::json!(["careful"]));
        let denied: serde_json::Value = serde_json::from_slice(&encode(
            "admission.k8s.io/v1",
            "u3",
            &Decision::Deny("no".into()),
        ))
        .unwrap();
        assert_eq!(
            denied["response"]["status"],
            serde_json::json!({"code": 403, "reason": "Forbidden", "message": "no"})
        );
    }
}
