//! `ensure` against a scripted API server: create, keep, replace with the resourceVersion
//! read, lose a race and converge, refuse a foreign Secret. The rotation rules themselves are
//! unit-tested next to `plan` (src/registration/secret/rotation_tests.rs).

mod common;

use common::mock_api::{self, ApiServer};
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use nsoffload::registration::secret::{
    ensure, plan, CertMaterial, Plan, RotationPolicy, SecretError,
};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

const NS: &str = "nsoffload";
const NAME: &str = "nsoffload-webhook-tls";
const PATH: &str = "/api/v1/namespaces/nsoffload/secrets/nsoffload-webhook-tls";

fn written(p: Plan) -> CertMaterial {
    match p {
        Plan::Write(m) => m,
        Plan::Keep => panic!("expected a write, got Keep"),
    }
}

fn secret_json(m: &CertMaterial, resource_version: &str, owned: bool) -> Value {
    let mut s = Secret {
        type_: Some("kubernetes.io/tls".into()),
        data: Some(m.data()),
        ..Default::default()
    };
    s.metadata.name = Some(NAME.into());
    s.metadata.namespace = Some(NS.into());
    s.metadata.resource_version = Some(resource_version.into());
    if owned {
        s.metadata.labels =
            Some([("app.kubernetes.io/managed-by".into(), "nsoffload".into())].into());
    }
    serde_json::to_value(s).unwrap()
}

fn material_of(body: &Value) -> CertMaterial {
    CertMaterial::from_secret(&serde_json::from_value(body.clone()).unwrap())
}

async fn run_ensure(
    script: impl std::future::Future<Output = ()> + Send + 'static,
    client: kube::Client,
) -> Result<CertMaterial, SecretError> {
    mock_api::run(
        async move {
            ensure(
                client,
                NS,
                NAME,
                &ensure_hosts(),
                &RotationPolicy::default(),
            )
            .await
        },
        script,
    )
    .await
}

fn ensure_hosts() -> Vec<String> {
    vec!["nsoffload.nsoffload.svc".to_owned()]
}

/// Material made `age_days` ago for the hosts `ensure` is called with.
fn aged(age_days: i64) -> CertMaterial {
    let then = OffsetDateTime::now_utc() - Duration::days(age_days);
    written(plan(None, &ensure_hosts(), then, &RotationPolicy::default()).unwrap())
}

#[tokio::test]
async fn ensure_creates_the_secret_when_there_is_none() {
    let (client, mut api) = mock_api::pair();
    let (posted_tx, posted) = tokio::sync::oneshot::channel();
    let script = async move {
        api.expect(Method::GET, PATH).await.fail(404, "NotFound");
        let post = api
            .expect(Method::POST, "/api/v1/namespaces/nsoffload/secrets")
            .await;
        assert!(
            post.has_param("fieldManager", "nsoffload"),
            "{}",
            post.query
        );
        let body = post.body.clone();
        assert_eq!(body["type"], "kubernetes.io/tls");
        assert_eq!(body["metadata"]["name"], NAME);
        assert_eq!(
            body["metadata"]["labels"],
            json!({"app.kubernetes.io/managed-by": "nsoffload"})
        );
        let keys: Vec<_> = body["data"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
        post.reply(StatusCode::CREATED, &body);
        let _ = posted_tx.send(material_of(&body));
        api.expect_done().await;
    };
    let m = run_ensure(script, client).await.unwrap();
    // What is served is what was stored, and it is valid material for the hosts.
    assert_eq!(m, posted.await.unwrap());
    let now = OffsetDateTime::now_utc();
    let replan = plan(Some(&m), &ensure_hosts(), now, &RotationPolicy::default());
    assert_eq!(replan.unwrap(), Plan::Keep);
}

#[tokio::test]
async fn ensure_reads_a_valid_secret_and_writes_nothing() {
    let stored = aged(10);
    let body = secret_json(&stored, "7", true);
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, PATH).await.ok(&body);
        api.expect_done().await;
    };
    assert_eq!(run_ensure(script, client).await.unwrap(), stored);
}

#[tokio::test]
async fn ensure_replaces_an_expiring_secret_with_its_resource_version() {
    let stored = aged(340);
    let body = secret_json(&stored, "41", true);
    let (client, mut api) = mock_api::pair();
    let check = stored.clone();
    let script = async move {
        api.expect(Method::GET, PATH).await.ok(&body);
        let put = api.expect(Method::PUT, PATH).await;
        assert_eq!(put.body["metadata"]["resourceVersion"], "41");
        let sent = material_of(&put.body);
        assert_eq!(sent.ca_bundle_pem, check.ca_bundle_pem);
        assert_ne!(sent.cert_pem, check.cert_pem);
        let reply = put.body.clone();
        put.ok(&reply);
        api.expect_done().await;
    };
    let m = run_ensure(script, client).await.unwrap();
    assert_eq!(m.ca_bundle_pem, stored.ca_bundle_pem);
    assert!(m.serving_not_after().unwrap() - OffsetDateTime::now_utc() > Duration::days(360));
}

#[tokio::test]
async fn ensure_converges_on_the_winner_after_a_conflict() {
    let stored = aged(340);
    let winner = aged(1);
    let (before, after) = (
        secret_json(&stored, "41", true),
        secret_json(&winner, "42", true),
    );
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, PATH).await.ok(&before);
        api.expect(Method::PUT, PATH).await.fail(409, "Conflict");
        api.expect(Method::GET, PATH).await.ok(&after);
        api.expect_done().await;
    };
    assert_eq!(run_ensure(script, client).await.unwrap(), winner);
}

#[tokio::test]
async fn ensure_converges_when_another_replica_created_the_secret_first() {
    let winner = aged(0);
    let body = secret_json(&winner, "1", true);
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, PATH).await.fail(404, "NotFound");
        api.expect(Method::POST, "/api/v1/namespaces/nsoffload/secrets")
            .await
            .fail(409, "AlreadyExists");
        api.expect(Method::GET, PATH).await.ok(&body);
        api.expect_done().await;
    };
    assert_eq!(run_ensure(script, client).await.unwrap(), winner);
}

#[tokio::test]
async fn ensure_never_overwrites_a_secret_it_does_not_own() {
    let body = secret_json(&aged(340), "3", false);
    let (client, mut api) = mock_api::pair();
    let script = async move {
        api.expect(Method::GET, PATH).await.ok(&body);
        api.expect_done().await;
    };
    let err = run_ensure(script, client).await.unwrap_err();
    assert!(matches!(err, SecretError::NotOwned { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("app.kubernetes.io/managed-by=nsoffload"));
}

#[tokio::test]
async fn ensure_gives_up_when_it_keeps_losing() {
    let body = secret_json(&aged(340), "41", true);
    let (client, mut api): (_, ApiServer) = mock_api::pair();
    let script = async move {
        for _ in 0..4 {
            api.expect(Method::GET, PATH).await.ok(&body);
            api.expect(Method::PUT, PATH).await.fail(409, "Conflict");
        }
        api.expect_done().await;
    };
    let err = run_ensure(script, client).await.unwrap_err();
    assert!(matches!(err, SecretError::Contended { .. }), "{err}");
}
