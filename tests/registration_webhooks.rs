//! Webhook configurations: the built objects compared whole, and `register` against a
//! scripted API server (read, then server-side apply; a foreign configuration is left alone).

mod common;

use base64::Engine as _;
use common::mock_api;
use http::Method;
use nsoffload::registration::webhooks::{
    mutating_configuration, register, validating_configuration, Endpoint, RegistrationError,
};
use serde_json::{json, Value};

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const MUTATING: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/nsoffload";
const VALIDATING: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/nsoffload";

fn service() -> Endpoint {
    Endpoint::Service {
        namespace: "nsoffload".into(),
        name: "nsoffload-webhook".into(),
        port: 443,
    }
}

fn ca_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(CA)
}

fn service_ref(path: &str) -> Value {
    json!({
        "caBundle": ca_b64(),
        "service": {"namespace": "nsoffload", "name": "nsoffload-webhook", "port": 443, "path": path},
    })
}

fn url_ref(path: &str) -> Value {
    json!({"caBundle": ca_b64(), "url": format!("https://webhook.example.com:8443{path}")})
}

fn metadata() -> Value {
    json!({"name": "nsoffload", "labels": {"app.kubernetes.io/managed-by": "nsoffload"}})
}

fn expected_mutating(client: impl Fn(&str) -> Value) -> Value {
    let own =
        json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["nsoffload"]});
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": metadata(),
        "webhooks": [
            {
                "name": "pod.mutate.nsoffload.liqo.io",
                "admissionReviewVersions": ["v1"],
                "clientConfig": client("/mutate/pod"),
                "failurePolicy": "Fail",
                "matchPolicy": "Equivalent",
                "namespaceSelector": {"matchExpressions": [
                    {"key": "liqo.io/scheduling-enabled", "operator": "In", "values": ["true"]},
                    own,
                ]},
                "reinvocationPolicy": "IfNeeded",
                "rules": [{
                    "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                    "resources": ["pods"], "scope": "Namespaced",
                }],
                "sideEffects": "None",
                "timeoutSeconds": 5,
            },
            {
                "name": "namespace.mutate.nsoffload.liqo.io",
                "admissionReviewVersions": ["v1"],
                "clientConfig": client("/mutate/namespace"),
                "failurePolicy": "Fail",
                "matchPolicy": "Equivalent",
                "objectSelector": {"matchExpressions": [
                    {"key": "liqo.io/enabled", "operator": "In", "values": ["true"]},
                    own,
                ]},
                "reinvocationPolicy": "Never",
                "rules": [{
                    "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                    "resources": ["namespaces"], "scope": "Cluster",
                }],
                "sideEffects": "None",
                "timeoutSeconds": 5,
            },
        ],
    })
}

fn expected_validating(client: impl Fn(&str) -> Value) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": metadata(),
        "webhooks": [{
            "name": "namespaceoffloading.validate.nsoffload.liqo.io",
            "admissionReviewVersions": ["v1"],
            "clientConfig": client("/validate/namespace-offloading"),
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["nsoffload"]},
            ]},
            "rules": [{
                "apiGroups": ["offloading.liqo.io"], "apiVersions": ["v1beta1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["namespaceoffloadings"],
                "scope": "Namespaced",
            }],
            "sideEffects": "None",
            "timeoutSeconds": 5,
        }],
    })
}

fn json_of<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn configurations_with_a_service_reference() {
    assert_eq!(
        json_of(&mutating_configuration(CA, &service(), "nsoffload")),
        expected_mutating(service_ref)
    );
    assert_eq!(
        json_of(&validating_configuration(CA, &service(), "nsoffload")),
        expected_validating(service_ref)
    );
}

#[test]
fn configurations_with_a_url() {
    let url = Endpoint::Url("https://webhook.example.com:8443/".into());
    assert_eq!(
        json_of(&mutating_configuration(CA, &url, "nsoffload")),
        expected_mutating(url_ref)
    );
    assert_eq!(
        json_of(&validating_configuration(CA, &url, "nsoffload")),
        expected_validating(url_ref)
    );
}

fn owned(kind: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "nsoffload", "resourceVersion": "5", "labels": {"app.kubernetes.io/managed-by": "nsoffload"}},
        "webhooks": [],
    })
}

fn foreign(kind: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "nsoffload", "resourceVersion": "9", "labels": {"app.kubernetes.io/managed-by": "helm"}},
        "webhooks": [],
    })
}

