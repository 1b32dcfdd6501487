#!/usr/bin/env bash
# Makes the project's Python environment at .venv: the interpreter the machine has (3.10 to 3.13, as the platform's
# packages require) and exactly the packages in python/requirements.lock, checked against their hashes. pip keeps
# its download cache in ~/.cache/pip, outside the repository, so a warm machine installs without downloading.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$root/python/requirements.lock"
venv="$root/.venv"
want="$(sha256sum "$lock" | cut -c1-16)"
stamp="$venv/.installed-$want"
[ -f "$stamp" ] && exit 0

python=""
for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null; then
    python="$(command -v "$candidate")"
    break
  fi
done
if [ -z "$python" ]; then
  echo "ensure-python: need Python 3.10 to 3.13 (the platform's agilerl-arena supports those); found none on PATH" >&2
  exit 1
fi

rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$lock"
"$venv/bin/python" -m pip check >&2
echo "python environment: $("$venv/bin/python" --version) with $(grep -c '^[a-zA-Z]' "$lock") locked packages" >&2
touch "$stamp"
