//! Robustness of the admission endpoints against any input (SPEC §8, "zero failed admissions").
//!
//! The API server is trusted, but a webhook that panics or answers 5xx on an odd body fails
//! admissions (`failurePolicy: Fail`), and one that misreads a body could admit a pod with a
//! patch that does not apply. So every endpoint is fed, through the in-process router:
//! arbitrary bytes (alone, after a valid envelope prefix, or a real fixture with bytes changed),
//! arbitrary JSON documents (deep, huge numbers, long and unicode strings; alone or inside an
//! envelope), and the real fixtures with one node of `request` replaced by a value of the wrong
//! type. The contract checked on every answer: no panic; HTTP 200 or 4xx, never 5xx; a 200 is
//! an AdmissionReview of the request's apiVersion echoing its uid; a refusal carries no patch;
//! a pod admitted with a patch can have it applied, and it touches only `/spec/tolerations`
//! and `/spec/affinity`.

mod common;

use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::StatusCode;
use axum::Router;
use base64::Engine as _;
use common::router::{apply_response, call, fixture_json, webhooks};
use nsoffload::admission::Webhook;
use proptest::prelude::*;
use proptest::sample::Index;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    static APP: Router = webhooks();
}

/// The real fixtures (`tests/fixtures/*.json`, the same files as `../shared/fixtures`), plus
/// the ReplicaSet pod given a required node affinity (with `matchFields`), preferred terms and
/// one more toleration, so that the nodes the mutation reads are there to be broken.
fn fixtures() -> &'static [Value] {
    static ALL: OnceLock<Vec<Value>> = OnceLock::new();
    ALL.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        let mut all: Vec<Value> = names.iter().map(|n| fixture_json(n)).collect();
        let mut rich = fixture_json("pod-create-replicaset-synthetic.json");
        let spec = &mut rich["request"]["object"]["spec"];
        spec["affinity"]["nodeAffinity"] = json!({
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference":
                {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]
        });
        let tolerations = spec["tolerations"].as_array_mut().unwrap();
        tolerations.push(json!({"key": "test"}));
        all.push(rich);
        all
    })
}

/// `T` read only from a JSON object (serde's derive alone would read an array positionally).
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(ObjVisitor(PhantomData))
    }
}

/// What a body says, read as the server reads it: objects only, other fields skipped (with no
/// depth limit and no UTF-8 check, as serde_json skips them).
#[derive(Deserialize)]
struct Sent<R> {
    #[serde(rename = "apiVersion")]
    api_version: String,
    request: Obj<R>,
}

#[derive(Deserialize)]
struct SentRequest {
    uid: String,
}

#[derive(Deserialize)]
struct SentPodRequest {
    object: Obj<SentPod>,
}

#[derive(Deserialize)]
struct SentPod {
    spec: Obj<SentSpec>,
}

#[derive(Deserialize)]
struct SentSpec {
    #[serde(default)]
    tolerations: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    affinity: Option<Value>,
}

/// The objects a pod patch must apply to: the pod cut down to what the patch may touch
/// (`/spec/tolerations`, each as `null`, and `/spec/affinity`), which exists even when the
/// rest is too deep or has numbers too large for a `Value`; and the whole pod when it reads.
fn patch_targets(body: &[u8]) -> Result<Vec<Value>, TestCaseError> {
    let sent: Sent<SentPodRequest> = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("patched a pod that does not read: {e}")))?;
    let spec = sent.request.0.object.0.spec.0;
    let mut skeleton = json!({"spec": {}});
    if let Some(t) = spec.tolerations {
        skeleton["spec"]["tolerations"] = json!(vec![Value::Null; t.len()]);
    }
    if let Some(a) = spec.affinity {
        skeleton["spec"]["affinity"] = a;
    }
    let full = serde_json::from_slice::<Value>(body).ok();
    Ok(std::iter::once(skeleton)
        .chain(full.map(|v| v["request"]["object"].clone()))
        .collect())
}

/// Posts `body` to `path` and checks the contract; returns the status and the `response`.
fn check(path: &str, body: &[u8]) -> Result<(StatusCode, Value), TestCaseError> {
    let (status, bytes) = RUNTIME.with(|rt| {
        let request = Body::from(body.to_vec());
        APP.with(|app| rt.block_on(call(app, "POST", path, Some("application/json"), request)))
    });
    let text = String::from_utf8_lossy(&bytes);
    let fail = |what: String| TestCaseError::fail(format!("{path}: {what}: {text}"));
    prop_assert!(
        status == StatusCode::OK || status.is_client_error(),
        "{path}: HTTP {status}: {text}"
    );
    if status != StatusCode::OK {
        return Ok((status, Value::Null));
    }
    let answer: Value =
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("answer is not JSON ({e})")))?;
    prop_assert_eq!(&answer["kind"], "AdmissionReview");
    let sent: Sent<SentRequest> = serde_json::from_slice(body)
        .map_err(|e| fail(format!("200 for a body without a uid ({e})")))?;
    prop_assert_eq!(&answer["apiVersion"], &json!(sent.api_version));
    let response = answer["response"].clone();
    prop_assert_eq!(&response["uid"], &json!(sent.request.0.uid));
    let allowed = response["allowed"]
        .as_bool()
        .ok_or_else(|| fail("no allowed flag".into()))?;
    let patch = response["patch"].as_str();
    prop_assert!(allowed || patch.is_none(), "{path}: refused with a patch");
    if let (true, Some(patch)) = (path == "/mutate/pod", patch) {
        for object in patch_targets(body)? {
            // Panics (reported by proptest) when the patch does not apply.
            apply_response(&object, &response);
        }
        let raw = base64::engine::general_purpose::STANDARD.decode(patch);
        let ops: Vec<Value> = serde_json::from_slice(&raw.unwrap_or_default()).unwrap_or_default();
        for target in ops.iter().map(|op| op["path"].as_str().unwrap_or_default()) {
            prop_assert!(
                target.starts_with("/spec/tolerations") || target.starts_with("/spec/affinity"),
                "{path}: the patch touches {target}"
            );
        }
    }
    Ok((status, response))
}

