//! Kubernetes name rules and the twin-namespace name.
//!
//! Why this exists: the webhook must refuse a NamespaceOffloading whose twin namespace could
//! never be created (SPEC §5 rule 5), and must refuse selector keys the reconciler could not
//! match (rule 4). Both need the API server's own name rules, answered with a message a person
//! can act on, without a regex dependency. The twin name itself (SPEC §7 step 3) is computed
//! here too, so the webhook checks exactly the name the reconciler will create.

use crate::api::{NamespaceMappingStrategy, NamespaceOffloadingSpec};

/// Longest DNS-1123 label (a namespace name, a label-key name part).
pub(crate) const DNS1123_LABEL_MAX_LEN: usize = 63;
/// Longest DNS-1123 subdomain (a label-key prefix).
pub(crate) const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

/// Checks that `s` is an RFC 1123 label: 1..=63 characters, lower case alphanumerics or `-`,
/// starting and ending with an alphanumeric. This is the rule for namespace names.
///
/// The error says what is wrong, e.g. `must be at most 63 characters (it has 70)`; when several
/// rules fail their messages are joined with `", and "`.
pub(crate) fn check_dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let mut problems = Vec::new();
    let len = s.chars().count();
    if len > DNS1123_LABEL_MAX_LEN {
        problems.push(format!(
            "must be at most {DNS1123_LABEL_MAX_LEN} characters (it has {len})"
        ));
    }
    if !is_dns1123_label_shape(s) {
        problems.push(
            "must consist of lower case alphanumeric characters or '-', and must start and end \
             with an alphanumeric character"
                .to_owned(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(", and "))
    }
}

/// Checks that `key` is a Kubernetes label key (a "qualified name"): an optional prefix that is
/// a DNS-1123 subdomain of at most 253 characters followed by `/`, then a name of 1..=63
/// characters made of alphanumerics, `-`, `_` and `.`, starting and ending with an
/// alphanumeric. Examples: `region`, `topology.kubernetes.io/zone`.
pub(crate) fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let mut problems = Vec::new();
    if let Some(prefix) = prefix {
        if name.contains('/') {
            problems.push("must contain at most one '/' (between prefix and name)".to_owned());
        }
        if prefix.is_empty() {
            problems.push("prefix part (before '/') must not be empty".to_owned());
        } else {
            let len = prefix.chars().count();
            if len > DNS1123_SUBDOMAIN_MAX_LEN {
                problems.push(format!(
                    "prefix part must be at most {DNS1123_SUBDOMAIN_MAX_LEN} characters \
                     (it has {len})"
                ));
            }
            if !prefix.split('.').all(is_dns1123_label_shape) {
                problems.push(
                    "prefix part must be a DNS subdomain: lower case alphanumeric characters, \
                     '-' or '.', each dot-separated part starting and ending with an \
                     alphanumeric character (e.g. 'example.com')"
                        .to_owned(),
                );
            }
        }
    }
    // With a second '/', the name part is reported as malformed above; skip its own checks.
    if !name.contains('/') {
        check_qualified_name_part(name, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(", and "))
    }
}

fn check_qualified_name_part(name: &str, problems: &mut Vec<String>) {
    if name.is_empty() {
        problems.push("name part must not be empty".to_owned());
        return;
    }
    let len = name.chars().count();
    if len > DNS1123_LABEL_MAX_LEN {
        problems.push(format!(
            "name part must be at most {DNS1123_LABEL_MAX_LEN} characters (it has {len})"
        ));
    }
    let inner_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ends_ok = starts_and_ends_with(name, |c| c.is_ascii_alphanumeric());
    if !inner_ok || !ends_ok {
        problems.push(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start \
             and end with an alphanumeric character (e.g. 'MyName', 'my.name', '123-abc')"
                .to_owned(),
        );
    }
}

/// The characters and ends of a DNS-1123 label, without the length limit.
fn is_dns1123_label_shape(s: &str) -> bool {
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.chars().all(|c| lower_alnum(c) || c == '-')
        && starts_and_ends_with(s, lower_alnum)
}

fn starts_and_ends_with(s: &str, pred: impl Fn(char) -> bool) -> bool {
    let mut chars = s.chars();
    let first = chars.next();
    let last = chars.next_back().or(first);
    first.is_some_and(&pred) && last.is_some_and(&pred)
}

