#!/usr/bin/env bash
# Re-pins python/requirements.lock (the project's environment and the runtime image) from requirements.in, and
# python/platform.lock (the operator image: the platform's validator alone) from platform.in within the same
# versions, each with every file's hash, for Linux x86-64 and the Python the project runs. uv comes from PyPI into a
# cache folder outside the repository.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool="${XDG_CACHE_HOME:-$HOME/.cache}/arena-operator/uv-0.13.9"
if [ ! -x "$tool/bin/uv" ]; then
  python3 -m venv "$tool"
  "$tool/bin/pip" install --quiet --disable-pip-version-check uv==0.13.9
fi
cd "$root/python"
compile() { "$tool/bin/uv" pip compile "$@" --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --quiet; }
compile requirements.in -o requirements.lock
compile platform.in --constraint requirements.lock -o platform.lock
