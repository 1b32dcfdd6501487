"""AgileRL's per-evolution-step metrics report, turned into progress and metrics events.

AgileRL reports through ``agilerl.logger.Logger`` objects handed to its ``Population``; that is the hook this
module plugs into. The loops build their logger list themselves (``init_loggers``) and take no extra loggers, so
the one place this trainer reaches into AgileRL is to extend that list for the duration of one ``train()`` call.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agilerl.logger import Logger

from .events import EventWriter

if TYPE_CHECKING:
    from agilerl.population import MetricsReport


def scalar(value: float | dict[str, float]) -> float | None:
    """A population figure as one number: multi-agent runs report one per sub-agent, and their sum is the team's."""
    total = sum(value.values()) if isinstance(value, dict) else value
    return float(total) if math.isfinite(total) else None


@dataclass
class Round:
    """What AgileRL reported after one evolution step."""

    step: int
    training_score: float | None
    evaluation_score: float | None
    fitnesses: list[float | None]


class ArenaLogger(Logger):
    def __init__(
        self,
        events: EventWriter,
        *,
        max_steps: int | None,
        start_step: int,
        after_round: Callable[[Round], None],
    ) -> None:
        self._events = events
        self._max_steps = max_steps
        self._after_round = after_round
        self._last_step = start_step
        self._last_time = time.monotonic()
        self.last_round: Round | None = None

    def write(self, report: MetricsReport) -> None:
        m = report.metrics
        # AgileRL's max_steps bounds each member's own steps, so progress is counted the same way.
        step = max(m.steps) if m.steps else self._last_step
        now = time.monotonic()
        elapsed = now - self._last_time
        rate = (step - self._last_step) / elapsed if elapsed > 0 and step > self._last_step else None
        self._last_step, self._last_time = step, now

        fitnesses: list[float | None] = [scalar(f) for f in m.fitnesses]
        rnd = Round(
            step=step,
            training_score=scalar(m.mean_score) if m.scores else None,
            evaluation_score=scalar(m.best_fitness) if m.fitnesses else None,
            fitnesses=fitnesses,
        )
        self.last_round = rnd
        self._events.progress(
            step,
            max_steps=self._max_steps,
            training_score=rnd.training_score,
            evaluation_score=rnd.evaluation_score,
            steps_per_second=rate,
        )
        # Per-member figures would make the line grow with the population; the means and bests are kept.
        values = {
            k: float(v)
            for k, v in report.to_dict().items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "/agent_" not in k
        }
        self._events.metrics(step, values)
        print(
            f"arena-agilerl: step {step}"
            + (f"/{self._max_steps}" if self._max_steps else "")
            + (f", evaluation {rnd.evaluation_score:.1f}" if rnd.evaluation_score is not None else "")
            + (f", training {rnd.training_score:.1f}" if rnd.training_score is not None else "")
            + (f", {rate:.0f} steps/s" if rate is not None else ""),
            flush=True,
        )
        self._after_round(rnd)

    def close(self) -> None:
        pass


def loop_module(train_fn: Callable[..., Any]) -> Any:
    module = sys.modules.get(getattr(train_fn, "__module__", ""))
    if module is None or not callable(getattr(module, "init_loggers", None)):
        raise RuntimeError(
            f"AgileRL's training loop {getattr(train_fn, '__qualname__', train_fn)!r} builds no logger list "
            "(init_loggers) this trainer can report through"
        )
    return module


@contextmanager
def reporting_to(train_fn: Callable[..., Any], logger: Logger) -> Iterator[None]:
    module = loop_module(train_fn)
    original = module.init_loggers

    def with_arena_logger(*args: Any, **kwargs: Any) -> list[Logger]:
        return [*original(*args, **kwargs), logger]

    module.init_loggers = with_arena_logger
    try:
        yield
    finally:
        module.init_loggers = original


@contextmanager
def every_step_off_rank_0(hook: Callable[[], None]) -> Iterator[None]:
    """Calls ``hook`` after each learning step on the ranks other than 0 of a torch.distributed run.

    AgileRL's LLM loops report (and so reach the logger above) on rank 0 only; the other ranks clear their metrics
    at that same point of each step instead (``Population.clear_agent_metrics``), which is where this hooks in, so
    that decisions made with collectives (a checkpoint, a stop) are made by every rank at the same step."""
    from agilerl.distributed import is_main_process
    from agilerl.population import Population

    original = Population.clear_agent_metrics

    def clear_then_hook(self: Population[Any]) -> None:
        original(self)
        if not is_main_process():
            hook()

    Population.clear_agent_metrics = clear_then_hook  # type: ignore[method-assign]
    try:
        yield
    finally:
        Population.clear_agent_metrics = original  # type: ignore[method-assign]
