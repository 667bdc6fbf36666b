#!/usr/bin/env bash
# `make bench-scale`: the reconciler's scale benchmark (benches/scale.rs) on fresh local
# control planes: case `many` on one cluster, then case `remotes` on a home cluster and three
# remote clusters. Every cluster is stopped when the run ends, however it ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
L=tests/cluster/localkube.sh
CLUSTERS=(scale-home scale-r1 scale-r2 scale-r3)
LOGS=target/tmp/nsoffload-scale
mkdir -p "$LOGS"
trap 'bash $L down "${CLUSTERS[@]}" || true' EXIT
bash $L build
cargo bench --bench scale --no-run
export CARGO_TERM_COLOR=never
# No serviceaccount controller: in a cluster that has had its namespaces for a while, their
# `default` ServiceAccounts exist. Here the namespaces are created seconds before the
# measurements, and that controller (one worker) would create them at about 20 a second for
# the next eight minutes, through every figure of the run (the floors' included).
export NSOFFLOAD_KCM_CONTROLLERS=namespace,garbagecollector,replicaset,deployment

echo "== case many (NSOFFLOAD_SCALE_N, default 10000)"
bash $L down --purge "${CLUSTERS[@]}"
bash $L up scale-home
NSOFFLOAD_SCALE_CASE=many NSOFFLOAD_SCALE_HOME=$(bash $L kubeconfig scale-home) \
  NSOFFLOAD_SCALE_LOG=$LOGS/many-server.log cargo bench --bench scale

echo "== case remotes (NSOFFLOAD_SCALE_N, default 1000; three remote clusters)"
bash $L down --purge "${CLUSTERS[@]}"
bash $L up "${CLUSTERS[@]}"
remotes="r1=$(bash $L kubeconfig scale-r1),r2=$(bash $L kubeconfig scale-r2),r3=$(bash $L kubeconfig scale-r3)"
NSOFFLOAD_SCALE_CASE=remotes NSOFFLOAD_SCALE_HOME=$(bash $L kubeconfig scale-home) \
  NSOFFLOAD_SCALE_REMOTES=$remotes NSOFFLOAD_SCALE_LOG=$LOGS/remotes-server.log \
  NSOFFLOAD_SCALE_N=${NSOFFLOAD_SCALE_REMOTES_N:-1000} cargo bench --bench scale
