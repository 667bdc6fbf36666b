//! NamespaceOffloading validation: the SPEC §5 vectors V1–V12 and the edge cases around them.

use serde_json::{json, Value};

use super::*;

const NS: &str = "shop";

fn cfg() -> ValidationConfig {
    ValidationConfig {
        home_cluster_id: "home".to_owned(),
    }
}

fn nsoff(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceOffloading",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}

/// A NamespaceOffloading with the accepted name.
fn named_ok(spec: Value) -> Value {
    nsoff(NSOFF_NAME, spec)
}

fn create(obj: &Value) -> Verdict {
    validate_nsoff(&Operation::Create, None, NS, Some(obj), None, &cfg())
}

fn update(old: &Value, new: &Value) -> Verdict {
    validate_nsoff(&Operation::Update, None, NS, Some(new), Some(old), &cfg())
}

fn denial(v: Verdict) -> String {
    match v {
        Verdict::Deny(msg) => msg,
        Verdict::Allow { warnings } => panic!("expected a denial, allowed with {warnings:?}"),
    }
}

fn warnings(v: Verdict) -> Vec<String> {
    match v {
        Verdict::Allow { warnings } => warnings,
        Verdict::Deny(msg) => panic!("expected to be allowed, denied: {msg}"),
    }
}

fn selector_with(expr: Value) -> Value {
    json!({"clusterSelector": {"nodeSelectorTerms": [{"matchExpressions": [expr]}]}})
}

#[test]
fn v1_wrong_name_is_denied() {
    let msg = denial(create(&nsoff("foo", json!({}))));
    assert!(msg.starts_with("metadata.name: \"foo\""), "{msg}");
    assert!(
        msg.contains("the only accepted name is \"offloading\""),
        "{msg}"
    );
}

#[test]
fn v2_selected_name_without_remote_name_is_denied() {
    for spec in [
        json!({"namespaceMappingStrategy": "SelectedName"}),
        json!({"namespaceMappingStrategy": "SelectedName", "remoteNamespaceName": ""}),
        json!({"namespaceMappingStrategy": "SelectedName", "remoteNamespaceName": null}),
    ] {
        let msg = denial(create(&named_ok(spec)));
        assert_eq!(
            msg,
            "spec.remoteNamespaceName: required when spec.namespaceMappingStrategy is \
             SelectedName (it names the namespace created on remote clusters)"
        );
    }
}

#[test]
fn v3_selected_name_with_remote_name_is_allowed() {
    let spec = json!({"namespaceMappingStrategy": "SelectedName", "remoteNamespaceName": "bar"});
    assert!(warnings(create(&named_ok(spec))).is_empty());
}

#[test]
fn v4_default_name_ignores_remote_name() {
    let spec = json!({"namespaceMappingStrategy": "DefaultName", "remoteNamespaceName": "x"});
    assert!(warnings(create(&named_ok(spec))).is_empty());
}

#[test]
fn v5_mapping_strategy_change_is_denied() {
    let old = named_ok(json!({"namespaceMappingStrategy": "DefaultName"}));
    let new = named_ok(json!({"namespaceMappingStrategy": "EnforceSameName"}));
    let msg = denial(update(&old, &new));
    assert!(
        msg.starts_with("spec.namespaceMappingStrategy: field is immutable"),
        "{msg}"
    );
    assert!(
        msg.contains("delete and recreate the NamespaceOffloading"),
        "{msg}"
    );
}

#[test]
fn v6_remote_name_change_is_denied() {
    for strategy in ["SelectedName", "DefaultName", "EnforceSameName"] {
        let old =
            named_ok(json!({"namespaceMappingStrategy": strategy, "remoteNamespaceName": "a"}));
        let new =
            named_ok(json!({"namespaceMappingStrategy": strategy, "remoteNamespaceName": "b"}));
        let msg = denial(update(&old, &new));
        assert!(
            msg.starts_with("spec.remoteNamespaceName: field is immutable"),
            "{strategy}: {msg}"
        );
        assert!(msg.contains("delete and recreate"), "{msg}");
    }
}

fn pod_update(from: Option<&str>, to: Option<&str>) -> Verdict {
    let spec = |s: Option<&str>| match s {
        Some(s) => json!({"podOffloadingStrategy": s}),
        None => json!({}),
    };
    update(&named_ok(spec(from)), &named_ok(spec(to)))
}

#[test]
fn v7_stricter_pod_strategy_warns() {
    let w = warnings(pod_update(Some("LocalAndRemote"), Some("Remote")));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("from LocalAndRemote to Remote"), "{w:?}");
    assert!(w[0].contains("already running"), "{w:?}");
    assert!(w[0].contains("not moved"), "{w:?}");
}

#[test]
fn v8_remote_to_local_warns() {
    let w = warnings(pod_update(Some("Remote"), Some("Local")));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("from Remote to Local"), "{w:?}");
}

