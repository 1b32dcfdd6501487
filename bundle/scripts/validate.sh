#!/usr/bin/env bash
# Checks an installation from this bundle: the operator is ready, the CRDs are established, the training cluster
# is Ready with this bundle's version Current, and its workers are ready. Waits up to TIMEOUT for each check.
#
#   ./validate.sh
#
# Environment: RELEASE_NAME (default arena-operator), NAMESPACE (default arena-system),
#              TIMEOUT per check: seconds, or 90s, 5m, 1h (default 5m).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RELEASE_NAME="${RELEASE_NAME:-arena-operator}"
NAMESPACE="${NAMESPACE:-arena-system}"
TIMEOUT="${TIMEOUT:-5m}"
case "$TIMEOUT" in
  *[0-9]h) TIMEOUT=$(( ${TIMEOUT%h} * 3600 )) ;;
  *[0-9]m) TIMEOUT=$(( ${TIMEOUT%m} * 60 )) ;;
  *[0-9]s) TIMEOUT="${TIMEOUT%s}" ;;
esac
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || { echo "TIMEOUT must be seconds or a duration like 90s, 5m or 1h" >&2; exit 2; }

BUNDLE_VERSION="$(sed -n 's/^ *"bundleVersion": *"\([^"]*\)".*/\1/p' "$here/bundle.json" | head -n1)"
failed=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failed=1; }

# Polls `$@` (a check that prints a reason on stdout and returns non-zero when it does not hold yet) until it holds.
eventually() {
  local deadline=$((SECONDS + TIMEOUT)) out
  while true; do
    if out="$("$@" 2>&1)"; then printf '%s' "$out"; return 0; fi
    if (( SECONDS >= deadline )); then printf '%s' "$out"; return 1; fi
    sleep 3
  done
}

selector="app.kubernetes.io/instance=${RELEASE_NAME},app.kubernetes.io/name=arena-operator"

operator_ready() {
  local line
  line="$(kubectl get deployment -n "$NAMESPACE" -l "${selector},app.kubernetes.io/component=operator" \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.replicas}{" "}{.status.readyReplicas}{"\n"}{end}')"
  [[ -n "$line" ]] || { echo "no operator Deployment of release ${RELEASE_NAME} in ${NAMESPACE}"; return 1; }
  local name want ready
  read -r name want ready <<<"$line"
  ready="${ready:-0}"
  echo "deployment/${name}: ${ready}/${want} replicas ready"
  [[ "$want" -ge 1 && "$ready" == "$want" ]]
}

crds_established() {
  local crd missing=()
  for crd in trainingclusters resourceclasses experiments deployments; do
    local status
    status="$(kubectl get crd "${crd}.arena.agilerl.com" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null || true)"
    [[ "$status" == "True" ]] || missing+=("${crd}.arena.agilerl.com")
  done
  if (( ${#missing[@]} )); then echo "not established: ${missing[*]}"; return 1; fi
  echo "4 CRDs established"
}

cluster_name() {
  kubectl get trainingclusters -l "app.kubernetes.io/instance=${RELEASE_NAME}" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null
}

cluster_ready() {
  local name="$1" jp
  jp='{.spec.setupBundle.version}{"|"}{.status.bundle.installedVersion}{"|"}{.status.bundle.state}{"|"}'
  jp+='{.status.conditions[?(@.type=="Ready")].status}{"|"}{.status.conditions[?(@.type=="Ready")].message}{"|"}'
  jp+='{.status.workers.ready}{"|"}{.status.workers.total}{"|"}{.status.gpus.free}{"|"}{.status.gpus.total}'
  local spec installed state ready message workers total free gpus
  IFS='|' read -r spec installed state ready message workers total free gpus <<<"$(kubectl get trainingcluster "$name" -o jsonpath="$jp")"
  echo "trainingcluster/${name}: bundle ${installed:-?} (${state:-unknown}), Ready=${ready:-Unknown}${message:+ (${message})}, workers ${workers:-0}/${total:-0} ready, GPUs ${free:-0}/${gpus:-0} free"
  [[ "$spec" == "$BUNDLE_VERSION" ]] || { echo "  spec.setupBundle.version is ${spec:-unset}, this bundle is ${BUNDLE_VERSION}: run ./setup.sh"; return 1; }
  [[ "$installed" == "$BUNDLE_VERSION" && "$state" == "Current" ]] || return 1
  [[ "${workers:-0}" -ge 1 ]] || return 1
  [[ "$ready" == "True" ]]
}

echo "Validating release ${RELEASE_NAME} (bundle ${BUNDLE_VERSION}) in namespace ${NAMESPACE}, up to ${TIMEOUT}s per check"

if out="$(eventually operator_ready)"; then pass "$out"; else fail "$out"; fi
if out="$(eventually crds_established)"; then pass "$out"; else fail "$out"; fi

name="$(cluster_name || true)"
if [[ -z "$name" ]]; then
  fail "no TrainingCluster of release ${RELEASE_NAME} (trainingCluster.create=false?)"
elif out="$(eventually cluster_ready "$name")"; then
  pass "$out"
else
  fail "$out"
fi

if (( failed )); then
  echo ""
  echo "Validation failed. kubectl describe trainingcluster ${name:-<name>} and kubectl -n ${NAMESPACE} logs -l ${selector} tell more."
  exit 1
fi
echo ""
echo "All checks passed."
