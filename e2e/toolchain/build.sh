#!/usr/bin/env bash
# Builds the control-plane binaries (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd,
# kwok, helm) from the Go module proxy through the wrapper modules beside this script, into a cache folder
# outside the repository keyed by every pinned version and the Go toolchain. A warm cache skips the build.
#
# Prints the binary folder on its last line of stdout. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The versions live in the wrapper go.mod files; read them from there so there is one place to bump.
modver() { awk -v m="$2" '$1==m {print $2; exit}' "$here/$1/go.mod"; }
K8S=$(modver k8s k8s.io/kubernetes)
ETCD=$(modver etcd go.etcd.io/etcd/server/v3)
KWOK=$(modver kwok sigs.k8s.io/kwok)
HELM=$(modver helm helm.sh/helm/v4)
GOV=$(go env GOVERSION)
key="k8s-${K8S}_etcd-${ETCD}_kwok-${KWOK}_helm-${HELM}_${GOV}"
root="${ARENA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/arena-operator}"
out="$root/bin/$key"

if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
log() { printf '[toolchain %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
start=$(date +%s)

# kube binaries: stamp the version the way Kubernetes' own build does, so /version and kubectl report it.
maj=${K8S#v}; maj=${maj%%.*}
min=${K8S#v*.}; min=${min%%.*}
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldf="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldf="$ldf -X $p.gitVersion=$K8S -X $p.gitMajor=$maj -X $p.gitMinor=$min -X $p.gitTreeState=clean -X $p.buildDate=$built"
done

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
  all) build_k8s; build_etcd; build_kwok; build_helm ;;
  *) for part in ${only//,/ }; do "build_$part"; done; echo "$out"; exit 0 ;;
esac

"$out/kube-apiserver" --version | grep -q "Kubernetes $K8S" || { log "kube-apiserver reports the wrong version"; exit 1; }
"$out/etcd" --version >&2
touch "$out/.complete"
log "done in $(( $(date +%s) - start ))s -> $out"
echo "$out"
