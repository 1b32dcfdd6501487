#!/usr/bin/env bash
# Re-pins python/requirements.lock from python/requirements.in, with every file's hash, for Linux x86-64 and the
# Python the project runs. uv comes from PyPI into a cache folder outside the repository.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool="${XDG_CACHE_HOME:-$HOME/.cache}/arena-operator/uv-0.13.9"
if [ ! -x "$tool/bin/uv" ]; then
  python3 -m venv "$tool"
  "$tool/bin/pip" install --quiet --disable-pip-version-check uv==0.13.9
fi
cd "$root/python"
"$tool/bin/uv" pip compile requirements.in --generate-hashes --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --no-header --quiet -o requirements.lock
