"""AgileRL, Gymnasium and torch failures as the trainer's own diagnosis (an ``error`` event).

The reasons reuse the names of the runtime's log diagnosis (runtime/diagnosis.ts) where one exists, so a failure
reads the same whether the trainer named it or the supervisor recognised it in the log.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum

import gymnasium.error
import pydantic
import torch

from .datasets import DatasetNotFound, where_datasets_go


class Phase(str, Enum):
    MANIFEST = "reading the manifest"
    BUILD = "building the population"
    RESUME = "loading the checkpoint"
    TRAIN = "training"
    CHECKPOINT = "writing a checkpoint"


@dataclass(frozen=True)
class Diagnosis:
    reason: str
    message: str
    hint: str
    retryable: bool


def _validation_summary(err: pydantic.ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "manifest"
        parts.append(f"{where}: {e['msg']}")
    more = err.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


_HYPERPARAMETER_SECTIONS = {"algorithm", "training", "network", "mutation", "replay_buffer", "tournament_selection"}
# AgileRL's assertion when a recurrent policy gets an encoder_config that is not an LSTM's (networks/base.py).
_NOT_AN_LSTM_CONFIG = "LSTM net config must contain hidden_state_size"
_NCCL_TIMEOUT = re.compile(r"Watchdog caught collective operation timeout|NCCL.*time(d)? ?out|timed out.*NCCL", re.I)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first."""
    out = [exc]
    while out[-1].__cause__ is not None and all(out[-1].__cause__ is not e for e in out):
        out.append(out[-1].__cause__)
    return out


def _root(exc: BaseException) -> BaseException:
    # AgileRL re-raises some failures from a handler; the cause says what went wrong.
    return _chain(exc)[-1]


# AgileRL's words when it cannot load the manifest's reward function (utils/env_utils.py get_rubric_factory).
_RUBRIC_NOT_LOADED = re.compile(r"^Error importing rubric \S+ from |^\S+\.py not found$")