fn check_everywhere(body: &[u8]) -> Result<(), TestCaseError> {
    for webhook in Webhook::ALL {
        check(webhook.path(), body)?;
    }
    Ok(())
}

/// The start of a pod review in namespace `shop` (Remote), cut just before the object.
const POD_PREFIX: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"shop","operation":"CREATE","object":"#;

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    let raw = prop::collection::vec(any::<u8>(), 0..512);
    let after_prefix = raw
        .clone()
        .prop_map(|tail| [POD_PREFIX.as_bytes(), &tail].concat());
    let edits = prop::collection::vec((any::<Index>(), any::<u8>()), 1..4);
    let damaged_fixture = (any::<Index>(), edits, prop::option::of(any::<Index>())).prop_map(
        |(which, edits, cut)| {
            let mut body = serde_json::to_vec(which.get(fixtures())).unwrap();
            for (at, byte) in edits {
                let i = at.index(body.len());
                body[i] = byte;
            }
            if let Some(cut) = cut {
                body.truncate(cut.index(body.len()));
            }
            body
        },
    );
    prop_oneof![raw, after_prefix, damaged_fixture]
}

/// Words the decoders look for, so that random documents reach past the first field.
const WORDS: &str = "apiVersion kind request uid object oldObject spec metadata labels \
    tolerations affinity nodeAffinity runtimeClassName namespace operation group version \
    AdmissionReview admission.k8s.io/v1 Pod CREATE UPDATE shop liqo.io/enabled";

fn arb_string() -> impl Strategy<Value = String> {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    prop_oneof![
        prop::sample::select(words).prop_map(str::to_owned),
        any::<String>(),
        (0usize..20_000).prop_map(|n| "é∂x".repeat(n)),
    ]
}

/// A JSON document as text (so it can hold numbers no `Value` can, like 400 digits).
fn arb_json() -> impl Strategy<Value = String> {
    let float = |f: f64| serde_json::Number::from_f64(f).map_or("0.5".into(), |n| n.to_string());
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(float),
        "-?[1-9][0-9]{19,400}",
        "-?[0-9]\\.[0-9]{1,20}[eE][+-]?[0-9]{1,4}",
        arb_string().prop_map(|s| json!(s).to_string()),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        let member = (arb_string(), inner.clone()).prop_map(|(k, v)| format!("{}:{v}", json!(k)));
        prop_oneof![
            prop::collection::vec(inner, 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(member, 0..6).prop_map(|m| format!("{{{}}}", m.join(","))),
        ]
    })
}

