//! The certificate manager of cluster mode against a scripted API server: start-up creates
//! the Secret and registers both webhook configurations with its CA bundle; a refresh that
//! finds the same Secret writes and registers nothing; a refresh that finds a rotated pair
//! (written by another replica) serves it and registers the new bundle.

mod common;

use std::time::Duration;

use common::mock_api::{self, ApiServer};
use http::{Method, StatusCode};
use nsoffload::registration::manager::{CertManager, ManagedCerts};
use nsoffload::registration::secret::{plan, CertMaterial, Plan, RotationPolicy};
use nsoffload::registration::webhooks::Endpoint;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::{json, Value};
use time::OffsetDateTime;

const SECRET: &str = "/api/v1/namespaces/nsoffload-system/secrets/nsoffload-webhook-tls";
const MUTATING: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/nsoffload";
const VALIDATING: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/nsoffload";

fn config() -> ManagedCerts {
    ManagedCerts {
        namespace: "nsoffload-system".into(),
        secret_name: "nsoffload-webhook-tls".into(),
        hosts: vec!["nsoffload.nsoffload-system.svc".into()],
        endpoint: Endpoint::Service {
            namespace: "nsoffload-system".into(),
            name: "nsoffload".into(),
            port: 443,
        },
        policy: RotationPolicy::default(),
    }
}

fn secret_json(m: &CertMaterial) -> Value {
    let data: serde_json::Map<String, Value> = m
        .data()
        .into_iter()
        .map(|(k, v)| (k, serde_json::to_value(v).unwrap()))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "nsoffload-webhook-tls", "namespace": "nsoffload-system", "resourceVersion": "5",
                     "labels": {"app.kubernetes.io/managed-by": "nsoffload"}},
        "data": data
    })
}

fn fresh() -> CertMaterial {
    match plan(
        None,
        &config().hosts,
        OffsetDateTime::now_utc(),
        &RotationPolicy::default(),
    )
    .unwrap()
    {
        Plan::Write(m) => m,
        Plan::Keep => unreachable!("nothing stored always writes"),
    }
}

/// Answers the two registration GETs (absent) and checks the two apply PATCHes carry `bundle`.
async fn expect_registration(api: &mut ApiServer, bundle: &str) {
    api.expect(Method::GET, MUTATING)
        .await
        .fail(404, "NotFound");
    api.expect(Method::GET, VALIDATING)
        .await
        .fail(404, "NotFound");
    let b64 = serde_json::to_value(k8s_openapi::ByteString(bundle.as_bytes().to_vec())).unwrap();
    for path in [MUTATING, VALIDATING] {
        let patch = api.expect(Method::PATCH, path).await;
        assert_eq!(patch.content_type, "application/apply-patch+yaml");
        for w in patch.body["webhooks"].as_array().unwrap() {
            assert_eq!(w["clientConfig"]["caBundle"], b64, "{path}");
        }
        let reply = patch.body.clone();
        patch.ok(&reply);
    }
}

#[tokio::test]
async fn start_creates_registers_and_refresh_follows_the_secret() {
    let (client, mut api) = mock_api::pair();
    let rotated = fresh();
    let rotated_s = rotated.clone();
    let script = async move {
        // start(): the Secret is missing, is created, and both configurations are applied.
        api.expect(Method::GET, SECRET).await.fail(404, "NotFound");
        let post = api
            .expect(Method::POST, "/api/v1/namespaces/nsoffload-system/secrets")
            .await;
        let created = post.body.clone();
        post.reply(StatusCode::CREATED, &created);
        let bundle = CertMaterial::from_secret(&serde_json::from_value(created.clone()).unwrap())
            .ca_bundle_pem;
        expect_registration(&mut api, &bundle).await;
        // refresh(): unchanged → one GET, nothing else.
        api.expect(Method::GET, SECRET).await.ok(&created);
        // refresh(): another replica stored a new pair with a new CA → served and registered.
        api.expect(Method::GET, SECRET)
            .await
            .ok(&secret_json(&rotated_s));
        expect_registration(&mut api, &rotated_s.ca_bundle_pem).await;
        api.expect_done().await;
    };
    let expiry = Gauge::default();
    let client_side = async {
        let (mut manager, _served) = CertManager::start(client, config(), expiry.clone())
            .await
            .unwrap();
        assert!(
            expiry.get() > OffsetDateTime::now_utc().unix_timestamp() + 300 * 86_400,
            "expiry exported"
        );
        manager.refresh().await.unwrap();
        manager.refresh().await.unwrap();
        let rotated_expiry = rotated.serving_not_after().unwrap().unix_timestamp();
        assert_eq!(
            expiry.get(),
            rotated_expiry,
            "the rotated certificate is served"
        );
    };
    tokio::time::timeout(Duration::from_secs(5), mock_api::run(client_side, script))
        .await
        .expect("in time");
}