/// The name of the twin namespace on every remote cluster (SPEC §7 step 3):
/// `EnforceSameName` → the local namespace name; `SelectedName` → `spec.remoteNamespaceName`
/// (`""` when absent); `DefaultName` → `<local-namespace>-<home-cluster-id>`.
///
/// The result is not validated; see [`check_dns1123_label`].
pub(crate) fn twin_namespace_name(
    spec: &NamespaceOffloadingSpec,
    local_namespace: &str,
    home_cluster_id: &str,
) -> String {
    match spec.namespace_mapping_strategy {
        NamespaceMappingStrategy::EnforceSameName => local_namespace.to_owned(),
        NamespaceMappingStrategy::SelectedName => {
            spec.remote_namespace_name.clone().unwrap_or_default()
        }
        NamespaceMappingStrategy::DefaultName => format!("{local_namespace}-{home_cluster_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_label_accepts_valid_names() {
        for s in [
            "a",
            "0",
            "shop",
            "shop-home",
            "a-b-c",
            "9lives",
            &"a".repeat(63),
        ] {
            assert_eq!(check_dns1123_label(s), Ok(()), "{s:?}");
        }
    }

    #[test]
    fn dns1123_label_rejects_invalid_names() {
        let shape = "must consist of lower case alphanumeric characters or '-', and must start \
                     and end with an alphanumeric character";
        let cases: &[(&str, &str)] = &[
            ("", "must not be empty"),
            ("-a", shape),
            ("a-", shape),
            ("-", shape),
            ("Shop", shape),
            ("a.b", shape),
            ("a_b", shape),
            ("a b", shape),
            ("é", shape),
        ];
        for (s, want) in cases {
            assert_eq!(check_dns1123_label(s), Err((*want).to_owned()), "{s:?}");
        }
    }

    #[test]
    fn dns1123_label_reports_length() {
        let s = "a".repeat(70);
        assert_eq!(
            check_dns1123_label(&s),
            Err("must be at most 63 characters (it has 70)".to_owned())
        );
        assert!(check_dns1123_label(&"a".repeat(64)).is_err());
        // Both problems are reported at once.
        let err = check_dns1123_label(&format!("{}-", "A".repeat(64))).unwrap_err();
        assert!(err.contains("at most 63 characters (it has 65)"), "{err}");
        assert!(err.contains("lower case alphanumeric"), "{err}");
    }

    #[test]
    fn label_key_accepts_valid_keys() {
        let long_prefix = format!("{}.io", "a".repeat(250));
        let long_key = format!("{long_prefix}/{}", "N".repeat(63));
        for key in [
            "region",
            "Region",
            "a",
            "my.name",
            "my_name-2",
            "123-abc",
            "liqo.io/type",
            "topology.kubernetes.io/zone",
            "a-b.c/x",
            long_key.as_str(),
        ] {
            assert_eq!(check_label_key(key), Ok(()), "{key:?}");
        }
    }

    #[test]
    fn label_key_rejects_invalid_keys() {
        let cases: &[(&str, &str)] = &[
            ("", "name part must not be empty"),
            ("liqo.io/", "name part must not be empty"),
            ("/type", "prefix part (before '/') must not be empty"),
            ("a/b/c", "at most one '/'"),
            ("-region", "name part must consist of"),
            ("region.", "name part must consist of"),
            ("has space", "name part must consist of"),
            ("Liqo.io/type", "prefix part must be a DNS subdomain"),
            ("liqo..io/type", "prefix part must be a DNS subdomain"),
            ("liqo.io-/type", "prefix part must be a DNS subdomain"),
            ("liqo_io/type", "prefix part must be a DNS subdomain"),
        ];
        for (key, want) in cases {
            let err = check_label_key(key).unwrap_err();
            assert!(err.contains(want), "{key:?}: {err}");
        }
    }

    #[test]
    fn label_key_reports_lengths() {
        let err = check_label_key(&"n".repeat(64)).unwrap_err();
        assert_eq!(err, "name part must be at most 63 characters (it has 64)");
        let prefix = format!("{}.io", "a".repeat(251));
        let err = check_label_key(&format!("{prefix}/x")).unwrap_err();
        assert_eq!(
            err,
            "prefix part must be at most 253 characters (it has 254)"
        );
    }

    fn spec(strategy: NamespaceMappingStrategy, remote: Option<&str>) -> NamespaceOffloadingSpec {
        NamespaceOffloadingSpec {
            namespace_mapping_strategy: strategy,
            remote_namespace_name: remote.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn twin_name_follows_the_strategy() {
        use NamespaceMappingStrategy::*;
        let cases = [
            (spec(DefaultName, None), "shop-home"),
            (spec(DefaultName, Some("ignored")), "shop-home"),
            (spec(EnforceSameName, None), "shop"),
            (spec(EnforceSameName, Some("ignored")), "shop"),
            (spec(SelectedName, Some("bar")), "bar"),
            (spec(SelectedName, Some("")), ""),
            (spec(SelectedName, None), ""),
        ];
        for (spec, want) in cases {
            assert_eq!(twin_namespace_name(&spec, "shop", "home"), want, "{spec:?}");
        }
    }
}
