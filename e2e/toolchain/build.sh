#!/usr/bin/env bash
# Builds the control-plane binaries (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd,
# kwok, helm, helm3) from the Go module proxy through the wrapper modules beside this script, into a cache folder
# outside the repository keyed by every pinned version and the Go toolchain. A warm cache skips the build.
# helm3 (Helm 3, which the chart also supports) is built into a folder of its own, keyed by its version and the Go
# toolchain, and linked into the main folder: adding it to a cache built before it existed costs only its build,
# never a rebuild of Kubernetes.
#
# Prints the binary folder on its last line of stdout. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# shellcheck source=lib.sh
. "$here/lib.sh"
K8S=$(modver k8s k8s.io/kubernetes)
ETCD=$(modver etcd go.etcd.io/etcd/server/v3)
KWOK=$(modver kwok sigs.k8s.io/kwok)
HELM=$(modver helm helm.sh/helm/v4)
HELM3=$(modver helm3 helm.sh/helm/v3)
GOV=$(go env GOVERSION)
key="k8s-${K8S}_etcd-${ETCD}_kwok-${KWOK}_helm-${HELM}_${GOV}"
root=$(cache_root)
out="$root/bin/$key"
helm3_out="$root/bin/helm3-${HELM3}_${GOV}"

export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
log() { printf '[toolchain %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
start=$(date +%s)

# Helm 3 takes the Kubernetes version it renders for (.Capabilities.KubeVersion, and what `helm template` and
# `helm lint` check a chart's kubeVersion against) from link-time variables that default to 1.20; its own release
# build derives them from the client-go it links, and so does this.
helm3_ldflags() {
  local cg major minor
  cg=$(modver helm3 k8s.io/client-go)
  cg=${cg#v}
  major=$(( ${cg%%.*} + 1 ))
  minor=${cg#*.}
  minor=${minor%%.*}
  printf '%s' "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM3"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    printf ' %s' "-X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
  done
}
build_helm3() {
  if [ ! -x "$helm3_out/helm3" ]; then
    log "building helm3 $HELM3"
    mkdir -p "$helm3_out"
    (cd "$here/helm3" && go build -trimpath -ldflags "$(helm3_ldflags)" -o "$helm3_out/helm3.$$" helm.sh/helm/v3/cmd/helm)
    [ "$("$helm3_out/helm3.$$" version --template '{{.Version}}')" = "$HELM3" ] || { log "helm3 reports the wrong version"; exit 1; }
    mv -f "$helm3_out/helm3.$$" "$helm3_out/helm3"
  fi
  # A hard link shares the bytes; another filesystem takes a copy. Temporary names of this process, renamed into
  # place, so that two builds at once and the readers of the folder never see half a file.
  mkdir -p "$out"
  ln -f "$helm3_out/helm3" "$out/helm3.$$" 2>/dev/null || cp -f "$helm3_out/helm3" "$out/helm3.$$"
  mv -f "$out/helm3.$$" "$out/helm3"
}

if [ -f "$out/.complete" ]; then
  # A folder completed before helm3 was part of the toolchain gets it added, and nothing else rebuilt.
  if [ ! -x "$out/helm3" ]; then
    build_helm3
    log "helm3 added in $(( $(date +%s) - start ))s -> $out"
  fi
  echo "$out"
  exit 0
fi

mkdir -p "$out"

ldf=$(k8s_ldflags "$K8S")

build_k8s() {
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $K8S"
  (cd "$here/k8s" && go build -trimpath -ldflags "$ldf" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
}
build_etcd() {
  log "building etcd $ETCD"
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}
build_kwok() {
  log "building kwok $KWOK"
  (cd "$here/kwok" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK#v}" \
    -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok)
}
build_helm() {
  log "building helm $HELM"
  (cd "$here/helm" && go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM" -o "$out/helm" helm.sh/helm/v4/cmd/helm)
}

only="${1:-all}"
case "$only" in
  all) build_k8s; build_etcd; build_kwok; build_helm; build_helm3 ;;
  *) for part in ${only//,/ }; do "build_$part"; done; echo "$out"; exit 0 ;;
esac

"$out/kube-apiserver" --version | grep -q "Kubernetes $K8S" || { log "kube-apiserver reports the wrong version"; exit 1; }
"$out/etcd" --version >&2
touch "$out/.complete"
log "done in $(( $(date +%s) - start ))s -> $out"
echo "$out"
