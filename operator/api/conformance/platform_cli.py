"""The reference verdicts: the Arena platform's own CLI, ``arena manifest validate FILE --json``, on every file.

Each file is run through the platform's click command in this one process (click's CliRunner) rather than one
``arena`` process per file, which would cost a second each. ``--base-url`` points at a closed loopback port so that
nothing could leave this machine even if a command tried the network; ``manifest validate`` does not.

Usage: platform_cli.py FILE...   prints one JSON object per line: {"file", "exit_code", "ok", "errors"}.
"""

from __future__ import annotations

import json
import sys

from agilerl.arena.cli import main as arena
from click.testing import CliRunner


def reference(path: str) -> dict[str, object]:
    result = CliRunner().invoke(arena, ["--base-url", "http://127.0.0.1:9", "manifest", "validate", path, "--json"])
    verdict: dict[str, object] = {}
    if result.exit_code == 0 and result.stdout.strip():
        verdict = json.loads(result.stdout)
    return {"file": path, "exit_code": result.exit_code, "ok": verdict.get("ok"), "errors": verdict.get("errors", [])}


def main() -> None:
    for path in sys.argv[1:]:
        sys.stdout.write(json.dumps(reference(path)) + "\n")


if __name__ == "__main__":
    main()
