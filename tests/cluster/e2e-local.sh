#!/usr/bin/env bash
# `make e2e-local`: both real-cluster suites against fresh local control planes.
#
# A home cluster (with a kube-scheduler and two fake Ready workers) and two remote clusters
# `r1`, `r2` start on 127.0.0.1 (`localkube.sh`); the webhook suite and the reconciler suite
# run against them (`make e2e`), then the fault tests, which stop and start their API servers
# (`make e2e-faults`); the clusters are stopped however this script ends. Exits
# non-zero on any failure, including a Kubernetes build that cannot run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
L=tests/cluster/localkube.sh
CLUSTERS=(home r1 r2)
t0=$SECONDS

trap 'bash $L down "${CLUSTERS[@]}" || true' EXIT
bash $L build
bash $L down --purge "${CLUSTERS[@]}"
bash $L up "${CLUSTERS[@]}" --scheduler home
bash $L nodes home worker-1 worker-2

NSOFFLOAD_E2E_KUBECONFIG=$(bash $L kubeconfig home)
NSOFFLOAD_E2E_REMOTE_KUBECONFIGS="r1=$(bash $L kubeconfig r1),r2=$(bash $L kubeconfig r2)"
# The fault tests stop and start these clusters' API servers through the script.
NSOFFLOAD_E2E_LOCALKUBE=$PWD/$L
export NSOFFLOAD_E2E_KUBECONFIG NSOFFLOAD_E2E_REMOTE_KUBECONFIGS NSOFFLOAD_E2E_LOCALKUBE
echo "e2e-local: clusters up in $((SECONDS - t0))s; logs in target/cluster/<name>/*.log"
make e2e e2e-faults CARGO="${CARGO:-cargo}"
echo "e2e-local: passed in $((SECONDS - t0))s"
