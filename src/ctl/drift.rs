//! The pods of a namespace that no longer follow its policy (SPEC §12), as the commands see
//! them: read the NamespaceOffloading, the virtual nodes and the namespace's pods (page by
//! page), select clusters with the reconciler's own selector, and judge every pod with
//! [`crate::policy::drift`], the rules the reconciler's `PodsCompliant` condition uses.
//!
//! The selection is computed from the nodes rather than read from the status, so a command
//! run right after a policy change judges by the policy that is stored, not by a status the
//! reconciler has not written yet.

use std::collections::BTreeSet;

use http::Method;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::List;

use super::{api, CtlError};
use crate::api::consts::{VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE};
use crate::policy::drift::{
    controller, violation, Controller, CurrentPolicy, NodeKinds, Violation,
};
use crate::reconcile::select::{group_virtual_nodes, select};

/// Pods per page.
const PAGE: u32 = 500;

/// A pod that does not follow the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offender {
    /// The pod's name.
    pub name: String,
    /// The pod's uid: a replacement with the same name is another pod.
    pub uid: String,
    /// Why it violates the policy.
    pub violation: Violation,
    /// Who would bring it back once evicted.
    pub controller: Controller,
}

/// The namespace's pods, judged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Judged {
    /// The namespace has a NamespaceOffloading (without one there is no policy to violate).
    pub offloaded: bool,
    /// The pods that violate it, by name.
    pub offenders: Vec<Offender>,
    /// The uids of every pod listed (to tell replacements from the pods seen before).
    pub seen: BTreeSet<String>,
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &kube::Client,
    namespace: &str,
    doing: &'static str,
    uri: String,
) -> Result<T, CtlError> {
    let req = api::request(Method::GET, uri, "", Vec::new())?;
    match api::call(client, namespace, doing, req).await? {
        Some(answer) => api::decode(namespace, doing, &answer.value),
        None => Err(CtlError::Refused {
            namespace: namespace.to_owned(),
            doing,
            code: 404,
            message: format!("namespace {namespace:?} not found"),
        }),
    }
}

/// The virtual nodes of the home cluster.
pub(crate) async fn virtual_nodes(
    client: &kube::Client,
    namespace: &str,
) -> Result<Vec<Node>, CtlError> {
    let selector = format!("{VIRTUAL_NODE_LABEL}={VIRTUAL_NODE_VALUE}");
    let uri = format!("/api/v1/nodes?labelSelector={}", encode(&selector));
    let list: List<Node> = get_json(client, namespace, "list the virtual nodes", uri).await?;
    Ok(list.items)
}

/// Every pod of `namespace`, page by page.
pub(crate) async fn pods(client: &kube::Client, namespace: &str) -> Result<Vec<Pod>, CtlError> {
    let mut pods = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut uri = format!("/api/v1/namespaces/{namespace}/pods?limit={PAGE}");
        if let Some(t) = &token {
            uri.push_str(&format!("&continue={}", encode(t)));
        }
        let page: List<Pod> = get_json(client, namespace, "list its pods", uri).await?;
        pods.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => token = Some(next),
            None => return Ok(pods),
        }
    }
}

/// Percent-encodes a query-string value (a continue token, a label selector).
fn encode(token: &str) -> String {
    token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads and judges the pods of `namespace` under its NamespaceOffloading.
pub(crate) async fn judge(
    client: &kube::Client,
    namespace: &str,
    runtime_class: &str,
) -> Result<Judged, CtlError> {
    let Some(nsoff) = api::get(client, namespace).await? else {
        return Ok(Judged::default());
    };
    let nodes = virtual_nodes(client, namespace).await?;
    let pods = pods(client, namespace).await?;
    Ok(judge_pods(&nsoff.spec, &nodes, &pods, runtime_class))
}

/// Judges `pods` under `spec`, with `nodes` the virtual nodes (every other node is local).
pub(crate) fn judge_pods(
    spec: &crate::api::NamespaceOffloadingSpec,
    nodes: &[Node],
    pods: &[Pod],
    runtime_class: &str,
) -> Judged {
    let selected = select(spec, &group_virtual_nodes(nodes.iter())).selected;
    let kinds = NodeKinds::new(nodes);
    let kind = |name: &str| kinds.kind(name);
    let policy = CurrentPolicy {
        spec,
        selected: &selected,
        runtime_class,
    };
    let mut offenders: Vec<Offender> = pods
        .iter()
        .filter_map(|pod| {
            let violation = violation(pod, &policy, kind)?;
            Some(Offender {
                name: pod.metadata.name.clone().unwrap_or_default(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                violation,
                controller: controller(pod),
            })
        })
        .collect();
    offenders.sort_by(|a, b| a.name.cmp(&b.name));
    Judged {
        offloaded: true,
        offenders,
        seen: pods.iter().filter_map(|p| p.metadata.uid.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_are_encoded() {
        assert_eq!(encode("abc-_.~"), "abc-_.~");
        assert_eq!(encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }
}
