"""Stopping on SIGTERM at a point where the population is consistent.

AgileRL's loops have no stop hook, and a signal handler that raised wherever Python happened to be could leave an
agent halfway through an optimizer step. The loops call the environment between learning steps, so the request is
turned into an exception there, and the population saved afterwards is one AgileRL itself could have saved.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

import gymnasium as gym


class StopRequested(BaseException):
    """Unwinds AgileRL's training loop. A BaseException, so an ``except Exception`` inside the loop cannot eat it."""


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.requested_at: float | None = None
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, name: str) -> None:
        if not self._event.is_set():
            self.requested_at = time.monotonic()
            self.signal_name = name
            self._event.set()

    def raise_if_requested(self) -> None:
        if self._event.is_set():
            raise StopRequested(self.signal_name or "stop")

    def install(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


class StopOnRequest(gym.vector.VectorWrapper):
    """Raises StopRequested at the next reset or step once a stop was asked for."""

    def __init__(self, env: gym.vector.VectorEnv, flag: StopFlag) -> None:
        super().__init__(env)
        self._flag = flag

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._flag.raise_if_requested()
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        self._flag.raise_if_requested()
        return self.env.step(actions)