#[test]
fn v9_back_to_local_and_remote_does_not_warn() {
    assert!(warnings(pod_update(Some("Local"), Some("LocalAndRemote"))).is_empty());
    assert!(warnings(pod_update(Some("Remote"), None)).is_empty());
    // Absent is the default: making it explicit is not a change.
    assert!(warnings(pod_update(None, Some("LocalAndRemote"))).is_empty());
    assert!(warnings(pod_update(Some("Remote"), Some("Remote"))).is_empty());
}

#[test]
fn v10_selector_change_is_allowed() {
    let old = named_ok(selector_with(
        json!({"key": "region", "operator": "In", "values": ["eu"]}),
    ));
    let new = named_ok(selector_with(
        json!({"key": "region", "operator": "Exists"}),
    ));
    assert!(warnings(update(&old, &new)).is_empty());
    let none = named_ok(json!({}));
    assert!(warnings(update(&none, &new)).is_empty());
    assert!(warnings(update(&new, &none)).is_empty());
}

#[test]
fn v11_exists_with_values_is_denied() {
    let obj = named_ok(selector_with(
        json!({"key": "region", "operator": "Exists", "values": ["eu"]}),
    ));
    let msg = denial(create(&obj));
    assert!(
        msg.starts_with(
            "spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[0].values: operator \
             Exists takes no values"
        ),
        "{msg}"
    );
}

#[test]
fn v12_default_name_too_long_is_denied() {
    let ns = "n".repeat(60);
    let obj = named_ok(json!({"namespaceMappingStrategy": "DefaultName"}));
    let v = validate_nsoff(&Operation::Create, None, &ns, Some(&obj), None, &cfg());
    let msg = denial(v);
    assert!(msg.contains("63 characters (it has 65)"), "{msg}");
    assert!(msg.contains(&format!("\"{ns}-home\"")), "{msg}");
    assert!(
        msg.starts_with("spec.namespaceMappingStrategy: DefaultName"),
        "{msg}"
    );
    // Absent strategy is DefaultName too.
    let obj = named_ok(json!({}));
    let v = validate_nsoff(&Operation::Create, None, &ns, Some(&obj), None, &cfg());
    assert!(denial(v).contains("63 characters"));
    // The same namespace is fine with a short selected name.
    let obj = named_ok(
        json!({"namespaceMappingStrategy": "SelectedName", "remoteNamespaceName": "short"}),
    );
    let v = validate_nsoff(&Operation::Create, None, &ns, Some(&obj), None, &cfg());
    assert!(v.is_allowed());
}

#[test]
fn invalid_selected_name_is_denied() {
    let spec =
        json!({"namespaceMappingStrategy": "SelectedName", "remoteNamespaceName": "Bad_Name"});
    let msg = denial(create(&named_ok(spec)));
    assert!(
        msg.starts_with("spec.remoteNamespaceName: \"Bad_Name\" is not a valid"),
        "{msg}"
    );
}

#[test]
fn unknown_enum_values_are_denied() {
    let msg = denial(create(&named_ok(json!({"podOffloadingStrategy": "Foo"}))));
    assert_eq!(
        msg,
        "spec.podOffloadingStrategy: unknown value \"Foo\"; allowed values: LocalAndRemote, \
         Remote, Local"
    );
    let msg = denial(create(&named_ok(
        json!({"namespaceMappingStrategy": "Same"}),
    )));
    assert_eq!(
        msg,
        "spec.namespaceMappingStrategy: unknown value \"Same\"; allowed values: DefaultName, \
         EnforceSameName, SelectedName"
    );
    let msg = denial(create(&named_ok(json!({"podOffloadingStrategy": 3}))));
    assert_eq!(msg, "spec.podOffloadingStrategy: must be a string, not 3");
    let msg = denial(create(&named_ok(json!({"remoteNamespaceName": true}))));
    assert_eq!(msg, "spec.remoteNamespaceName: must be a string, not true");
}

#[test]
fn absent_and_empty_remote_name_are_the_same_on_update() {
    let absent = named_ok(json!({}));
    let empty = named_ok(json!({"remoteNamespaceName": ""}));
    let null = named_ok(json!({"remoteNamespaceName": null}));
    for (old, new) in [
        (&absent, &empty),
        (&empty, &absent),
        (&null, &empty),
        (&absent, &null),
    ] {
        assert!(warnings(update(old, new)).is_empty());
    }
    // Absent strategy and explicit DefaultName are the same value too.
    let explicit = named_ok(json!({"namespaceMappingStrategy": "DefaultName"}));
    assert!(warnings(update(&absent, &explicit)).is_empty());
}

