#!/usr/bin/env bash
# Installs the Debian packages `make images` needs when a command is missing: mmdebstrap (the base root file system
# from Debian's packages), skopeo (checks each OCI archive it writes and converts one for `docker load`), zstd and
# GNU tar. They come from the machine's configured apt sources, by name; Debian 12 has all of them.
set -euo pipefail
declare -A package_of=([mmdebstrap]=mmdebstrap [skopeo]=skopeo [zstd]=zstd [tar]=tar [gzip]=gzip [unshare]=util-linux)
missing=()
for cmd in "${!package_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-image-tools: missing ${missing[*]}; install them with your package manager (Debian: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "ensure-image-tools: installing ${missing[*]} from the configured apt sources" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
