#!/usr/bin/env bash
# Installs or upgrades the Arena operator from this setup bundle into the cluster of the current kubectl context.
#
#   ./setup.sh [extra helm flags, e.g. -f my-values.yaml --set trainingCluster.workerNodeSelector.pool=gpu]
#
# Environment:
#   RELEASE_NAME  Helm release (default arena-operator)
#   NAMESPACE     namespace of the operator (default arena-system)
#   REGISTRY      mirror registry for an air-gapped cluster; every image is pulled from it (global.imageRegistry)
#   TIMEOUT       how long Helm waits for the operator to be ready: seconds, or 90s, 10m, 1h (default 10m)
#   SKIP_PREFLIGHT=1  skip the checks below (not recommended)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RELEASE_NAME="${RELEASE_NAME:-arena-operator}"
NAMESPACE="${NAMESPACE:-arena-system}"
TIMEOUT="${TIMEOUT:-10m}"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && TIMEOUT="${TIMEOUT}s"
[[ "$TIMEOUT" =~ ^[0-9]+[smh]$ ]] || { echo "ERROR: TIMEOUT must be seconds or a duration like 90s, 10m or 1h, got ${TIMEOUT}" >&2; exit 2; }

say() { printf '%s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

bundle_field() { sed -n "s/^ *\"$1\": *\"\([^\"]*\)\".*/\1/p" "$here/bundle.json" | head -n1; }
BUNDLE_VERSION="$(bundle_field bundleVersion)"
CHART_VERSION="$(bundle_field chartVersion)"
chart="$here/chart/arena-operator-${CHART_VERSION}.tgz"
[[ -n "$BUNDLE_VERSION" && -f "$chart" ]] || die "this bundle is incomplete: bundle.json or $chart is missing"

say "Arena setup bundle ${BUNDLE_VERSION}: release ${RELEASE_NAME} in namespace ${NAMESPACE}"

preflight() {
  command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH; install it (https://kubernetes.io/docs/tasks/tools/)"
  command -v helm >/dev/null 2>&1 || die "helm is not on PATH; install Helm 3.8 or newer (https://helm.sh/docs/intro/install/)"
  local helm_version
  helm_version="$(helm version --template '{{.Version}}' 2>/dev/null || true)"
  [[ "$helm_version" =~ ^v[34]\. ]] || die "Helm 3 or 4 is required, found ${helm_version:-an unknown version}"

  local context
  context="$(kubectl config current-context 2>/dev/null || true)"
  [[ -n "$context" ]] || die "kubectl has no current context; point KUBECONFIG at the cluster to install into"
  kubectl version --request-timeout=15s >/dev/null 2>&1 ||
    die "the cluster of context \"${context}\" does not answer: $(kubectl version --request-timeout=15s 2>&1 | tail -n1)"
  say "  context ${context}: reachable; helm ${helm_version}"

  # GPU nodes: what the device plugin advertises as allocatable nvidia.com/gpu.
  local gpu_nodes=0 gpus=0 n
  while read -r _ n; do
    if [[ "${n:-}" =~ ^[0-9]+$ ]] && (( n > 0 )); then gpu_nodes=$((gpu_nodes + 1)); gpus=$((gpus + n)); fi
  done < <(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.allocatable.nvidia\.com/gpu}{"\n"}{end}')
  if (( gpu_nodes == 0 )); then
    warn "no node has allocatable nvidia.com/gpu: GPU experiments will wait in Pending until GPU nodes with the NVIDIA device plugin join"
  else
    say "  GPU nodes: ${gpu_nodes} with ${gpus} GPUs allocatable"
  fi

  if ! kubectl get daemonsets --all-namespaces -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null |
    grep -qi 'nvidia-device-plugin'; then
    warn "the NVIDIA device plugin DaemonSet was not found (install it or the NVIDIA GPU Operator); without it nodes advertise no GPUs"
  fi
  if ! kubectl get runtimeclass nvidia >/dev/null 2>&1; then
    warn "RuntimeClass nvidia does not exist: GPU worker pods name it and will be refused until it does (the NVIDIA GPU Operator creates it)"
  fi
}

if [[ "${SKIP_PREFLIGHT:-}" == "1" ]]; then
  warn "preflight checks skipped (SKIP_PREFLIGHT=1)"
else
  preflight
fi

extra=()
if [[ -n "${REGISTRY:-}" ]]; then
  say "  pulling every image from ${REGISTRY}"
  extra+=(--set "global.imageRegistry=${REGISTRY}")
fi

say "Installing (helm upgrade --install, waiting up to ${TIMEOUT} for the operator)..."
helm upgrade --install "$RELEASE_NAME" "$chart" \
  --namespace "$NAMESPACE" --create-namespace \
  --values "$here/values.yaml" \
  ${extra[@]+"${extra[@]}"} \
  --wait --timeout "$TIMEOUT" \
  "$@"

say ""
say "Installed. Next: ./validate.sh checks the operator, the CRDs, the training cluster and its workers."
