# Shared by build.sh and build-node.sh (sourced, with $here set to this folder).

# A module's version in a wrapper go.mod, in a require block or on a one-line require: the versions live in the
# wrapper go.mod files, so there is one place to bump.
modver() { awk -v m="$2" '$1==m {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$here/$1/go.mod"; }

# Where built binaries are kept, outside the repository.
cache_root() { printf '%s' "${ARENA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/arena-operator}"; }

# Link flags that stamp a Kubernetes binary's version the way Kubernetes' own build does, so /version, kubectl
# and the kubelet's Node status report it.
k8s_ldflags() {
  local v=$1 maj min built p ldf="-s -w"
  maj=${v#v}; maj=${maj%%.*}
  min=${v#v*.}; min=${min%%.*}
  built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=$v -X $p.gitMajor=$maj -X $p.gitMinor=$min -X $p.gitTreeState=clean -X $p.buildDate=$built"
  done
  printf '%s' "$ldf"
}
