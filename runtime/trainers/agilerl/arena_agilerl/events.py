"""The trainer's side of the event channel (runtime/PROTOCOL.md): one JSON object per line on ARENA_EVENTS_FD."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from typing import IO, Any

# The supervisor refuses longer lines; metrics are the only events that can grow with the population.
MAX_LINE_BYTES = 64 * 1024


def _finite(value: Any) -> Any:
    # JSON has no NaN or Infinity: a score that is not known yet is left out rather than sent as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class EventWriter:
    """Writes events, flushed line by line, to the channel or (run by hand) to stdout."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        # A stop request arrives on a signal while the training thread may be mid-write.
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> EventWriter:
        env = dict(os.environ) if env is None else env
        fd = env.get("ARENA_EVENTS_FD")
        if fd is None:
            return cls(sys.stdout)
        try:
            return cls(os.fdopen(int(fd), "w", buffering=1, encoding="utf-8", closefd=False))
        except OSError:
            if not env.get("TORCHELASTIC_RUN_ID"):
                raise
        # torchrun starts its workers with every descriptor but stdio closed, so a worker does not inherit the
        # channel; its launcher, the parent, still holds it, and Linux opens that pipe again through /proc.
        return cls(open(f"/proc/{os.getppid()}/fd/{int(fd)}", "w", buffering=1, encoding="utf-8"))

    def emit(self, event: str, **fields: Any) -> None:
        body = {k: _finite(v) for k, v in fields.items()}
        line = json.dumps({"event": event, **{k: v for k, v in body.items() if v is not None}}, separators=(",", ":"))
        if len(line.encode()) >= MAX_LINE_BYTES:
            if event != "metrics":
                raise ValueError(f"{event} event is {len(line)} characters, over the channel's line limit")
            return
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def progress(
        self,
        step: int,
        *,
        max_steps: int | None = None,
        training_score: float | None = None,
        evaluation_score: float | None = None,
        steps_per_second: float | None = None,
    ) -> None:
        self.emit(
            "progress",
            step=step,
            max_steps=max_steps,
            training_score=training_score,
            evaluation_score=evaluation_score,
            steps_per_second=steps_per_second,
        )

    def metrics(self, step: int, values: dict[str, float]) -> None:
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        self.emit("metrics", step=step, values=finite)

    def checkpoint(
        self,
        step: int,
        path: str,
        *,
        size_bytes: int,
        training_score: float | None = None,
        evaluation_score: float | None = None,
        final: bool = False,
    ) -> None:
        self.emit(
            "checkpoint",
            step=step,
            path=path,
            size_bytes=size_bytes,
            training_score=training_score,
            evaluation_score=evaluation_score,
            final=True if final else None,
        )

    def finished(self, step: int) -> None:
        self.emit("finished", step=step)

    def error(self, message: str, *, reason: str, hint: str | None = None, retryable: bool = False) -> None:
        # A traceback-sized message would be cut at the channel's limit and lose the reason with it.
        self.emit("error", message=message[:4000], reason=reason, hint=hint, retryable=retryable)


class ErrorsOnly(EventWriter):
    """The channel of a trainer process that does not speak for its pod (torchrun's local ranks above 0): its
    errors still reach the supervisor, while its progress, metrics, checkpoints and finish, the same as local rank
    0's, would only repeat them."""

    def emit(self, event: str, **fields: Any) -> None:
        if event == "error":
            super().emit(event, **fields)