/// A document alone, or in an envelope as the request, the object, the spec or oldObject;
/// mostly pod CREATE envelopes, the ones that can be patched.
fn arb_json_body() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        3 => Just(r#"{"group":"","version":"v1","kind":"Pod"}"#),
        1 => Just(r#"{"group":"","version":"v1","kind":"Namespace"}"#),
        1 => Just(r#"{"group":"offloading.liqo.io","version":"v1beta1","kind":"NamespaceOffloading"}"#),
    ];
    let op = prop_oneof![3 => Just("CREATE"), 1 => Just("UPDATE")];
    (arb_json(), 0..5u8, kind, op).prop_map(|(doc, place, kind, op)| {
        let envelope = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"#;
        let request = |rest: String| {
            let fields =
                format!(r#""uid":"u1","kind":{kind},"namespace":"shop","operation":"{op}""#);
            format!("{envelope}{{{fields}{rest}}}}}")
        };
        match place {
            0 => doc,
            1 => format!("{envelope}{doc}}}"),
            2 => request(format!(r#","object":{doc}"#)),
            3 => request(format!(
                r#","object":{{"metadata":{{"name":"p"}},"spec":{doc}}}"#
            )),
            _ => request(format!(r#","object":{{"spec":{{}}}},"oldObject":{doc}"#)),
        }
    })
}

/// A nest of `depth` arrays around a number.
fn nested_arrays(depth: usize) -> Value {
    (0..depth).fold(json!(1), |v, _| json!([v]))
}

/// Values of every JSON type, each wrong somewhere; short arrays are the ones a derived
/// struct would read positionally.
fn wrong_values() -> Vec<Value> {
    let short = r#"[[], [null], [null, {}, "x"], [1, 2], 0, -1.5e300, 18446744073709551615,
        "", "x", true, null, {}, {"unexpected": [1]}]"#;
    let mut values: Vec<Value> = serde_json::from_str(short).unwrap();
    values.extend([nested_arrays(40), nested_arrays(200)]);
    values
}

/// JSON Pointers of `v` (at `here`) and of every node below it.
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, c)| (k.replace('~', "~0").replace('/', "~1"), c))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        pointers(child, format!("{here}/{key}"), out);
    }
    out.push(here);
}

/// Where a node is replaced: the anchor itself half the time, else any node below it. The
/// anchors are what the decoders read; choosing among all nodes alike would almost never
/// break one of them.
const ANCHORS: [&str; 6] = [
    "/request",
    "/request/object",
    "/request/object/spec",
    "/request/object/spec/affinity",
    "/request/object/spec/tolerations",
    "/request/oldObject",
];

/// A fixture with one node of its `request` replaced by a value of another type.
fn arb_broken_fixture() -> impl Strategy<Value = Value> {
    let choice = (
        any::<Index>(),
        0..ANCHORS.len(),
        any::<bool>(),
        any::<Index>(),
    );
    (choice, any::<Index>()).prop_map(|((which, anchor, itself, node), value)| {
        let mut review = which.get(fixtures()).clone();
        let anchor = Some(ANCHORS[anchor])
            .filter(|a| review.pointer(a).is_some())
            .unwrap_or("/request");
        let mut paths = Vec::new();
        pointers(
            review.pointer(anchor).unwrap(),
            anchor.to_owned(),
            &mut paths,
        );
        let target = if itself {
            anchor
        } else {
            node.get(&paths).as_str()
        };
        let target = review.pointer_mut(target).unwrap();
        let kind = std::mem::discriminant(&*target);
        let wrong: Vec<Value> = wrong_values()
            .into_iter()
            .filter(|v| std::mem::discriminant(v) != kind)
            .collect();
        *target = value.get(&wrong).clone();
        review
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_get_200_or_4xx(body in arb_bytes()) {
        check_everywhere(&body)?;
    }

    #[test]
    fn arbitrary_json_gets_200_or_4xx(body in arb_json_body()) {
        check_everywhere(body.as_bytes())?;
    }

    #[test]
    fn fixtures_with_a_node_of_the_wrong_type_get_200_or_4xx(review in arb_broken_fixture()) {
        check_everywhere(&serde_json::to_vec(&review).unwrap())?;
    }
}

/// The properties above are not vacuous: every intact fixture is answered 200 by its endpoint,
/// and the pods are admitted with a patch (checked to apply).
#[test]
fn intact_fixtures_are_answered_and_pods_patched() {
    for review in fixtures() {
        let is_pod = review["request"]["kind"]["kind"] == "Pod";
        let path = ["/validate/namespace-offloading", "/mutate/pod"][usize::from(is_pod)];
        let (status, response) = check(path, &serde_json::to_vec(review).unwrap()).unwrap();
        assert_eq!(status, StatusCode::OK, "{response}");
        assert!(!is_pod || response["patch"].is_string(), "{response}");
    }
}

/// A very deep document does not overflow the stack: where the server reads a value, serde_json
/// stops at 128 levels and the request is refused (400, or an invalid review); in a field the
/// server skips, serde_json skips iteratively at any depth and the pod is reviewed as usual.
#[test]
fn very_deep_documents_do_not_overflow_the_stack() {
    const DEPTH: usize = 100_000;
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    // A pod review whose object (and what follows it in the request) is `place`, with the
    // deep document at `@`.
    let review = |place: &str, deep: &str| format!("{POD_PREFIX}{}}}}}", place.replace('@', deep));
    let read = [
        (r#"{"spec":@}"#, &arrays),
        (r#"{"spec":{"affinity":@}}"#, &arrays),
        (r#"{"spec":{"affinity":@}}"#, &objects),
        ("@", &arrays),
        (r#"{"spec":{}},"oldObject":@"#, &arrays),
    ];
    let bodies = read
        .iter()
        .map(|(place, deep)| (*place, review(place, deep)));
    for (place, body) in bodies.chain([("the whole body", arrays.clone())]) {
        for webhook in Webhook::ALL {
            let (status, response) = check(webhook.path(), body.as_bytes()).expect(place);
            assert!(
                status == StatusCode::BAD_REQUEST
                    || (status == StatusCode::OK && response["allowed"] == false),
                "{place} to {}: {status} {response}",
                webhook.path()
            );
        }
    }
    for deep in [&objects, &arrays] {
        let body = review(r#"{"spec":{"skipped":@}}"#, deep);
        check_everywhere(body.as_bytes()).unwrap();
        let (_, response) = check("/mutate/pod", body.as_bytes()).unwrap();
        assert_eq!(response["allowed"], true, "{response}");
    }
}
