#!/usr/bin/env bash
# Local Kubernetes control planes on 127.0.0.1 for the real-cluster test suites.
#
# Why: the webhooks, the reconciler and the CLI talk to a real kube-apiserver in production;
# only a real one shows what it does with a patch, a watch, a denial or a namespace deletion.
# Kubernetes cannot be installed as a binary here, but it builds from Debian's source package
# (`../shared/control-plane/build-kube.sh`); this script owns everything after the build:
# certificates, etcd, kube-apiserver, kube-scheduler, kube-controller-manager, fake nodes, and
# stopping all of it by pid.
#
# Usage:
#   tests/cluster/localkube.sh build                      build or reuse the binaries
#   tests/cluster/localkube.sh up NAME... [--scheduler NAME]...
#                                                         start clusters (reused when healthy)
#   tests/cluster/localkube.sh nodes NAME NODE...         fake Ready nodes in cluster NAME:
#                                                         `worker-1` a local worker,
#                                                         `virtual:r1` a virtual node of r1
#   tests/cluster/localkube.sh kubeconfig NAME            prints the admin kubeconfig's path
#   tests/cluster/localkube.sh stop NAME                  stops one cluster's API server only
#   tests/cluster/localkube.sh start NAME                 starts it again (same etcd, same data)
#   tests/cluster/localkube.sh down [--purge] [NAME...]   stops clusters (all when none named)
#   tests/cluster/localkube.sh status
#
# Environment:
#   NSOFFLOAD_CLUSTER_DIR  state and logs (default: <repo>/target/cluster)
#   NSOFFLOAD_KUBE_DIR     the built binaries, shared by clones (default: ~/.cache/nsoffload/kube)
#   NSOFFLOAD_KUBE_BUILD   the build script (default: <repo>/../shared/control-plane/build-kube.sh)
#   NSOFFLOAD_KCM_CONTROLLERS  the controller manager's controllers for clusters started now
#                          (default: namespace,serviceaccount,garbagecollector,replicaset,deployment)
#
# Every wait has a deadline and says what it waited for; every process started is recorded in
# a pid file and stopped by that pid only.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${NSOFFLOAD_CLUSTER_DIR:-$REPO/target/cluster}
KUBE_DIR=${NSOFFLOAD_KUBE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nsoffload/kube}
BUILD=${NSOFFLOAD_KUBE_BUILD:-$REPO/../shared/control-plane/build-kube.sh}
BIN=$KUBE_DIR/bin

log() { echo "[localkube $(date +%T)] $*" >&2; }
die() { echo "localkube: $*" >&2; exit 1; }

# Waits until `$2...` succeeds, at most $1 seconds; `what` names it in the failure.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { echo "localkube: gave up after ${secs}s waiting for $what" >&2; return 1; }
    sleep 0.3
  done
}

# ------------------------------------------------------------------------------- build
have_binaries() {
  [[ -x $BIN/kube-apiserver && -x $BIN/kube-scheduler && -x $BIN/kube-controller-manager ]] &&
    command -v etcd >/dev/null && command -v openssl >/dev/null && command -v curl >/dev/null
}

cmd_build() {
  need_tools
  if have_binaries; then
    log "reusing $BIN ($("$BIN/kube-apiserver" --version 2>&1))"
    return
  fi
  [[ -f $BUILD ]] || die "cannot build Kubernetes: the build script $BUILD is missing (set NSOFFLOAD_KUBE_BUILD)"
  log "building Kubernetes into $KUBE_DIR (a few minutes from a cold cache)"
  if ! KUBE_OUT=$KUBE_DIR bash "$BUILD" >&2; then
    die "cannot build Kubernetes (the Debian source package or Go is not available?); the real-cluster suites cannot run"
  fi
  have_binaries || die "the build finished but $BIN lacks kube-apiserver/kube-scheduler/kube-controller-manager or etcd is missing"
}