#[test]
fn subresources_delete_and_connect_are_allowed() {
    let bad = nsoff("foo", json!({"podOffloadingStrategy": "Foo"}));
    let c = cfg();
    let v = validate_nsoff(
        &Operation::Update,
        Some("status"),
        NS,
        Some(&bad),
        Some(&bad),
        &c,
    );
    assert_eq!(v, Verdict::allow());
    for op in [Operation::Delete, Operation::Connect] {
        assert_eq!(
            validate_nsoff(&op, None, NS, None, Some(&bad), &c),
            Verdict::allow()
        );
    }
}

#[test]
fn missing_object_is_denied() {
    for op in [Operation::Create, Operation::Update] {
        let v = validate_nsoff(&op, None, NS, None, None, &cfg());
        assert_eq!(v, Verdict::Deny("request has no object".to_owned()));
    }
    let v = validate_nsoff(
        &Operation::Create,
        None,
        NS,
        Some(&json!("x")),
        None,
        &cfg(),
    );
    assert!(!v.is_allowed());
}

#[test]
fn multiple_errors_are_combined() {
    let spec = json!({
        "namespaceMappingStrategy": "SelectedName",
        "podOffloadingStrategy": "Anywhere",
        "clusterSelector": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cpu", "operator": "Gt", "values": ["many"]}]},
            {},
        ]},
    });
    let msg = denial(create(&nsoff("foo", spec)));
    let parts: Vec<&str> = msg.split("; ").collect();
    let prefixes = [
        "metadata.name: ",
        "spec.remoteNamespaceName: required",
        "spec.podOffloadingStrategy: unknown value \"Anywhere\"",
        "allowed values: LocalAndRemote, Remote, Local",
        "spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[0].values[0]: ",
        "spec.clusterSelector.nodeSelectorTerms[1]: ",
    ];
    assert_eq!(parts.len(), prefixes.len(), "{msg}");
    for (part, prefix) in parts.iter().zip(prefixes) {
        assert!(
            part.starts_with(prefix),
            "{part:?} should start with {prefix:?}"
        );
    }
}

#[test]
fn webhook_skip_label_does_not_bypass_validation() {
    let mut obj = nsoff("foo", json!({"podOffloadingStrategy": "Foo"}));
    obj["metadata"]["labels"] = json!({"liqo.io/webhook-skip": "true"});
    let msg = denial(create(&obj));
    assert!(msg.contains("metadata.name"), "{msg}");
    assert!(msg.contains("spec.podOffloadingStrategy"), "{msg}");
}

#[test]
fn selector_of_the_wrong_shape_names_the_field() {
    for sel in [
        json!("region=eu"),
        json!({"nodeSelectorTerms": 5}),
        json!([]),
    ] {
        let msg = denial(create(&named_ok(json!({"clusterSelector": sel}))));
        assert!(
            msg.starts_with("spec.clusterSelector: not a valid NodeSelector"),
            "{msg}"
        );
    }
    // null, `{}` and zero terms all mean every cluster (as the typed spec reads them).
    for sel in [json!(null), json!({}), json!({"nodeSelectorTerms": []})] {
        let obj = named_ok(json!({"clusterSelector": sel}));
        assert!(create(&obj).is_allowed(), "{obj}");
    }
}

#[test]
fn update_introducing_an_invalid_selector_is_denied() {
    let old = named_ok(json!({}));
    let new = named_ok(selector_with(json!({"key": "a", "operator": "Foo"})));
    let msg = denial(update(&old, &new));
    assert!(msg.contains(".operator: unknown operator \"Foo\""), "{msg}");
}

#[test]
fn update_keeping_a_stored_invalid_selector_is_allowed() {
    // An object stored before the webhook existed must still let the reconciler remove its
    // finalizer (a metadata-only update).
    let old = named_ok(selector_with(json!({"key": "a", "operator": "Foo"})));
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!([]);
    new["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    assert!(warnings(update(&old, &new)).is_empty());
    // Same for a DefaultName twin name that is too long.
    let ns = "n".repeat(60);
    let old = named_ok(json!({}));
    let v = validate_nsoff(
        &Operation::Update,
        None,
        &ns,
        Some(&old),
        Some(&old),
        &cfg(),
    );
    assert!(v.is_allowed());
}

#[test]
fn update_without_old_object_is_judged_like_create() {
    let obj = named_ok(json!({"namespaceMappingStrategy": "SelectedName"}));
    let v = validate_nsoff(&Operation::Update, None, NS, Some(&obj), None, &cfg());
    assert!(denial(v).contains("spec.remoteNamespaceName: required"));
}

#[test]
fn missing_spec_takes_defaults() {
    let obj = json!({"metadata": {"name": "offloading"}});
    assert!(warnings(create(&obj)).is_empty());
    let msg = denial(create(
        &json!({"metadata": {"name": "offloading"}, "spec": 1}),
    ));
    assert!(msg.starts_with("spec: must be an object"), "{msg}");
}