async fn run_register(
    client: kube::Client,
    script: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RegistrationError> {
    mock_api::run(
        async move { register(client, CA, &service(), "nsoffload").await },
        script,
    )
    .await
}

#[tokio::test]
async fn register_reads_then_applies_both_configurations() {
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, MUTATING)
            .await
            .fail(404, "NotFound");
        api.expect(Method::GET, VALIDATING)
            .await
            .ok(&owned("ValidatingWebhookConfiguration"));
        for (path, want) in [
            (MUTATING, expected_mutating(service_ref)),
            (VALIDATING, expected_validating(service_ref)),
        ] {
            let patch = api.expect(Method::PATCH, path).await;
            assert_eq!(patch.content_type, "application/apply-patch+yaml");
            assert!(
                patch.has_param("fieldManager", "nsoffload"),
                "{}",
                patch.query
            );
            assert!(patch.has_param("force", "true"), "{}", patch.query);
            assert_eq!(patch.body, want);
            let reply = patch.body.clone();
            patch.ok(&reply);
        }
        api.expect_done().await;
    };
    run_register(client, script).await.unwrap();
}

#[tokio::test]
async fn a_foreign_mutating_configuration_is_left_alone() {
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, MUTATING)
            .await
            .ok(&foreign("MutatingWebhookConfiguration"));
        api.expect_done().await;
    };
    let err = run_register(client, script).await.unwrap_err();
    assert!(matches!(err, RegistrationError::NotOwned { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("MutatingWebhookConfiguration nsoffload"),
        "{text}"
    );
    assert!(text.contains("not managed by nsoffload"), "{text}");
}

#[tokio::test]
async fn a_foreign_validating_configuration_stops_both_applies() {
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, MUTATING)
            .await
            .ok(&owned("MutatingWebhookConfiguration"));
        api.expect(Method::GET, VALIDATING)
            .await
            .ok(&foreign("ValidatingWebhookConfiguration"));
        api.expect_done().await;
    };
    let err = run_register(client, script).await.unwrap_err();
    assert!(matches!(err, RegistrationError::NotOwned { .. }), "{err}");
}

#[tokio::test]
async fn api_errors_name_the_configuration() {
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, MUTATING)
            .await
            .fail(403, "Forbidden");
        api.expect_done().await;
    };
    let err = run_register(client, script).await.unwrap_err();
    assert!(matches!(err, RegistrationError::Api { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("MutatingWebhookConfiguration nsoffload"));
}

#[tokio::test]
async fn a_url_server_does_not_redirect_an_in_cluster_installation() {
    let (client, mut api) = mock_api::pair();
    let mut installed = owned("MutatingWebhookConfiguration");
    installed["webhooks"] = json!([{
        "name": "pod.mutate.nsoffload.liqo.io",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "clientConfig": {"service": {"namespace": "nsoffload-system", "name": "nsoffload", "path": "/mutate/pod", "port": 443}}
    }]);
    let script = async move {
        api.expect(Method::GET, MUTATING).await.ok(&installed);
        api.expect_done().await;
    };
    let url = Endpoint::Url("https://192.0.2.10:8443".into());
    let err = mock_api::run(
        async move { register(client, CA, &url, "nsoffload").await },
        script,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RegistrationError::InstalledInCluster { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--webhook-url"), "{err}");
}

fn with_url(kind: &str, url: &str) -> Value {
    let mut c = owned(kind);
    c["webhooks"] = json!([{
        "name": "x.nsoffload.liqo.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
        "clientConfig": {"url": url}
    }]);
    c
}

#[tokio::test]
async fn unregister_removes_only_configurations_still_calling_this_url() {
    use nsoffload::registration::webhooks::unregister_url;
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, MUTATING).await.ok(&with_url(
            "MutatingWebhookConfiguration",
            "https://192.0.2.10:8443/mutate/pod",
        ));
        api.expect(Method::DELETE, MUTATING)
            .await
            .ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        // Redirected to another server meanwhile: left alone.
        api.expect(Method::GET, VALIDATING).await.ok(&with_url(
            "ValidatingWebhookConfiguration",
            "https://192.0.2.99:8443/validate/namespace-offloading",
        ));
        api.expect_done().await;
    };
    let deleted = mock_api::run(
        async move { unregister_url(client, "https://192.0.2.10:8443").await },
        script,
    )
    .await
    .unwrap();
    assert_eq!(deleted, 1);

    // Foreign or absent configurations: nothing deleted.
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, MUTATING)
            .await
            .ok(&foreign("MutatingWebhookConfiguration"));
        api.expect(Method::GET, VALIDATING)
            .await
            .fail(404, "NotFound");
        api.expect_done().await;
    };
    let deleted = mock_api::run(
        async move { unregister_url(client, "https://192.0.2.10:8443").await },
        script,
    )
    .await
    .unwrap();
    assert_eq!(deleted, 0);
}
