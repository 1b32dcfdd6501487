"""One training run: the manifest built into an AgileRL LocalTrainer, its reports and checkpoints on the event
channel, and a final checkpoint when asked to stop."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from tempfile import gettempdir
from typing import Any

import torch
from agilerl.algorithms import DQN
from agilerl.builders.base import apply_checkpoint
from agilerl.models import TrainingManifest
from agilerl.models.env import BanditEnvSpec
from agilerl.training.trainer import LocalTrainer

from .checkpoints import ResumePoint, WrittenCheckpoint, read_resume_point, write_population_checkpoint
from .datasets import check_dataset_files
from .errors import Phase, diagnose
from .events import EventWriter
from .reporting import ArenaLogger, Round, reporting_to, scalar
from .stop import StopFlag, StopRequested, stop_on_request
from .upstream import bandit_eval_steps, reattach_bandit_exploration_layer

# Where AgileRL is loading a checkpoint: a failure there is the checkpoint's, not the manifest's.
_RESUME_FRAMES = {"apply_checkpoint", "_resume_and_warn_on_drift", "load_checkpoint", "load_weights"}


def _phase_of(exc: BaseException, default: Phase) -> Phase:
    if default is Phase.BUILD:
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if frame.f_code.co_name in _RESUME_FRAMES:
                return Phase.RESUME
    return default


def pick_device(env: Mapping[str, str]) -> str:
    wanted = env.get("ARENA_DEVICE")
    if wanted:
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


def limit_cpu_threads(env: Mapping[str, str], device: str) -> None:
    # Classic-RL networks are too small for intra-op parallelism to pay, and torch's OpenMP threads spin against
    # the vectorised environments' processes on a shared node: on 2 busy cores a DQN CartPole run was up to 40x slower
    # with torch's default thread count than with one thread (see README).
    if device != "cpu" or env.get("OMP_NUM_THREADS"):
        return
    torch.set_num_threads(max(1, int(env.get("ARENA_TORCH_THREADS", "1"))))


def _resume_population(trainer: LocalTrainer, resume: ResumePoint) -> None:
    """Gives each member its own saved state; AgileRL's resume has already loaded member 0's into all of them."""
    for i, agent in enumerate(trainer.population):
        if i > 0 and len(resume.files) > 1:
            apply_checkpoint(agent, str(resume.files[i % len(resume.files)]), None, index=i)


def _continue_exploration(trainer: LocalTrainer, step: int) -> None:
    """Carries DQN's epsilon on from the checkpoint's step instead of restarting at eps_start.

    AgileRL's off-policy loop decays epsilon once per vectorised step and carries it across evolution steps, but
    keeps it in a local variable that no checkpoint holds; this is the value it would have reached.
    """
    if step <= 0 or not all(isinstance(a, DQN) for a in trainer.population):
        return
    spec = trainer.training_spec
    start = spec.eps_start if spec.eps_start is not None else 1.0
    end = spec.eps_end if spec.eps_end is not None else 0.01
    decay = spec.eps_decay if spec.eps_decay is not None else 0.999
    num_envs = max(1, int(getattr(trainer.env, "num_envs", 1)))
    spec.eps_start = float(max(end, start * decay ** (step / num_envs)))


def _labels(trainer: LocalTrainer) -> tuple[str, str]:
    algorithm = str(getattr(trainer.algorithm_spec, "name", type(trainer.algorithm_spec).__name__))
    environment = str(getattr(trainer.env_spec, "name", "") or type(trainer.env_spec).__name__)
    return algorithm, environment


def _latest_fitnesses(agents: list[Any]) -> list[float | None]:
    return [scalar(a.fitness[-1]) if a.fitness else None for a in agents]


class Run:
    def __init__(self, env: Mapping[str, str], events: EventWriter, flag: StopFlag) -> None:
        self.env = env
        self.events = events
        self.flag = flag
        self.phase = Phase.MANIFEST
        self.trainer: LocalTrainer | None = None
        self.run_dir = Path(env.get("ARENA_CHECKPOINT_DIR") or Path(gettempdir()) / "arena-checkpoints") / (
            f"run-{env.get('ARENA_RUN') or '0'}"
        )
        self.last_checkpoint: WrittenCheckpoint | None = None
        self.checkpoint_steps: int | None = None
        self.checkpoints_taken = 0

    def build(self) -> None:
        manifest_path = self.env.get("ARENA_MANIFEST")
        if not manifest_path:
            raise FileNotFoundError("ARENA_MANIFEST is not set")
        manifest = TrainingManifest.get_validated(manifest_path, mode="python")
        check_dataset_files(manifest.environment)
        resume: ResumePoint | None = None
        if self.env.get("ARENA_RESUME_FROM"):
            self.phase = Phase.RESUME
            resume = read_resume_point(self.env["ARENA_RESUME_FROM"])
        self.phase = Phase.BUILD
        device = pick_device(self.env)
        limit_cpu_threads(self.env, device)
        trainer = LocalTrainer.from_manifest(
            manifest,
            device=device,
            resume_from_checkpoint=str(resume.files[0]) if resume else None,
        )
        self.trainer = trainer
        if isinstance(trainer.env_spec, BanditEnvSpec):
            trainer.training_spec.eval_steps = bandit_eval_steps(trainer.train_fn, trainer.training_spec.eval_steps)
        if resume is not None:
            self.phase = Phase.RESUME
            _resume_population(trainer, resume)
            reattach_bandit_exploration_layer(trainer.population)
            _continue_exploration(trainer, self.step())
            print(f"arena-agilerl: resumed {len(trainer.population)} agents from {resume.source} at step {self.step()}")
            expected = self.env.get("ARENA_RESUME_STEP")
            # The agents' own step counts win: they are what AgileRL's max_steps is checked against.
            if expected and expected.isdigit() and int(expected) != self.step():
                print(f"arena-agilerl: ARENA_RESUME_STEP is {expected}, the checkpoint's agents are at {self.step()}")
        if trainer.env is not None:
            trainer.env = stop_on_request(trainer.env, self.flag)
        self.checkpoint_steps = trainer.training_spec.checkpoint_steps
        if self.checkpoint_steps:
            self.checkpoints_taken = self.step() // self.checkpoint_steps
        algorithm, environment = _labels(trainer)
        print(
            f"arena-agilerl: {algorithm} on {environment}, population {len(trainer.population)}, "
            f"max_steps {trainer.training_spec.max_steps}, device {device}, torch threads {torch.get_num_threads()}",
            flush=True,
        )

    def step(self) -> int:
        assert self.trainer is not None
        return max((int(a.steps) for a in self.trainer.population), default=0)

    def checkpoint(self, *, step: int, rnd: Round | None, final: bool) -> WrittenCheckpoint:
        assert self.trainer is not None
        agents = list(self.trainer.population)
        algorithm, environment = _labels(self.trainer)
        fitnesses = rnd.fitnesses if rnd is not None and not final else _latest_fitnesses(agents)
        evaluation = max((f for f in fitnesses if f is not None), default=None)
        training = rnd.training_score if rnd is not None else None
        previous = self.phase
        self.phase = Phase.CHECKPOINT
        written = write_population_checkpoint(
            self.run_dir,
            agents,
            step=step,
            algorithm=algorithm,
            environment=environment,
            fitnesses=fitnesses,
            training_score=training,
            evaluation_score=evaluation,
            final=final,
        )
        self.phase = previous
        self.events.checkpoint(
            written.step,
            str(written.path),
            size_bytes=written.size_bytes,
            training_score=training,
            evaluation_score=evaluation,
            final=final,
        )
        self.last_checkpoint = written
        return written

    def after_round(self, rnd: Round) -> None:
        due = (
            rnd.step // self.checkpoint_steps > self.checkpoints_taken
            if self.checkpoint_steps
            else self.last_checkpoint is None or rnd.step > self.last_checkpoint.step
        )
        if due:
            self.checkpoint(step=rnd.step, rnd=rnd, final=False)
            if self.checkpoint_steps:
                self.checkpoints_taken = rnd.step // self.checkpoint_steps
        self.flag.raise_if_requested()

    def train(self) -> int:
        assert self.trainer is not None
        self.flag.raise_if_requested()
        self.phase = Phase.TRAIN
        max_steps = self.trainer.training_spec.max_steps
        logger = ArenaLogger(self.events, max_steps=max_steps, start_step=self.step(), after_round=self.after_round)
        self.logger = logger
        with reporting_to(self.trainer.train_fn, logger):
            # AgileRL would write its own checkpoints next to the working directory; this trainer writes them.
            self.trainer.train(verbose=False, checkpoint_steps=None, checkpoint_path=None)
        step = self.step()
        if self.last_checkpoint is None or self.last_checkpoint.step != step:
            self.checkpoint(step=step, rnd=logger.last_round, final=False)
        self.events.finished(step)
        return step


def main(flag: StopFlag, env: Mapping[str, str] | None = None, events: EventWriter | None = None) -> int:
    env = dict(os.environ) if env is None else env
    events = events or EventWriter.from_env(dict(env))
    run = Run(env, events, flag)
    try:
        try:
            run.build()
            step = run.train()
            print(f"arena-agilerl: finished at step {step}", flush=True)
            return 0
        except StopRequested:
            if run.trainer is None:
                raise
            run.phase = Phase.CHECKPOINT
            step = run.step()
            last = getattr(run, "logger", None)
            written = run.checkpoint(step=step, rnd=last.last_round if last else None, final=True)
            waited = ""
            if flag.requested_at is not None:
                waited = f" {time.monotonic() - flag.requested_at:.2f}s after {flag.signal_name}"
            print(f"arena-agilerl: stopped at step {step}; final checkpoint {written.path}{waited}", flush=True)
            return 0
        finally:
            if run.trainer is not None:
                run.trainer.close()
    except StopRequested:
        # Asked to stop before there was a population to save: nothing to checkpoint, nothing failed.
        print("arena-agilerl: stopped before training started", flush=True)
        return 0
    except Exception as exc:  # noqa: BLE001 - every failure becomes the trainer's own diagnosis
        traceback.print_exc()
        d = diagnose(exc, _phase_of(exc, run.phase))
        events.error(d.message, reason=d.reason, hint=d.hint, retryable=d.retryable)
        return 1
