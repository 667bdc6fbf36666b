//! `serve`'s logs as a log pipeline reads them: with `--log-format json` every line is one
//! JSON object with unique keys (a repeated key is silently collapsed by `jq` and most
//! pipelines), and a request's lines carry the object's name and namespace under keys of their
//! own. Text logs written to a pipe carry no colour codes.

#![cfg(unix)]

mod common;
#[path = "bin/kit.rs"]
mod kit;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use common::http::{connect_h1, post, send_h1};
use common::router::{fixture, STATE};
use hyper::StatusCode;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A JSON value that refuses an object with a repeated key, at any depth.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(de::Error::custom(format!("key {key:?} appears twice")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

/// Parses one log line, failing on invalid JSON or a repeated key.
fn strict(line: &str) -> Value {
    if let Err(e) = serde_json::from_str::<UniqueKeys>(line) {
        panic!("not a JSON object with unique keys ({e}): {line}");
    }
    serde_json::from_str(line).unwrap()
}

#[test]
fn the_checker_catches_repeated_keys() {
    assert!(serde_json::from_str::<UniqueKeys>(r#"{"a":1,"s":{"name":"x","n":[{}]}}"#).is_ok());
    assert!(serde_json::from_str::<UniqueKeys>(r#"{"s":{"name":"x","name":"y"}}"#).is_err());
    assert!(serde_json::from_str::<UniqueKeys>(r#"[{"a":1,"a":1}]"#).is_err());
}

/// The fixture's Pod CREATE, moved to `namespace`.
fn pod_create_in(namespace: &str) -> Bytes {
    let mut review: Value =
        serde_json::from_slice(&fixture("pod-create-kubectl-apply.json")).unwrap();
    review["request"]["namespace"] = namespace.into();
    review["request"]["object"]["metadata"]["namespace"] = namespace.into();
    Bytes::from(serde_json::to_vec(&review).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_have_unique_keys_and_name_the_object() {
    let dir = tempfile::tempdir().unwrap();
    kit::write_certs(dir.path());
    let state = dir.path().join("state.yaml");
    std::fs::write(&state, STATE).unwrap();
    let mut server = kit::Server::start(
        &state,
        dir.path(),
        &["--log-format", "json"],
        &[("RUST_LOG", "info,nsoffload=debug")],
    );
    server.wait_for_line("caches synced; ready", Duration::from_secs(20));
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let mut h1 = connect_h1(server.web, &ca).await;
    // Patched in capture-test (Remote, Ready); refused in pending (never processed).
    for namespace in ["capture-test", "pending"] {
        let (status, _) = send_h1(&mut h1, post("/mutate/pod", pod_create_in(namespace))).await;
        assert_eq!(status, StatusCode::OK);
    }
    drop(h1);
    let (code, lines) = server.stop();
    assert_eq!(code, Some(0));

    let objects: Vec<Value> = lines.iter().map(|l| strict(l)).collect();
    let about = |namespace: &str| -> Vec<&Value> {
        objects
            .iter()
            .filter(|o| o["span"]["namespace"] == namespace)
            .collect()
    };
    let patched = about("capture-test");
    let refused = about("pending");
    assert!(!patched.is_empty() && !refused.is_empty(), "{lines:#?}");
    for line in patched.iter().chain(&refused) {
        let span = &line["span"];
        assert_eq!(span["name"], "admission", "{line}");
        assert_eq!(span["object_name"], "capture-pod", "{line}");
        assert_eq!(span["kind"], "Pod", "{line}");
        assert_eq!(
            span["uid"], "0c33d223-ebe6-4550-80a8-549e46e71689",
            "{line}"
        );
    }
    assert!(
        patched.iter().any(|l| l["span"]["patched"] == true),
        "{patched:#?}"
    );
    let refusal = refused
        .iter()
        .find(|l| l["message"] == "admission refused")
        .unwrap_or_else(|| panic!("{refused:#?}"));
    assert_eq!(refusal["span"]["allowed"], false);
    assert!(refusal["reason"].as_str().unwrap().contains("pending"));
}

#[test]
fn text_logs_in_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    kit::write_certs(dir.path());
    let state = dir.path().join("state.yaml");
    std::fs::write(&state, STATE).unwrap();
    let mut server = kit::Server::start(&state, dir.path(), &[], &[]);
    server.wait_for_line("caches synced; ready", Duration::from_secs(20));
    let (code, lines) = server.stop();
    assert_eq!(code, Some(0));
    assert!(lines.len() >= 3, "{lines:#?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "colour code in {line:?}");
    }
}
