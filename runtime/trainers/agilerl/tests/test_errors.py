"""Failures come out as an error event with a reason, a hint and whether a retry can help."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from arena_agilerl.errors import Phase, diagnose
from arena_agilerl.events import EventWriter
from arena_agilerl.run import main
from arena_agilerl.stop import StopFlag
from conftest import MANIFESTS, TrainerProcess, write_manifest


def run_in_process(env: dict[str, str]) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    rc = main(StopFlag(), env, EventWriter(out))
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def test_missing_environment_over_the_channel(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "dqn-cartpole-tiny.json", lambda m: m["environment"].update(name="NoSuchEnv-v0"))
    t = TrainerProcess({"ARENA_MANIFEST": str(manifest), "ARENA_CHECKPOINT_DIR": str(tmp_path)})
    assert t.finish(timeout=120) == 1
    [error] = t.of("error")
    assert error["reason"] == "EnvironmentNotFound"
    assert "NoSuchEnv" in error["message"]
    assert error["retryable"] is False
    assert error["hint"]
    assert not t.of("progress")


@pytest.mark.parametrize(
    ("change", "reason", "mentions"),
    [
        (lambda m: m["algorithm"].update(lr=-1), "InvalidHyperparameter", "algorithm.lr"),
        (lambda m: m["training"].update(evo_steps=0), "InvalidHyperparameter", "training.evo_steps"),
        (lambda m: m["algorithm"].update(name="NoSuchAlgorithm"), "InvalidManifest", "algorithm"),
    ],
)
def test_refused_settings(tmp_path: Path, change: object, reason: str, mentions: str) -> None:
    manifest = write_manifest(tmp_path, "dqn-cartpole-tiny.json", change)  # type: ignore[arg-type]
    rc, events = run_in_process({"ARENA_MANIFEST": str(manifest), "ARENA_CHECKPOINT_DIR": str(tmp_path)})
    assert rc == 1
    [error] = [e for e in events if e["event"] == "error"]
    assert error["reason"] == reason, error
    assert mentions in str(error["message"])


def test_unreadable_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("algorithm: {name: DQN\n  environment: [")
    for path in (broken, tmp_path / "absent.yaml"):
        rc, events = run_in_process({"ARENA_MANIFEST": str(path), "ARENA_CHECKPOINT_DIR": str(tmp_path)})
        assert rc == 1
        assert [e["reason"] for e in events if e["event"] == "error"] == ["InvalidManifest"]


def test_resume_from_a_missing_checkpoint(tmp_path: Path) -> None:
    rc, events = run_in_process(
        {
            "ARENA_MANIFEST": str(MANIFESTS / "dqn-cartpole-tiny.json"),
            "ARENA_CHECKPOINT_DIR": str(tmp_path),
            "ARENA_RESUME_FROM": str(tmp_path / "run-0" / "step-99"),
        }
    )
    assert rc == 1
    assert [e["reason"] for e in events if e["event"] == "error"] == ["CheckpointNotFound"]


def test_resume_from_another_algorithms_checkpoint(trained: tuple[TrainerProcess, int, Path], tmp_path: Path) -> None:
    source, _, _ = trained
    folder = source.of("checkpoint")[0]["path"]
    ppo = write_manifest(tmp_path, "ppo-cartpole-tiny.json")
    rc, events = run_in_process({"ARENA_MANIFEST": str(ppo), "ARENA_CHECKPOINT_DIR": str(tmp_path), "ARENA_RESUME_FROM": folder})
    assert rc == 1
    assert [e["reason"] for e in events if e["event"] == "error"] == ["CheckpointMismatch"]


@pytest.mark.parametrize(
    "algorithm",
    [{"name": "Recurrent PPO"}, {"name": "PPO", "recurrent": True}],
    ids=["Recurrent PPO", "PPO recurrent"],
)
def test_a_recurrent_policy_with_an_mlp_encoder_names_the_network(tmp_path: Path, algorithm: dict[str, object]) -> None:
    def change(m: dict[str, Any]) -> None:
        m["algorithm"].update(algorithm)
        m["network"].update(arch="mlp", encoder_config={"hidden_size": [16]})

    manifest = write_manifest(tmp_path, "recurrent-ppo-cartpole-tiny.json", change)
    rc, events = run_in_process({"ARENA_MANIFEST": str(manifest), "ARENA_CHECKPOINT_DIR": str(tmp_path)})
    assert rc == 1
    [error] = [e for e in events if e["event"] == "error"]
    assert error["reason"] == "InvalidHyperparameter"
    assert str(error["message"]).startswith("network: a recurrent policy"), error
    assert "LSTM net config must contain hidden_state_size" in str(error["message"]), "AgileRL's own words are kept"
    assert "network.arch: lstm" in str(error["hint"]) and "hidden_state_size" in str(error["hint"])
    assert not [e for e in events if e["event"] == "checkpoint"]


def test_cuda_and_nccl_failures_are_named() -> None:
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert diagnose(oom, Phase.TRAIN).reason == "CudaOutOfMemoryDuringTraining"
    assert diagnose(oom, Phase.TRAIN).retryable is True
    assert diagnose(oom, Phase.BUILD).reason == "CudaOutOfMemoryOnStartup"
    timeout = torch.distributed.DistBackendError(
        "[Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=12, OpType=ALLREDUCE) ran for 600000 ms"
    )
    assert diagnose(timeout, Phase.TRAIN).reason == "NcclTimeout"
    assert diagnose(timeout, Phase.TRAIN).retryable is True
    wrapped = RuntimeError("training step failed")
    wrapped.__cause__ = torch.distributed.DistBackendError("NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error")
    assert diagnose(wrapped, Phase.TRAIN).reason == "NcclSystemError"


@pytest.mark.parametrize(
    ("name", "exists", "mentions"),
    [("no_such_reward", True, "has no attribute 'no_such_reward'"), ("exact_sum", False, "not found")],
    ids=["a name the file lacks", "a file that is not there"],
)
def test_a_reward_function_that_cannot_be_loaded_names_the_environment_fields(
    tmp_path: Path, name: str, exists: bool, mentions: str
) -> None:
    """AgileRL loads a rollout's reward function at the first rollout; its failure is the manifest's, not a crash."""
    from agilerl.utils.env_utils import get_rubric_factory

    rubric = tmp_path / "rubric.py"
    if exists:
        rubric.write_text("def exact_sum(completion, answer, question):\n    return 0.0\n")
    with pytest.raises(ValueError) as raised:
        get_rubric_factory(name, str(rubric))
    d = diagnose(raised.value, Phase.TRAIN)
    assert (d.reason, d.retryable) == ("RubricNotFound", False), d
    assert d.message.startswith("environment: ") and mentions in d.message, d.message
    assert "environment.rubric_file_path" in d.hint and "environment.rubric_name" in d.hint