def diagnose(exc: BaseException, phase: Phase) -> Diagnosis:
    root = _root(exc)
    text = f"{type(root).__name__}: {root}"
    rubric = next((e for e in _chain(exc) if isinstance(e, ValueError) and _RUBRIC_NOT_LOADED.search(str(e))), None)
    if rubric is not None:
        # Loaded at the first rollout, after the build: without this it is a crash in training, retried.
        return Diagnosis(
            "RubricNotFound",
            f"environment: AgileRL cannot load the reward function: {rubric}",
            "Point environment.rubric_file_path at a Python file the workers can read (the namespace's _shared folder "
            "of the checkpoint storage) and environment.rubric_name at a function (completion, answer, question) -> "
            "float, or a Rubric, defined in it.",
            False,
        )
    if isinstance(root, torch.cuda.OutOfMemoryError) or "CUDA out of memory" in str(root):
        if phase in (Phase.BUILD, Phase.RESUME):
            return Diagnosis(
                "CudaOutOfMemoryOnStartup",
                f"The GPU ran out of memory while {phase.value}: {root}",
                "Lower training.pop_size or the network size, or pick a resource class with more GPU memory.",
                False,
            )
        return Diagnosis(
            "CudaOutOfMemoryDuringTraining",
            f"The GPU ran out of memory during training: {root}",
            "Lower algorithm.batch_size, training.pop_size, replay_buffer.max_size or the network size.",
            True,
        )
    if _NCCL_TIMEOUT.search(str(root)):
        return Diagnosis(
            "NcclTimeout",
            f"A collective operation timed out: another rank stopped answering ({text})",
            "Look at the other workers' first error; raise NCCL_TIMEOUT when the ranks are merely slow.",
            True,
        )
    if isinstance(root, torch.distributed.DistBackendError) or "NCCL error" in str(root):
        return Diagnosis(
            "NcclSystemError",
            f"NCCL failed: {text}",
            "Set NCCL_DEBUG=INFO to see the cause; check that the workers reach each other and share NCCL versions.",
            True,
        )
    if isinstance(root, gymnasium.error.UnregisteredEnv):
        return Diagnosis(
            "EnvironmentNotFound",
            f"The environment is not registered with Gymnasium: {root}",
            "Check environment.name (e.g. CartPole-v1), or give environment.entrypoint for a custom environment.",
            False,
        )
    if isinstance(root, gymnasium.error.DependencyNotInstalled):
        return Diagnosis(
            "MissingDependency",
            f"The environment needs a package this image lacks: {root}",
            "Use an image with the environment's extra installed (e.g. gymnasium[box2d]), or another environment.",
            False,
        )
    if isinstance(root, ModuleNotFoundError) and phase is Phase.BUILD:
        return Diagnosis(
            "MissingDependency",
            f"A module the run needs is not installed: {root}",
            "Install the module in the trainer image, or fix environment.entrypoint.",
            False,
        )
    if isinstance(root, pydantic.ValidationError):
        sections = {str(e["loc"][0]) for e in root.errors() if e["loc"]}
        reason = "InvalidHyperparameter" if sections and sections <= _HYPERPARAMETER_SECTIONS else "InvalidManifest"
        return Diagnosis(
            reason,
            f"AgileRL refused the manifest: {_validation_summary(root)}",
            "Fix the fields named; `arena manifest validate FILE` gives the platform's verdict.",
            False,
        )
    if isinstance(root, DatasetNotFound):
        return Diagnosis("DatasetNotFound", str(root), where_datasets_go(dict(os.environ)), False)
    if phase is Phase.MANIFEST:
        return Diagnosis(
            "InvalidManifest",
            f"The manifest could not be read: {text}",
            "ARENA_MANIFEST must name a YAML or JSON Arena training manifest.",
            False,
        )
    if phase is Phase.RESUME:
        if isinstance(root, FileNotFoundError):
            return Diagnosis(
                "CheckpointNotFound",
                f"The checkpoint to resume from is missing: {root}",
                "Resume from a checkpoint the run reported, or start the run afresh.",
                False,
            )
        return Diagnosis(
            "CheckpointMismatch",
            f"The checkpoint does not fit this manifest: {text}",
            "Resume with the manifest the checkpoint was trained with (same algorithm and environment).",
            False,
        )
    if phase is Phase.CHECKPOINT and isinstance(root, OSError):
        return Diagnosis(
            "CheckpointWriteFailed",
            f"A checkpoint could not be written: {text}",
            "Check that the checkpoint volume is mounted, writable and has room.",
            True,
        )
    if phase is Phase.BUILD and isinstance(root, AssertionError) and _NOT_AN_LSTM_CONFIG in str(root):
        # AgileRL 2.58.0's validator checks encoder_config against the network.arch the manifest names, and its
        # builder then makes an LSTM for any recurrent policy whatever that arch: the manifest passes
        # `arena manifest validate` and the build fails on a field the manifest never had.
        return Diagnosis(
            "InvalidHyperparameter",
            "network: a recurrent policy (Recurrent PPO, or PPO with algorithm.recurrent: true) is built with an LSTM "
            f"encoder, and network.encoder_config is not an LSTM's (AgileRL: {root})",
            "Set network.arch: lstm (cnn_lstm for image observations) with network.encoder_config.hidden_state_size, "
            "or leave network.arch and encoder_config out for AgileRL's default LSTM; for an mlp encoder, use PPO "
            "with algorithm.recurrent: false.",
            False,
        )
    if phase is Phase.BUILD and isinstance(root, (ValueError, TypeError, AssertionError, KeyError)):
        return Diagnosis(
            "InvalidHyperparameter",
            f"AgileRL could not build the run from the manifest: {text}",
            "Check the algorithm, network and training settings against AgileRL's documentation for the algorithm.",
            False,
        )
    if isinstance(root, AssertionError):
        return Diagnosis(
            "InvalidHyperparameter",
            f"AgileRL's training loop refused a setting: {text}",
            "Check the training section (evo_steps, eps_* as floats, max_steps) against the algorithm.",
            False,
        )
    return Diagnosis(
        "TrainingFailed",
        f"AgileRL failed while {phase.value}: {text}",
        "See the trainer's log for the traceback.",
        False,
    )
