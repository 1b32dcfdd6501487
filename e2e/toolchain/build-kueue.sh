#!/usr/bin/env bash
# Builds Kueue (sigs.k8s.io/kueue, the controller manager) from the Go module proxy through the wrapper module
# beside this script, into a cache folder outside the repository keyed by its version and the Go toolchain, and
# copies its CustomResourceDefinitions out of the downloaded module next to it (crds/). Only the side-by-side
# benchmark (make bench-compare) needs it, so make setup does not build it. A warm cache skips the build.
#
# Prints the folder on its last line of stdout. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# shellcheck source=lib.sh
. "$here/lib.sh"
KUEUE=$(modver kueue sigs.k8s.io/kueue)
GOV=$(go env GOVERSION)
out="$(cache_root)/bin/kueue-${KUEUE}_${GOV}"
log() { printf '[toolchain %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi

export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
start=$(date +%s)
mkdir -p "$out/crds"
log "building kueue $KUEUE"
(cd "$here/kueue" && go build -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE" -o "$out/kueue.$$" sigs.k8s.io/kueue/cmd/kueue)
mv -f "$out/kueue.$$" "$out/kueue"
# The CRDs ship in the module itself (config/components/crd/bases); the module cache holds it after the build.
src=$(cd "$here/kueue" && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)
cp -f "$src"/config/components/crd/bases/*.yaml "$out/crds/"
chmod u+w "$out"/crds/*.yaml
touch "$out/.complete"
log "done in $(( $(date +%s) - start ))s -> $out"
echo "$out"
