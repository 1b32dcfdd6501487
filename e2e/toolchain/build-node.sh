#!/usr/bin/env bash
# Builds and installs what the real node (e2e/realnode/) runs: kubelet and kube-proxy (the same Kubernetes module
# as the control plane), runc and CoreDNS from the Go module proxy, the pause binary from the Kubernetes module's
# own build/pause/linux/pause.c, and busybox from Debian's busybox-static for the test images. containerd, the CNI
# plugins and libseccomp (runc's seccomp filter) come from Debian and are apt-get installed when missing.
#
# Everything built lands in a cache folder of its own, keyed by the node components' versions and the Go
# toolchain, next to (never inside) the control plane's folder: bumping one never rebuilds the other.
#
# Prints the binary folder on its last line of stdout. Progress and per-component timings go to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# shellcheck source=lib.sh
. "$here/lib.sh"
K8S=$(modver k8s k8s.io/kubernetes)
RUNC=$(modver runc github.com/opencontainers/runc)
COREDNS=$(modver coredns github.com/coredns/coredns)
GOV=$(go env GOVERSION)
key="node-k8s-${K8S}_runc-${RUNC}_coredns-${COREDNS}_${GOV}"
root=$(cache_root)
out="$root/bin/$key"

log() { printf '[node-toolchain %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
timed() {
  local what=$1 t0
  shift
  t0=$(date +%s)
  "$@"
  log "$what built in $(( $(date +%s) - t0 ))s"
}

# Debian packages the node needs on the host. Only installed when missing, so a warm machine never touches apt.
debs=(containerd containernetworking-plugins libseccomp-dev pkg-config gcc libc6-dev)
ensure_debs() {
  local missing=() p
  for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}; run as root, or: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
ensure_debs

if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out"
start=$(date +%s)
export GOFLAGS="-mod=mod -buildvcs=false"

ldf=$(k8s_ldflags "$K8S")

# CGO off, as for the control plane: the build cache the control plane left is then reused for every shared
# package, and neither binary needs cgo here (no systemd journal, cgroupfs driver).
build_kubelet() {
  (cd "$here/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldf" -o "$out/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
}
# runc's seccomp support is cgo over libseccomp; without it containerd's RuntimeDefault profile cannot be applied.
# Its version comes from the VERSION file it embeds (an -X on that variable would blank it).
build_runc() {
  (cd "$here/runc" && CGO_ENABLED=1 go build -trimpath -tags seccomp \
    -ldflags "-s -w" -o "$out/runc" github.com/opencontainers/runc)
}
build_coredns() {
  (cd "$here/coredns" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${COREDNS}" -o "$out/coredns" .)
}
# The sandbox ("pause") container's only process: static, so its image needs nothing else.
build_pause() {
  local src
  src="$(cd "$here/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  gcc -Os -Wall -Werror -static -DVERSION="$K8S" -o "$out/pause" "$src"
}
# busybox for the test images, from Debian's archive (the .deb is unpacked, never installed on the host).
build_busybox() {
  local tmp
  tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || chmod 777 "$tmp" # apt-get download fetches as the _apt user
  (cd "$tmp" && apt-get download -qq busybox-static >&2 && dpkg-deb -x busybox-static_*.deb root)
  cp "$tmp/root/bin/busybox" "$out/busybox"
  rm -rf "$tmp"
}

only="${1:-all}"
case "$only" in
  all) parts="kubelet runc coredns pause busybox" ;;
  *) parts="${only//,/ }" ;;
esac
for part in $parts; do timed "$part" "build_$part"; done
[ "$only" = all ] || { echo "$out"; exit 0; }

"$out/kubelet" --version | grep -q "Kubernetes $K8S" || { log "kubelet reports the wrong version"; exit 1; }
"$out/runc" --version | grep -q "runc version ${RUNC#v}" || { log "runc reports the wrong version"; exit 1; }
"$out/runc" features | tr -d ' \n' | grep -q '"seccomp":{"enabled":true' || { log "runc was built without seccomp"; exit 1; }
"$out/coredns" -plugins | grep -qx "kubernetes" || { log "coredns lacks the kubernetes plugin"; exit 1; }
touch "$out/.complete"
log "done in $(( $(date +%s) - start ))s -> $out"
echo "$out"
