//! The checked-in manifests are exactly what `nsoffload manifests` generates; run
//! `make manifests` after changing the API types.

#[test]
fn checked_in_crd_is_up_to_date() {
    let path = format!("{}/manifests/crd.yaml", env!("CARGO_MANIFEST_DIR"));
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == nsoffload::api::crd_yaml(),
        "{path} is stale: run `make manifests`"
    );
}

#[test]
fn crd_has_the_contracted_shape() {
    use kube::CustomResourceExt;
    let crd = nsoffload::api::NamespaceOffloading::crd();
    let names = &crd.spec.names;
    assert_eq!(crd.spec.group, "offloading.liqo.io");
    assert_eq!(names.plural, "namespaceoffloadings");
    assert_eq!(
        names.short_names.clone().unwrap(),
        ["nso", "nsof", "nsoff", "nsoffloading"]
    );
    assert_eq!(names.categories.clone().unwrap(), ["liqo"]);
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1beta1");
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<_> = version
        .additional_printer_columns
        .clone()
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.json_path, c.priority))
        .collect();
    assert_eq!(
        columns,
        [
            (
                "NamespaceMappingStrategy".to_owned(),
                ".spec.namespaceMappingStrategy".to_owned(),
                None
            ),
            (
                "PodOffloadingStrategy".to_owned(),
                ".spec.podOffloadingStrategy".to_owned(),
                None
            ),
            (
                "OffloadingPhase".to_owned(),
                ".status.offloadingPhase".to_owned(),
                None
            ),
            (
                "RemoteNamespaceName".to_owned(),
                ".status.remoteNamespaceName".to_owned(),
                Some(1)
            ),
            (
                "Age".to_owned(),
                ".metadata.creationTimestamp".to_owned(),
                None
            ),
        ]
    );
    // Kubernetes 1.19 has no CEL: the schema must not use x-kubernetes-validations.
    assert!(!nsoffload::api::crd_yaml().contains("x-kubernetes-validations"));
}
