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


def stop_on_request(env: Any, flag: StopFlag) -> Any:
    """The run's environment, raising StopRequested at its next reset or step once a stop was asked for.

    Gymnasium vector envs get the ``StopOnRequest`` wrapper. AgileRL's PettingZoo vector envs and its bandit env
    cannot be wrapped from outside: the multi-agent loops wrap any env that is not a ``PettingZooVecEnv`` in a
    dummy vector env, and ``BanditEnv`` has no wrapper type. For those the instance's own ``reset`` and ``step``
    are shadowed by guarded ones, so the object keeps its class and AgileRL's type checks see the same env.
    """
    if isinstance(env, gym.vector.VectorEnv):
        return StopOnRequest(env, flag)
    for name in ("reset", "step"):
        original = getattr(env, name, None)
        if callable(original):
            setattr(env, name, _guarded(original, flag))
    return env


def _guarded(method: Any, flag: StopFlag) -> Any:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        flag.raise_if_requested()
        return method(*args, **kwargs)

    return guarded