need_tools() {
  local missing=()
  for t in openssl curl python3 kubectl; do command -v $t >/dev/null || missing+=("$t"); done
  (( ${#missing[@]} == 0 )) && return
  if [[ " ${missing[*]} " == *" kubectl "* ]]; then
    die "kubectl is needed (version 1.24 or later, for --subresource)"
  fi
  command -v apt-get >/dev/null || die "missing: ${missing[*]}"
  log "apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ------------------------------------------------------------------------------- clusters
dir_of() { echo "$STATE/$1"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# alive FILE: the pid in FILE runs and is the program recorded beside it.
alive() {
  local pidfile=$1 pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -d /proc/$pid ]] || return 1
  grep -qa -- "$(<"$pidfile.cmd")" "/proc/$pid/cmdline" 2>/dev/null
}

# spawn NAME COMPONENT PROGRAM ARGS...: starts one process, records its pid and log.
spawn() {
  local d; d=$(dir_of "$1"); local comp=$2; shift 2
  local prog=$1
  "$@" >"$d/$comp.log" 2>&1 &
  echo $! >"$d/$comp.pid"
  basename "$prog" >"$d/$comp.pid.cmd"
}

# stop_pids PIDFILE...: SIGTERM to all at once, then each gets $GRACE s (default 15) before
# SIGKILL.
stop_pids() {
  local pidfile pid
  for pidfile in "$@"; do
    if alive "$pidfile"; then kill -TERM "$(<"$pidfile")" 2>/dev/null || true; else rm -f "$pidfile"; fi
  done
  for pidfile in "$@"; do
    [[ -f $pidfile ]] || continue
    pid=$(<"$pidfile")
    local deadline=$((SECONDS + ${GRACE:-15}))
    while [[ -d /proc/$pid ]] && (( SECONDS < deadline )); do sleep 0.1; done
    if [[ -d /proc/$pid ]]; then
      log "pid $pid ($(<"$pidfile.cmd")) still running ${GRACE:-15}s after SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

make_pki() {
  local d=$1 name=$2 p=$1/pki
  [[ -f $p/admin.crt ]] && return
  mkdir -p "$p"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$p/ca.key" -out "$p/ca.crt" -days 365 \
    -subj "/CN=localkube-$name-ca" 2>/dev/null
  openssl req "${ec[@]}" -keyout "$p/apiserver.key" -out "$p/apiserver.csr" \
    -subj "/CN=kube-apiserver" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >"$p/apiserver.ext"
  openssl x509 -req -in "$p/apiserver.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 365 -extfile "$p/apiserver.ext" -out "$p/apiserver.crt" 2>/dev/null
  openssl req "${ec[@]}" -keyout "$p/admin.key" -out "$p/admin.csr" \
    -subj "/O=system:masters/CN=localkube-admin" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$p/admin.ext"
  openssl x509 -req -in "$p/admin.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 365 -extfile "$p/admin.ext" -out "$p/admin.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
}

# A self-contained kubeconfig (certificates inline): the reconciler gets it in a Secret.
write_kubeconfig() {
  local d=$1 name=$2 port=$3 p=$1/pki
  b64() { base64 -w0 <"$1"; }
  cat >"$d/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $name
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(b64 "$p/ca.crt")
users:
- name: $name-admin
  user:
    client-certificate-data: $(b64 "$p/admin.crt")
    client-key-data: $(b64 "$p/admin.key")
contexts:
- name: $name
  context: {cluster: $name, user: $name-admin}
current-context: $name
EOF
}

api_ready() {
  local d=$1 p=$1/pki port
  port=$(sed -n 's/^API=//p' "$d/ports")
  [[ $(curl -s --max-time 2 --cacert "$p/ca.crt" --cert "$p/admin.crt" --key "$p/admin.key" \
    "https://127.0.0.1:$port/readyz") == ok ]]
}

start_apiserver() {
  local name=$1 d; d=$(dir_of "$1"); local p=$d/pki
  # shellcheck disable=SC1091
  source "$d/ports"
  spawn "$name" apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API" --insecure-port=0 \
    --cert-dir="$p" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" --authorization-mode=RBAC \
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
    --disable-admission-plugins=ServiceAccount --allow-privileged=true --profiling=false
  wait_for "the API server of $name (https://127.0.0.1:$API/readyz; log $d/apiserver.log)" 90 api_ready "$d"
}

cmd_start() {
  local name=$1 d; d=$(dir_of "$1")
  [[ -f $d/ports ]] || die "no cluster $name (run up first)"
  alive "$d/apiserver.pid" || start_apiserver "$name"
}

# An outage, not a maintenance: the API server's clients keep their watches open, and it would
# wait for them; 2 s, then it is killed.
cmd_stop() {
  local d; d=$(dir_of "$1")
  GRACE=2 stop_pids "$d/apiserver.pid"
  log "$1: API server stopped"
}

up_one() {
  local name=$1 scheduler=$2 d; d=$(dir_of "$1")
  [[ $name =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "cluster name $name is not a DNS-1123 label"
  mkdir -p "$d"
  if [[ -f $d/ports ]] && alive "$d/etcd.pid" && alive "$d/apiserver.pid" && api_ready "$d"; then
    log "$name: already up ($d/admin.kubeconfig)"
  else
    stop_all "$name"
    make_pki "$d" "$name"
    [[ -f $d/ports ]] || {
      echo "ETCD=$(free_port)"; echo "PEER=$(free_port)"; echo "API=$(free_port)"
      echo "SCHED=$(free_port)"; echo "KCM=$(free_port)"
    } >"$d/ports"
    # shellcheck disable=SC1091
    source "$d/ports"
    write_kubeconfig "$d" "$name" "$API"
    spawn "$name" etcd etcd --name "$name" --data-dir "$d/etcd-data" \
      --listen-client-urls "http://127.0.0.1:$ETCD" --advertise-client-urls "http://127.0.0.1:$ETCD" \
      --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
      --initial-cluster "$name=http://127.0.0.1:$PEER" --quota-backend-bytes=4294967296
    wait_for "etcd of $name (http://127.0.0.1:$ETCD/health; log $d/etcd.log)" 30 \
      curl -sf --max-time 2 "http://127.0.0.1:$ETCD/health"
    start_apiserver "$name"
    log "$name: API server https://127.0.0.1:$API up"
  fi
  # shellcheck disable=SC1091
  source "$d/ports"
  local kc=$d/admin.kubeconfig p=$d/pki
  # The namespace controller finishes namespace deletion, the serviceaccount controller makes
  # the `default` ServiceAccounts (their admission plugin is off: no tokens are needed), the
  # garbage collector and the ReplicaSet/Deployment controllers make workloads behave as
  # users expect.
  alive "$d/kcm.pid" || spawn "$name" kcm "$BIN/kube-controller-manager" --kubeconfig="$kc" \
    --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --controllers="${NSOFFLOAD_KCM_CONTROLLERS:-namespace,serviceaccount,garbagecollector,replicaset,deployment}" \
    --leader-elect=false --port=0 --bind-address=127.0.0.1 --secure-port="$KCM" \
    --use-service-account-credentials=false --service-account-private-key-file="$p/sa.key" \
    --root-ca-file="$p/ca.crt" --cert-dir="$p/kcm"
  if [[ $scheduler == 1 ]] && ! alive "$d/scheduler.pid"; then
    spawn "$name" scheduler "$BIN/kube-scheduler" --kubeconfig="$kc" \
      --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
      --leader-elect=false --port=0 --bind-address=127.0.0.1 --secure-port="$SCHED" \
      --cert-dir="$p/scheduler"
  fi
  wait_for "the namespace 'default' in $name" 30 kubectl --kubeconfig "$kc" get namespace default
}

cmd_up() {
  local names=() scheds=" "
  while (( $# )); do
    case $1 in
      --scheduler) scheds+="$2 "; shift ;;
      *) names+=("$1") ;;
    esac
    shift
  done
  (( ${#names[@]} )) || die "up: name at least one cluster"
  have_binaries || cmd_build
  for n in "${names[@]}"; do
    up_one "$n" "$([[ $scheds == *" $n "* ]] && echo 1 || echo 0)"
  done
}

# ------------------------------------------------------------------------------- nodes
node_ready() {
  local kc=$1 node=$2
  [[ $(kubectl --kubeconfig "$kc" get node "$node" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}|{.spec.taints}') == "True|$3" ]]
}

cmd_nodes() {
  local name=$1; shift
  local kc; kc=$(dir_of "$name")/admin.kubeconfig
  [[ -f $kc ]] || die "no cluster $name (run up first)"
  local spec node labels taints want now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for spec in "$@"; do
    if [[ $spec == virtual:* ]]; then
      node="liqo-${spec#virtual:}"
      labels="{\"kubernetes.io/hostname\":\"$node\",\"liqo.io/type\":\"virtual-node\",\"liqo.io/remote-cluster-id\":\"${spec#virtual:}\",\"localkube.nsoffload.io/fake\":\"true\"}"
      taints='[{"key":"virtual-node.liqo.io/not-allowed","value":"true","effect":"NoExecute"}]'
      want='[{"effect":"NoExecute","key":"virtual-node.liqo.io/not-allowed","value":"true"}]'
    else
      node=$spec
      labels="{\"kubernetes.io/hostname\":\"$node\",\"localkube.nsoffload.io/fake\":\"true\"}"
      taints='null'
      want=''
    fi
    kubectl --kubeconfig "$kc" get node "$node" >/dev/null 2>&1 ||
      echo "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$node\",\"labels\":$labels}}" |
      kubectl --kubeconfig "$kc" create -f - >/dev/null
    # There is no kubelet: the node is made Ready with room for pods through nodes/status, and
    # the not-ready taint that admission adds at creation is replaced by the node's own taints.
    kubectl --kubeconfig "$kc" patch node "$node" --type=merge -p "{\"spec\":{\"taints\":$taints}}" >/dev/null
    kubectl --kubeconfig "$kc" patch node "$node" --subresource=status --type=merge -p "{\"status\":{
      \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"fake node of localkube\",\"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}],
      \"capacity\":{\"cpu\":\"64\",\"memory\":\"256Gi\",\"pods\":\"1000\"},
      \"allocatable\":{\"cpu\":\"64\",\"memory\":\"256Gi\",\"pods\":\"1000\"}}}" >/dev/null
    wait_for "node $node Ready in $name" 20 node_ready "$kc" "$node" "$want"
  done
  log "$name: nodes $*"
}

# ------------------------------------------------------------------------------- down
stop_all() {
  local d; d=$(dir_of "$1")
  stop_pids "$d"/{scheduler,kcm,apiserver,etcd}.pid
}

cmd_down() {
  local purge=0 names=()
  while (( $# )); do
    case $1 in --purge) purge=1 ;; *) names+=("$1") ;; esac
    shift
  done
  if (( ${#names[@]} == 0 )) && [[ -d $STATE ]]; then
    for d in "$STATE"/*/; do [[ -f $d/ports ]] && names+=("$(basename "$d")"); done
    true
  fi
  local pidfiles=() n
  for n in "${names[@]}"; do pidfiles+=("$(dir_of "$n")"/{scheduler,kcm,apiserver,etcd}.pid); done
  (( ${#pidfiles[@]} )) && stop_pids "${pidfiles[@]}"
  for n in "${names[@]}"; do
    # Fresh state next time; the logs stay for reading.
    if (( purge )); then rm -rf "$(dir_of "$n")"/{etcd-data,pki,ports,admin.kubeconfig}; fi
    log "$n: down"
  done
}

cmd_status() {
  [[ -d $STATE ]] || { echo "no clusters"; return; }
  for d in "$STATE"/*/; do
    d=${d%/}
    [[ -f $d/ports ]] || continue
    local line="" comp
    for comp in etcd apiserver kcm scheduler; do
      alive "$d/$comp.pid" && line+=" $comp" || true
    done
    echo "$(basename "$d"):${line:- stopped} ($d/admin.kubeconfig)"
  done
}

case ${1:-} in
  build) cmd_build ;;
  up) shift; cmd_up "$@" ;;
  nodes) shift; (( $# >= 2 )) || die "nodes NAME NODE..."; cmd_nodes "$@" ;;
  kubeconfig) [[ -f $(dir_of "${2:?name}")/admin.kubeconfig ]] || die "no cluster $2"; echo "$(dir_of "$2")/admin.kubeconfig" ;;
  start) cmd_start "${2:?name}" ;;
  stop) cmd_stop "${2:?name}" ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  *) sed -n '2,30p' "$0"; exit 2 ;;
esac
