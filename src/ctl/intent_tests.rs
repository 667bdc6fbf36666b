//! Flags → object: defaults, the immutable fields against an existing object, and refusals.

use super::*;
use NamespaceMappingStrategy::{DefaultName, EnforceSameName, SelectedName};

fn names(ns: &[&str]) -> Vec<String> {
    ns.iter().map(|n| (*n).to_owned()).collect()
}

fn spec_of(
    flags: Flags,
    ns: &str,
    existing: Option<&NamespaceOffloadingSpec>,
) -> NamespaceOffloadingSpec {
    Intent::new(flags, &names(&[ns]))
        .unwrap()
        .object(ns, existing)
        .unwrap()
        .spec
}

fn every_cluster() -> Option<NodeSelector> {
    Some(NodeSelector {
        node_selector_terms: Vec::new(),
    })
}

fn invalid(flags: Flags, ns: &[&str]) -> String {
    match Intent::new(flags, &names(ns)) {
        Err(CtlError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn defaults_name_the_whole_offloading() {
    let object = Intent::new(Flags::default(), &names(&["shop"]))
        .unwrap()
        .object("shop", None)
        .unwrap();
    assert_eq!(object.metadata.name.as_deref(), Some("offloading"));
    assert_eq!(object.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(
        object.spec,
        NamespaceOffloadingSpec {
            namespace_mapping_strategy: DefaultName,
            remote_namespace_name: None,
            pod_offloading_strategy: PodOffloadingStrategy::LocalAndRemote,
            cluster_selector: every_cluster(),
        }
    );
    assert!(object.status.is_none());
}

#[test]
fn a_remote_name_implies_selected_name() {
    let flags = Flags {
        remote_namespace_name: Some("shop-eu".into()),
        ..Flags::default()
    };
    let spec = spec_of(flags, "shop", None);
    assert_eq!(spec.namespace_mapping_strategy, SelectedName);
    assert_eq!(spec.remote_namespace_name.as_deref(), Some("shop-eu"));
}

#[test]
fn omitted_immutable_fields_are_kept_from_the_existing_object() {
    let existing = NamespaceOffloadingSpec {
        namespace_mapping_strategy: SelectedName,
        remote_namespace_name: Some("shop-eu".into()),
        pod_offloading_strategy: PodOffloadingStrategy::Remote,
        cluster_selector: None,
    };
    let flags = Flags {
        selectors: vec!["region=eu".into()],
        ..Flags::default()
    };
    let spec = spec_of(flags, "shop", Some(&existing));
    assert_eq!(spec.namespace_mapping_strategy, SelectedName);
    assert_eq!(spec.remote_namespace_name.as_deref(), Some("shop-eu"));
    // Mutable fields are declared by the command: the pod strategy returns to its default.
    assert_eq!(
        spec.pod_offloading_strategy,
        PodOffloadingStrategy::LocalAndRemote
    );
    assert_eq!(spec.selector_terms().len(), 1);
}

#[test]
fn an_ignored_remote_name_on_the_existing_object_is_kept_too() {
    let existing = NamespaceOffloadingSpec {
        namespace_mapping_strategy: DefaultName,
        remote_namespace_name: Some("ignored".into()),
        ..NamespaceOffloadingSpec::default()
    };
    let spec = spec_of(Flags::default(), "shop", Some(&existing));
    assert_eq!(spec.namespace_mapping_strategy, DefaultName);
    assert_eq!(spec.remote_namespace_name.as_deref(), Some("ignored"));
    // `""` and absent are the same value.
    let empty = NamespaceOffloadingSpec {
        remote_namespace_name: Some(String::new()),
        ..NamespaceOffloadingSpec::default()
    };
    assert_eq!(
        spec_of(Flags::default(), "shop", Some(&empty)).remote_namespace_name,
        None
    );
}

#[test]
fn changing_an_immutable_field_is_refused_with_the_fix() {
    let existing = NamespaceOffloadingSpec::default();
    let cases = [
        (
            Flags {
                mapping: Some(EnforceSameName),
                ..Flags::default()
            },
            "namespace shop: it is offloaded with namespace mapping strategy DefaultName, which \
             cannot change; to use EnforceSameName, unoffload it first",
        ),
        (
            Flags {
                remote_namespace_name: Some("x".into()),
                ..Flags::default()
            },
            "namespace shop: it is offloaded with namespace mapping strategy DefaultName, which \
             cannot change; to use SelectedName, unoffload it first",
        ),
    ];
    for (flags, message) in cases {
        let intent = Intent::new(flags, &names(&["shop"])).unwrap();
        let err = intent.object("shop", Some(&existing)).unwrap_err();
        assert!(matches!(err, CtlError::Immutable { .. }), "{err:?}");
        assert_eq!(err.to_string(), message);
    }
    let selected = NamespaceOffloadingSpec {
        namespace_mapping_strategy: SelectedName,
        remote_namespace_name: Some("a".into()),
        ..NamespaceOffloadingSpec::default()
    };
    let flags = Flags {
        remote_namespace_name: Some("b".into()),
        ..Flags::default()
    };
    let err = Intent::new(flags, &names(&["shop"]))
        .unwrap()
        .object("shop", Some(&selected))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "namespace shop: it is offloaded with remote namespace name \"a\", which cannot change; \
         to use \"b\", unoffload it first"
    );
}

#[test]
fn selected_name_needs_a_remote_name() {
    let flags = Flags {
        mapping: Some(SelectedName),
        ..Flags::default()
    };
    // Refused with the flags alone, before any existing object is read.
    assert_eq!(
        invalid(flags, &["shop"]),
        "--namespace-mapping-strategy SelectedName needs --remote-namespace-name"
    );
}

#[test]
fn bad_flags_are_refused_before_anything_is_sent() {
    let remote = |name: &str| Flags {
        remote_namespace_name: Some(name.into()),
        ..Flags::default()
    };
    let cases = [
        (
            Flags::default(),
            vec!["Shop"],
            "\"Shop\" is not a namespace name",
        ),
        (Flags::default(), vec![], "name at least one namespace"),
        (remote("x"), vec!["a", "b"], "2 namespaces are named"),
        (
            remote("Bad_Name"),
            vec!["a"],
            "--remote-namespace-name \"Bad_Name\" is not",
        ),
        (
            Flags {
                mapping: Some(EnforceSameName),
                ..remote("x")
            },
            vec!["a"],
            "only with --namespace-mapping-strategy SelectedName, not EnforceSameName",
        ),
        (
            Flags {
                selectors: vec!["ok=1".into(), "a in (".into()],
                ..Flags::default()
            },
            vec!["a"],
            "--selector: invalid selector \"a in (\" at position 7",
        ),
        (
            Flags {
                selectors: vec!["k notin ()".into()],
                ..Flags::default()
            },
            vec!["a"],
            "position 10: expected a value",
        ),
    ];
    for (flags, ns, needle) in cases {
        let message = invalid(flags, &ns);
        assert!(message.contains(needle), "{ns:?}: {message}");
    }
}

#[test]
fn repeated_namespaces_are_applied_once() {
    let intent = Intent::new(Flags::default(), &names(&["a", "b", "a"])).unwrap();
    assert_eq!(intent.namespaces, names(&["a", "b"]));
}
