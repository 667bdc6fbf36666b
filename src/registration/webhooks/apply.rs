//! Applying and removing the webhook configurations through the API server.
//!
//! Kept apart from the pure builders in the parent module: this is the only part that talks
//! to the API server, and every call here refuses to touch a configuration that is not
//! nsoffload's (its managed-by label), or to redirect an in-cluster installation's
//! configurations to a URL.

use std::fmt::Debug;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;

use super::{mutating_configuration, validating_configuration, Endpoint, CONFIGURATION_NAME};
use crate::registration::{FIELD_MANAGER, MANAGED_BY_LABEL, MANAGER};

/// Why [`register`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// A configuration of that name exists and is not nsoffload's.
    #[error(
        "{kind} {name} exists but is not managed by nsoffload (label \
         {MANAGED_BY_LABEL}={MANAGER} missing); refusing to modify it"
    )]
    NotOwned {
        /// The configuration's kind.
        kind: String,
        /// Its name.
        name: String,
    },
    /// An out-of-cluster server (`--webhook-url`) found the configuration pointing at the
    /// in-cluster Service: redirecting it to a URL would hijack the installation.
    #[error("the {kind} {name:?} is served by the in-cluster installation (a Service); a server started with --webhook-url does not redirect it: use a cluster without nsoffload installed, or run in-cluster")]
    InstalledInCluster {
        /// The configuration's kind.
        kind: String,
        /// Its name.
        name: String,
    },
    /// A request to the API server failed.
    #[error("request on {kind} {name} failed: {source}")]
    Api {
        /// The configuration's kind.
        kind: String,
        /// Its name.
        name: String,
        /// The cause.
        source: kube::Error,
    },
}

/// A webhook configuration kind: what the registration steps need to read from it.
trait Configuration:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + serde::Serialize
{
    /// Where each of its webhooks sends requests.
    fn client_configs(&self) -> Vec<&WebhookClientConfig>;
}

impl Configuration for MutatingWebhookConfiguration {
    fn client_configs(&self) -> Vec<&WebhookClientConfig> {
        self.webhooks
            .iter()
            .flatten()
            .map(|w| &w.client_config)
            .collect()
    }
}

impl Configuration for ValidatingWebhookConfiguration {
    fn client_configs(&self) -> Vec<&WebhookClientConfig> {
        self.webhooks
            .iter()
            .flatten()
            .map(|w| &w.client_config)
            .collect()
    }
}

/// Server-side applies both configurations with `ca_bundle_pem`, after checking that neither
/// exists without being nsoffload's; when one is foreign, nothing is applied.
pub async fn register(
    client: kube::Client,
    ca_bundle_pem: &str,
    endpoint: &Endpoint,
    own_namespace: &str,
) -> Result<(), RegistrationError> {
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let url_mode = matches!(endpoint, Endpoint::Url(_));
    check_may_apply(&mutating, url_mode).await?;
    check_may_apply(&validating, url_mode).await?;
    apply(
        &mutating,
        &mutating_configuration(ca_bundle_pem, endpoint, own_namespace),
    )
    .await?;
    apply(
        &validating,
        &validating_configuration(ca_bundle_pem, endpoint, own_namespace),
    )
    .await?;
    tracing::info!(
        name = CONFIGURATION_NAME,
        "applied the webhook configurations"
    );
    Ok(())
}

/// Deletes both configurations if they are nsoffload's and every webhook in them still calls
/// `base_url`: an out-of-cluster server that stops must not leave `failurePolicy: Fail`
/// webhooks pointing at a dead address. Configurations redirected elsewhere meanwhile (by
/// another server) are left alone. Returns how many were deleted.
pub async fn unregister_url(
    client: kube::Client,
    base_url: &str,
) -> Result<usize, RegistrationError> {
    let base = base_url.trim_end_matches('/');
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let deleted = usize::from(delete_if_calling(&mutating, base).await?)
        + usize::from(delete_if_calling(&validating, base).await?);
    Ok(deleted)
}

/// The existing configuration must be nsoffload's, and a URL-mode server must not redirect
/// one that calls the in-cluster Service.
async fn check_may_apply<K: Configuration>(
    api: &Api<K>,
    url_mode: bool,
) -> Result<(), RegistrationError> {
    let existing = check_owned(api).await?;
    if url_mode
        && existing
            .iter()
            .flat_map(K::client_configs)
            .any(|c| c.service.is_some())
    {
        return Err(RegistrationError::InstalledInCluster {
            kind: K::kind(&()).into_owned(),
            name: CONFIGURATION_NAME.to_owned(),
        });
    }
    Ok(())
}

/// Deletes the configuration when it is nsoffload's and every webhook calls `base`; returns
/// whether it did.
async fn delete_if_calling<K: Configuration>(
    api: &Api<K>,
    base: &str,
) -> Result<bool, RegistrationError> {
    let calls_base = |c: &WebhookClientConfig| {
        c.url.as_deref().is_some_and(|u| {
            u == base
                || u.strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    match get_owned(api).await? {
        Some(c) if c.client_configs().into_iter().all(calls_base) => {
            delete(api).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The configuration if it exists and is nsoffload's; `None` otherwise.
async fn get_owned<K>(api: &Api<K>) -> Result<Option<K>, RegistrationError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    match check_owned(api).await {
        Ok(found) => Ok(found),
        Err(RegistrationError::NotOwned { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn delete<K>(api: &Api<K>) -> Result<(), RegistrationError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    match api.delete(CONFIGURATION_NAME, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(api_error::<K>(e)),
    }
}

fn api_error<K: Resource<DynamicType = ()>>(source: kube::Error) -> RegistrationError {
    RegistrationError::Api {
        kind: K::kind(&()).into_owned(),
        name: CONFIGURATION_NAME.to_owned(),
        source,
    }
}

/// The existing configuration, if any, after checking that it is nsoffload's.
async fn check_owned<K>(api: &Api<K>) -> Result<Option<K>, RegistrationError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let Some(existing) = api
        .get_opt(CONFIGURATION_NAME)
        .await
        .map_err(api_error::<K>)?
    else {
        return Ok(None);
    };
    let labels = existing.meta().labels.as_ref();
    if labels
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .map(String::as_str)
        == Some(MANAGER)
    {
        return Ok(Some(existing));
    }
    Err(RegistrationError::NotOwned {
        kind: K::kind(&()).into_owned(),
        name: CONFIGURATION_NAME.to_owned(),
    })
}

async fn apply<K>(api: &Api<K>, config: &K) -> Result<(), RegistrationError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + serde::Serialize,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(CONFIGURATION_NAME, &params, &Patch::Apply(config))
        .await
        .map_err(api_error::<K>)?;
    Ok(())
}
