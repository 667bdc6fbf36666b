//! Installing with a chosen cluster id, image and replica count, without editing a generated
//! file: the README's kustomize overlay, rendered by `kubectl kustomize` exactly as written
//! there (so the documentation cannot rot), and `nsoffload manifests --cluster-id … --image …
//! --replicas …` for those who do not use kustomize.
//!
//! `kubectl kustomize` runs offline; kubectl must be on the PATH (CI has it). Without it the
//! test fails and says so rather than passing unchecked.

#[path = "bin/kit.rs"]
mod kit;

use std::path::Path;
use std::process::Command;

use serde_yaml::Value;

const OPEN: &str = "cat > overlays/prod/kustomization.yaml <<'EOF'\n";

/// The overlay of the README, as written there.
fn readme_overlay() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find(OPEN)
        .unwrap_or_else(|| panic!("README.md has no line {OPEN:?}"))
        + OPEN.len();
    let len = readme[start..]
        .find("\nEOF\n")
        .expect("the README's overlay ends with EOF");
    readme[start..=start + len].to_owned()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// What an install chooses, read from rendered manifests.
#[derive(Debug, PartialEq)]
struct Chosen {
    cluster_id: String,
    image: String,
    replicas: u64,
}

/// Reads the choices from a rendered set, checking that the Deployment reads the ConfigMap
/// that is in the set.
fn chosen(docs: &[Value]) -> Chosen {
    let kind = |k: &str| -> Vec<&Value> { docs.iter().filter(|d| d["kind"] == k).collect() };
    let config_maps = kind("ConfigMap");
    let deployments = kind("Deployment");
    assert_eq!((config_maps.len(), deployments.len()), (1, 1), "{docs:#?}");
    let (cm, deployment) = (config_maps[0], deployments[0]);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let reference = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "NSOFFLOAD_CLUSTER_ID")
        .map(|e| &e["valueFrom"]["configMapKeyRef"])
        .expect("the cluster id comes from the ConfigMap");
    assert_eq!(reference["name"], cm["metadata"]["name"]);
    assert_eq!(reference["key"], "cluster-id");
    assert!(
        kind("Kustomization").is_empty(),
        "a Kustomization is not a Kubernetes object"
    );
    Chosen {
        cluster_id: cm["data"]["cluster-id"].as_str().unwrap().to_owned(),
        image: container["image"].as_str().unwrap().to_owned(),
        replicas: deployment["spec"]["replicas"].as_u64().unwrap(),
    }
}

/// What the overlay asks for, read from the overlay itself.
fn asked(overlay: &str) -> Chosen {
    let o: Value = serde_yaml::from_str(overlay).unwrap();
    let literal = o["configMapGenerator"][0]["literals"][0].as_str().unwrap();
    let image = &o["images"][0];
    Chosen {
        cluster_id: literal.strip_prefix("cluster-id=").unwrap().to_owned(),
        image: format!(
            "{}:{}",
            image["newName"].as_str().unwrap(),
            image["newTag"].as_str().unwrap()
        ),
        replicas: o["replicas"][0]["count"].as_u64().unwrap(),
    }
}

#[test]
fn the_readme_overlay_sets_cluster_id_image_and_replicas() {
    let overlay = readme_overlay();
    let want = asked(&overlay);
    assert_ne!(
        want.cluster_id, "home",
        "the example must change the default"
    );
    // The overlay's layout: overlays/prod next to the repository's manifests/.
    let root = tempfile::tempdir().unwrap();
    let manifests = root.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    for (name, content) in nsoffload::install::all() {
        let checked_in = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests")
            .join(name);
        assert_eq!(std::fs::read_to_string(checked_in).unwrap(), content);
        std::fs::write(manifests.join(name), content).unwrap();
    }
    let dir = root.path().join("overlays/prod");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("kustomization.yaml"), &overlay).unwrap();

    let out = match Command::new("kubectl").arg("kustomize").arg(&dir).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run kubectl ({e}): this test renders the README's overlay with `kubectl \
             kustomize` (offline); install kubectl and put it on the PATH"
        ),
    };
    assert!(
        out.status.success(),
        "kubectl kustomize failed: {}",
        kit::text(&out.stderr)
    );
    let rendered = documents(&kit::text(&out.stdout));
    assert_eq!(chosen(&rendered), want);
    // Everything of the base is still there, once.
    let base = nsoffload::install::stream(&nsoffload::install::Options::default());
    assert_eq!(rendered.len(), documents(&base).len());
}

#[test]
fn manifests_flags_print_a_set_ready_to_apply() {
    let out = kit::run(&[
        "manifests",
        "--cluster-id",
        "prod-eu-1",
        "--image",
        "registry.example.com/platform/nsoffload:0.1.0",
        "--replicas",
        "3",
    ]);
    assert!(out.status.success(), "{}", kit::text(&out.stderr));
    let printed = kit::text(&out.stdout);
    let docs = documents(&printed);
    assert_eq!(
        chosen(&docs),
        Chosen {
            cluster_id: "prod-eu-1".into(),
            image: "registry.example.com/platform/nsoffload:0.1.0".into(),
            replicas: 3,
        }
    );
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for kind in [
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "Service",
        "PodDisruptionBudget",
        "RuntimeClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // Without flags: the checked-in set, in one stream.
    let out = kit::run(&["manifests"]);
    assert_eq!(
        chosen(&documents(&kit::text(&out.stdout))),
        Chosen {
            cluster_id: "home".into(),
            image: nsoffload::install::IMAGE.into(),
            replicas: 2,
        }
    );
}

#[test]
fn manifests_out_writes_a_configured_kustomization() {
    let dir = tempfile::tempdir().unwrap();
    let out = kit::run(&[
        "manifests",
        "--cluster-id",
        "edge",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", kit::text(&out.stderr));
    let deployment = std::fs::read_to_string(dir.path().join("deployment.yaml")).unwrap();
    let chosen = chosen(&documents(&deployment));
    assert_eq!(chosen.cluster_id, "edge");
    assert_eq!(chosen.replicas, 2);
    let kustomization = std::fs::read_to_string(dir.path().join("kustomization.yaml")).unwrap();
    assert!(
        kustomization.contains("  - deployment.yaml\n"),
        "{kustomization}"
    );
}
