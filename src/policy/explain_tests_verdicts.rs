//! The webhook's denials, twin namespaces, stored pods, and the one change each verdict names.

use super::*;

fn gpu_pod() -> Value {
    pod(json!({"nodeSelector": {"gpu": "true"}}))
}

fn creation(mut p: Value, at: &str, controlled: bool) -> Value {
    p["metadata"]["creationTimestamp"] = json!(at);
    if controlled {
        p["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u1",
            "controller": true
        }]);
    }
    p
}

fn not_ready(reason: &str, message: &str) -> TwinState {
    TwinState::NotReady {
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

#[test]
fn gate_denials_name_the_offloading_change() {
    let mut terminating = ready(LocalAndRemote, vec![]);
    terminating.metadata.deletion_timestamp = Some(time("2026-03-01T00:00:00Z"));
    let unprocessed = nsoff(LocalAndRemote, vec![], None, &[]);
    let failed = nsoff(
        Remote,
        vec![],
        Some(AllFailed),
        &[
            ("r1", "False", "CreationLoopBackOff", "remote unreachable"),
            ("r2", "False", "CreationLoopBackOff", "forbidden"),
        ],
    );
    let nothing = nsoff(
        Remote,
        vec![term(vec![req("region", "In", &["Z"])])],
        Some(NoClusterSelected),
        &[],
    );
    let invalid_cs = vec![term(vec![req("cores", "Gt", &["many"])])];
    let invalid = nsoff(Remote, invalid_cs.clone(), Some(NoClusterSelected), &[]);
    let parse_error = parse_terms(&invalid_cs).unwrap_err().to_string();
    let wait = |n: &NamespaceOffloading| Change::WaitForOffloading {
        message: gate_message(Some(n)),
    };
    let cases = [
        ("no offloading", None, Change::CreateOffloading),
        ("terminating", Some(terminating.clone()), wait(&terminating)),
        ("unprocessed", Some(unprocessed.clone()), wait(&unprocessed)),
        (
            "all failed",
            Some(failed.clone()),
            Change::FixOffloading {
                clusters: vec![
                    ClusterProblem {
                        cluster: "r1".to_owned(),
                        twin: not_ready("CreationLoopBackOff", "remote unreachable"),
                    },
                    ClusterProblem {
                        cluster: "r2".to_owned(),
                        twin: not_ready("CreationLoopBackOff", "forbidden"),
                    },
                ],
            },
        ),
        (
            "selector matches no cluster",
            Some(nothing.clone()),
            Change::WidenSelector {
                clusters: vec!["r1".to_owned(), "r2".to_owned()],
            },
        ),
        (
            "invalid selector",
            Some(invalid.clone()),
            Change::FixSelector {
                message: parse_error,
            },
        ),
    ];
    for (name, n, change) in cases {
        let mut w = world(n);
        w.enabled = true;
        let e = w.manifest(&pod(json!({})));
        assert_eq!(
            e.admission,
            Admission::Denied {
                message: gate_message(w.nsoff.as_ref())
            },
            "{name}"
        );
        // The nodes are judged for the pod as written, but a denied pod runs nowhere.
        assert_eq!(
            blockers(&e),
            vec![
                ("l1", None),
                ("l2", None),
                ("v1", tv_taint()),
                ("v2", tv_taint())
            ],
            "{name}"
        );
        assert_eq!(e.verdict, no_node(change), "{name}");
    }
}

#[test]
fn twin_namespaces_that_are_not_ready() {
    let some_failed = |r2: Twin<'static>| {
        nsoff(
            LocalAndRemote,
            vec![],
            Some(SomeFailed),
            &[("r1", "True", "NamespaceCreated", ""), r2],
        )
    };
    let conflict = (
        "r2",
        "False",
        "CreationLoopBackOff",
        "shop-home exists and is not ours",
    );
    let creating = ("r2", "False", "Creating", "");
    let cases = [
        (
            some_failed(conflict),
            not_ready("CreationLoopBackOff", "shop-home exists and is not ours"),
            Change::FixOffloading {
                clusters: vec![ClusterProblem {
                    cluster: "r2".to_owned(),
                    twin: not_ready("CreationLoopBackOff", "shop-home exists and is not ours"),
                }],
            },
        ),
        (
            some_failed(creating),
            not_ready("Creating", ""),
            Change::WaitForOffloading {
                message: "the twin namespace on cluster r2 is not created yet".to_owned(),
            },
        ),
    ];
    for (n, twin, change) in cases {
        let e = world(Some(n)).manifest(&gpu_pod());
        let gpu = selector_blocker("gpu", "true", None);
        assert_eq!(
            blockers(&e),
            vec![
                ("l1", gpu.clone()),
                ("l2", gpu.clone()),
                ("v1", gpu),
                ("v2", no_twin("r2", twin))
            ]
        );
        assert_eq!(e.verdict, no_node(change));
    }
}

#[test]
fn without_offloading_virtual_nodes_have_no_twin() {
    let w = world(None);
    // A pod that already tolerates virtual nodes: only the twin namespace is missing.
    let tolerating = pod(json!({"nodeSelector": {"gpu": "true"}, "tolerations": [tv()]}));
    let e = w.manifest(&tolerating);
    assert_eq!(e.admission, Admission::NotCalled);
    assert_eq!(e.blockers_of("v2"), no_twin("r2", TwinState::Absent));
    assert_eq!(e.verdict, no_node(Change::CreateOffloading));
    // A plain pod: the offloading would add the toleration and make the twin.
    let e = w.manifest(&gpu_pod());
    assert_eq!(e.blockers_of("v2"), tv_taint());
    assert_eq!(e.verdict, no_node(Change::CreateOffloading));
    assert_eq!(
        (
            e.offloading.exists,
            e.offloading.strategy,
            &e.offloading.clusters
        ),
        (
            false,
            None,
            &vec![
                ClusterSummary {
                    cluster: "r1".to_owned(),
                    selected: false,
                    twin: TwinState::Absent
                },
                ClusterSummary {
                    cluster: "r2".to_owned(),
                    selected: false,
                    twin: TwinState::Absent
                },
            ]
        )
    );
}

#[test]
fn node_selectors_and_affinity_that_contradict_the_policy() {
    let hostname = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["gone"]}
        ]}]
    }}}});
    let cases = [
        // Remote, but the pod asks for a local disk.
        (
            ready(Remote, vec![]),
            pod(json!({"nodeSelector": {"disk": "ssd"}})),
            Change::ChangeStrategy { to: LocalAndRemote },
        ),
        // Local, but the pod asks for a region only a remote cluster has.
        (
            ready(Local, vec![]),
            pod(json!({"nodeSelector": {"region": "A"}})),
            Change::ChangeStrategy { to: LocalAndRemote },
        ),
        // A label no node has, under any strategy.
        (
            ready(Remote, vec![]),
            pod(json!({"nodeSelector": {"zone": "mars"}})),
            Change::DropNodeSelector {
                keys: vec!["zone".to_owned()],
            },
        ),
        // A selector matching no cluster, and a pod only the unselected cluster can take.
        (
            nsoff(
                LocalAndRemote,
                vec![term(vec![req("region", "In", &["Z"])])],
                Some(NoClusterSelected),
                &[],
            ),
            gpu_pod(),
            Change::WidenSelector {
                clusters: vec!["r2".to_owned()],
            },
        ),
        (
            ready(LocalAndRemote, vec![]),
            pod(hostname),
            Change::DropAffinity,
        ),
    ];
    for (n, p, change) in cases {
        let e = world(Some(n)).manifest(&p);
        assert_eq!(e.verdict, no_node(change), "{p}");
    }
    // The first case in detail: the local disk and the imposed virtual-node requirement.
    let e =
        world(Some(ready(Remote, vec![]))).manifest(&pod(json!({"nodeSelector": {"disk": "ssd"}})));
    let disk = selector_blocker("disk", "ssd", None);
    assert_eq!(
        blockers(&e),
        vec![
            (
                "l1",
                affinity(vec![fails(0, "liqo.io/type=virtual-node", None)])
            ),
            ("l2", selector_blocker("disk", "ssd", Some("hdd"))),
            ("v1", disk.clone()),
            ("v2", disk),
        ]
    );
}

#[test]
fn nodes_that_cannot_take_anything_leave_nothing_to_change() {
    let mut w = world(Some(ready(LocalAndRemote, vec![])));
    for n in &mut w.nodes {
        n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    }
    let e = w.manifest(&pod(json!({})));
    assert!(e.nodes.iter().all(|n| n.blocker == Some(Blocker::Cordoned)));
    assert_eq!(e.verdict, no_node(Change::Nothing));
}

impl Explanation {
    fn blockers_of(&self, node: &str) -> Option<Blocker> {
        let found = self.nodes.iter().find(|n| n.name == node);
        found.and_then(|n| n.blocker.clone())
    }
}

#[path = "explain_tests_stored.rs"]
mod stored;
