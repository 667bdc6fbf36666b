//! The pod admission gate (SPEC §4): deny pods while the namespace's offloading is not ready.
//!
//! The API server only sends pods from namespaces labelled `liqo.io/scheduling-enabled=true`,
//! where admitting a pod unmutated would be wrong (it could land where the policy forbids, or
//! stay Pending forever). Workload controllers retry, so denying until the reconciler has
//! processed the NamespaceOffloading is safe. Messages say what is wrong and what to do.

use super::selector::parse_terms;
use super::Verdict;
use crate::api::consts::{NSOFF_NAME, SCHEDULING_ENABLED_LABEL};
use crate::api::{NamespaceOffloading, OffloadingPhase, PodOffloadingStrategy};

/// Whether pods may be created in `namespace`, given its NamespaceOffloading (if any).
pub fn gate(namespace: &str, nsoff: Option<&NamespaceOffloading>) -> Verdict {
    let Some(nsoff) = nsoff else {
        return Verdict::Deny(format!(
            "namespace {namespace:?} is labelled {SCHEDULING_ENABLED_LABEL}=true but has no \
             NamespaceOffloading named {NSOFF_NAME:?}, so pods cannot be placed yet; create it \
             (`nsoffload offload namespace {namespace}`) or remove the label"
        ));
    };
    if nsoff.metadata.deletion_timestamp.is_some() {
        return Verdict::Deny(format!(
            "the NamespaceOffloading of namespace {namespace:?} is being deleted; wait until it \
             is gone and the scheduling label is removed, or create it again afterwards"
        ));
    }
    let remote_only = nsoff.spec.pod_offloading_strategy == PodOffloadingStrategy::Remote;
    if remote_only {
        // SPEC §3: a selector that slipped past validation selects no cluster.
        if let Err(e) = parse_terms(nsoff.spec.selector_terms()) {
            return Verdict::Deny(format!(
                "namespace {namespace:?} offloads pods only to remote clusters \
                 (podOffloadingStrategy Remote), but the clusterSelector of its \
                 NamespaceOffloading is invalid ({e}), so it selects no cluster and the pod \
                 could never run; fix the clusterSelector and retry"
            ));
        }
    }
    let phase = nsoff.status.as_ref().and_then(|s| s.offloading_phase);
    let Some(phase) = phase else {
        return Verdict::Deny(format!(
            "the NamespaceOffloading of namespace {namespace:?} has not been processed yet; \
             retry in a few seconds (controllers retry on their own)"
        ));
    };
    if remote_only
        && matches!(
            phase,
            OffloadingPhase::NoClusterSelected | OffloadingPhase::AllFailed
        )
    {
        let why = match phase {
            OffloadingPhase::NoClusterSelected => "no remote cluster matches its clusterSelector",
            _ => "its twin namespace failed on every selected remote cluster",
        };
        return Verdict::Deny(format!(
            "namespace {namespace:?} offloads pods only to remote clusters (podOffloadingStrategy \
             Remote), but {why} (phase {phase}), so the pod could never run; fix the \
             NamespaceOffloading (see its status) and retry"
        ));
    }
    Verdict::allow()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{NamespaceOffloadingSpec, NamespaceOffloadingStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn nsoff(
        strategy: PodOffloadingStrategy,
        phase: Option<OffloadingPhase>,
    ) -> NamespaceOffloading {
        let spec = NamespaceOffloadingSpec {
            pod_offloading_strategy: strategy,
            ..Default::default()
        };
        let mut n = NamespaceOffloading::new(NSOFF_NAME, spec);
        n.status = Some(NamespaceOffloadingStatus {
            offloading_phase: phase,
            observed_generation: Some(1),
            ..Default::default()
        });
        n
    }

    fn denied_with(v: Verdict, needle: &str) {
        match v {
            Verdict::Deny(m) => assert!(m.contains(needle), "{m:?} should mention {needle:?}"),
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn missing_nsoff_is_denied_with_the_fix() {
        denied_with(gate("shop", None), "nsoffload offload namespace shop");
    }

    #[test]
    fn terminating_nsoff_is_denied() {
        let mut n = nsoff(
            PodOffloadingStrategy::LocalAndRemote,
            Some(OffloadingPhase::Ready),
        );
        n.metadata.deletion_timestamp = Some(Time(Default::default()));
        denied_with(gate("shop", Some(&n)), "being deleted");
    }

    #[test]
    fn unprocessed_nsoff_is_denied() {
        let mut n = nsoff(PodOffloadingStrategy::LocalAndRemote, None);
        denied_with(gate("shop", Some(&n)), "not been processed");
        n.status = None;
        denied_with(gate("shop", Some(&n)), "not been processed");
    }

    #[test]
    fn phase_of_an_older_generation_still_counts_as_processed() {
        let mut n = nsoff(
            PodOffloadingStrategy::LocalAndRemote,
            Some(OffloadingPhase::InProgress),
        );
        n.metadata.generation = Some(5);
        assert_eq!(gate("shop", Some(&n)), Verdict::allow());
    }

    #[test]
    fn remote_pods_need_a_usable_cluster() {
        use OffloadingPhase::*;
        use PodOffloadingStrategy::*;
        let cases = [
            (Remote, NoClusterSelected, false),
            (Remote, AllFailed, false),
            (Remote, SomeFailed, true),
            (Remote, InProgress, true),
            (Remote, Ready, true),
            (LocalAndRemote, NoClusterSelected, true),
            (LocalAndRemote, AllFailed, true),
            (Local, NoClusterSelected, true),
            (Local, AllFailed, true),
        ];
        for (s, p, allowed) in cases {
            let v = gate("shop", Some(&nsoff(s, Some(p))));
            assert_eq!(v.is_allowed(), allowed, "{s} {p}: {v:?}");
            if !allowed {
                denied_with(v, "Remote");
            }
        }
    }
}
