"""Runs the trainer as the supervisor does: a child process with the event channel on a pipe it names in
ARENA_EVENTS_FD."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TRAINER_ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = Path(__file__).resolve().parent / "manifests"
sys.path.insert(0, str(TRAINER_ROOT))

Event = dict[str, Any]


class TrainerProcess:
    def __init__(self, env: dict[str, str], module: str = "arena_agilerl", launcher: list[str] | None = None) -> None:
        """``launcher``: what runs the module instead of a plain ``python -m`` (torchrun's arguments, for example)."""
        read_fd, write_fd = os.pipe()
        full_env = {
            **os.environ,
            **env,
            "ARENA_EVENTS_FD": str(write_fd),
            "PYTHONPATH": os.pathsep.join([str(TRAINER_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, *(launcher or []), "-m", module],
            env=full_env,
            pass_fds=(write_fd,),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.close(write_fd)
        self.events: list[Event] = []
        self.log: list[str] = []
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._read_events, args=(os.fdopen(read_fd, "r", encoding="utf-8"),), daemon=True),
            threading.Thread(target=self._read_log, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_events(self, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()

    def _read_log(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)

    def wait_for(self, pred: Callable[[Event], bool], timeout: float) -> Event:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self._changed.wait(min(left, 0.5))
        for e in self.events:
            if pred(e):
                return e
        raise AssertionError(f"no such event within {timeout}s; events {self.events}; log tail {''.join(self.log[-20:])}")

    def finish(self, timeout: float) -> int:
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e["event"] == kind]


def write_manifest(tmp: Path, name: str, change: Callable[[dict[str, Any]], None] | None = None) -> Path:
    manifest = json.loads((MANIFESTS / name).read_text())
    if change is not None:
        change(manifest)
    path = tmp / f"manifest-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrainerProcess, int, Path]]:
    """One whole tiny DQN run: the stream, checkpoint and resume tests read it."""
    tmp = tmp_path_factory.mktemp("trained")
    t = TrainerProcess(
        {
            "ARENA_MANIFEST": str(MANIFESTS / "dqn-cartpole-tiny.json"),
            "ARENA_CHECKPOINT_DIR": str(tmp / "checkpoints"),
            "ARENA_RUN": "trained",
        }
    )
    rc = t.finish(timeout=240)
    print(f"tiny DQN run: {time.monotonic() - t.started:.1f}s wall, exit {rc}")
    yield t, rc, tmp
