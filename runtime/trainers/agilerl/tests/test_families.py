"""Multi-agent (MADDPG on MPE), contextual bandits (NeuralUCB) and offline RL (CQN on a dataset made here), each
trained by AgileRL's manifest trainer in a trainer process, stopped by SIGTERM with a final checkpoint, resumed from
it, and served: the server's answer must be what AgileRL's own get_action computes for the checkpoint."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agilerl import algorithms
from arena_agilerl.serve import BadRequest, Model, load_agent, pick_member
from arena_agilerl.upstream import reattach_bandit_exploration_layer
from conftest import TrainerProcess, write_manifest
from make_datasets import bandit_tables, cartpole_rollout


def _stop_then_resume(
    tmp: Path, manifest: Path, more_steps: int, resumed_manifest: Path | None = None
) -> tuple[dict[str, Any], TrainerProcess]:
    """A long run stopped by SIGTERM after its first checkpoint, then a run resumed from the final checkpoint."""
    long_run = TrainerProcess({"ARENA_MANIFEST": str(manifest), "ARENA_CHECKPOINT_DIR": str(tmp), "ARENA_RUN": "long"})
    first = long_run.wait_for(lambda e: e["event"] == "checkpoint", timeout=240)
    long_run.proc.send_signal(signal.SIGTERM)
    assert long_run.finish(timeout=60) == 0, "".join(long_run.log[-30:])
    final = long_run.of("checkpoint")[-1]
    assert final.get("final") is True, long_run.events
    assert final["step"] >= first["step"]
    assert not long_run.of("finished")
    meta = json.loads((Path(final["path"]) / "arena-checkpoint.json").read_text())
    assert meta["final"] is True and len(meta["agents"]) == 2

    def longer(m: dict[str, Any]) -> None:
        m["training"]["max_steps"] = final["step"] + more_steps

    again = write_manifest(tmp, str(resumed_manifest or manifest), longer)
    resumed = TrainerProcess(
        {
            "ARENA_MANIFEST": str(again),
            "ARENA_CHECKPOINT_DIR": str(tmp),
            "ARENA_RUN": "resumed",
            "ARENA_RESUME_FROM": final["path"],
            "ARENA_RESUME_STEP": str(final["step"]),
        }
    )
    assert resumed.finish(timeout=240) == 0, "".join(resumed.log[-30:])
    steps = [c["step"] for c in resumed.of("checkpoint")]
    assert steps and all(s > final["step"] for s in steps), f"resumed past {final['step']}: {steps}"
    assert resumed.events[-1] == {"event": "finished", "step": final["step"] + more_steps}
    assert any(f"resumed 2 agents from {final['path']} at step {final['step']}" in line for line in resumed.log)
    return final, resumed


def _served(folder: Path) -> tuple[Model, Any]:
    """The server's model and, loaded separately, the same member as AgileRL itself loads it."""
    file, meta = pick_member(folder)
    model = Model(load_agent(file, "cpu"), file, meta)
    reference = getattr(algorithms, meta["algorithm"]).load(str(file), device="cpu")
    reference.set_training_mode(False)
    return model, reference


def test_maddpg_on_mpe_trains_stops_resumes_and_serves_each_agent(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "maddpg-spread-tiny.json", lambda m: m["training"].update(max_steps=100_000))
    _, resumed = _stop_then_resume(tmp_path, manifest, 200, resumed_manifest=Path("maddpg-spread-tiny.json"))
    progress = resumed.of("progress")
    assert progress and all(isinstance(p["training_score"], float) for p in progress), "team scores are reported"

    model, reference = _served(Path(resumed.of("checkpoint")[-1]["path"]))
    info = model.info()
    assert info["multi_agent"] is True and info["agent_ids"] == ["agent_0", "agent_1", "agent_2"]
    spaces = info["observation_space"]["spaces"]
    rng = np.random.default_rng(1)
    obs = {a: rng.normal(size=(16, *spaces[a]["shape"])).astype(np.float32) for a in info["agent_ids"]}
    served = model.get_action({"n": 16, "obs": obs})["action"]
    expected = reference.get_action(obs)[0]
    assert sorted(served) == sorted(expected)
    for agent in info["agent_ids"]:
        assert served[agent].shape == (16, 5)
        np.testing.assert_array_equal(served[agent], expected[agent])
    with pytest.raises(BadRequest, match="expected the keys"):
        model.get_action({"n": 16, "obs": {"agent_0": obs["agent_0"]}})
    with pytest.raises(BadRequest) as bad:
        model.get_action({"n": 16, "obs": {**obs, "agent_1": obs["agent_1"][:, :3]}})
    assert bad.value.field == "obs.agent_1"


def test_neural_ucb_trains_stops_resumes_and_serves_each_context(tmp_path: Path) -> None:
    features, targets = bandit_tables(tmp_path / "data")

    def tables(m: dict[str, Any]) -> None:
        m["environment"].update(features=str(features), targets=str(targets))

    base = write_manifest(tmp_path, "neuralucb-tiny.json", tables)
    # Without eval_steps in the manifest: AgileRL 2.58.0's loop would fail on its None (upstream.bandit_eval_steps).
    assert "eval_steps" not in json.loads(base.read_text())["training"]
    long_manifest = write_manifest(tmp_path, str(base), lambda m: m["training"].update(max_steps=100_000))
    # The resume loads NeuralUCB checkpoints, which AgileRL 2.58.0 leaves unable to act without the work-around.
    _, resumed = _stop_then_resume(tmp_path, long_manifest, 100, resumed_manifest=base)

    model, reference = _served(Path(resumed.of("checkpoint")[-1]["path"]))
    reattach_bandit_exploration_layer([reference])
    info = model.info()
    assert info["observation_space"] == {"type": "Box", "shape": [3, 12], "dtype": "float32"}, "a context per arm"
    rng = np.random.default_rng(2)
    contexts = np.zeros((12, 3, 12), dtype=np.float32)
    for i in range(12):
        x = rng.normal(size=4).astype(np.float32)
        for arm in range(3):
            contexts[i, arm, arm * 4 : arm * 4 + 4] = x
    served = model.get_action({"n": 12, "obs": contexts})["action"]
    assert served.dtype == np.int64 and served.shape == (12,)
    # Every row is answered from the checkpoint's own exploration state, as a fresh load of it would answer.
    sigma = reference.sigma_inv.clone()
    expected = []
    for row in contexts:
        expected.append(int(reference.get_action(row)))
        reference.sigma_inv.copy_(sigma)
    assert served.tolist() == expected
    assert model.get_action({"n": 12, "obs": contexts})["action"].tolist() == expected, "serving does not drift"
    masked = model.get_action({"n": 12, "obs": contexts, "action_mask": np.tile([1, 0, 1], (12, 1))})["action"]
    assert set(masked.tolist()) <= {0, 2}


def test_cqn_trains_from_a_dataset_made_in_code_stops_resumes_and_serves(tmp_path: Path) -> None:
    dataset = cartpole_rollout(tmp_path / "data" / "cartpole.h5", steps=2000)
    base = write_manifest(tmp_path, "cqn-cartpole-tiny.json", lambda m: m["environment"].update(dataset_path=str(dataset)))
    long_manifest = write_manifest(tmp_path, str(base), lambda m: m["training"].update(max_steps=1_000_000))
    _, resumed = _stop_then_resume(tmp_path, long_manifest, 200, resumed_manifest=base)
    assert all(isinstance(p["evaluation_score"], float) for p in resumed.of("progress"))

    model, reference = _served(Path(resumed.of("checkpoint")[-1]["path"]))
    obs = np.random.default_rng(3).normal(scale=[1, 1, 0.2, 1], size=(64, 4)).astype(np.float32)
    served = model.get_action({"n": 64, "obs": obs})["action"]
    np.testing.assert_array_equal(served, np.asarray(reference.get_action(obs, epsilon=0.0)))


def test_a_missing_dataset_is_named_with_its_field(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "cartpole.h5"
    manifest = write_manifest(tmp_path, "cqn-cartpole-tiny.json", lambda m: m["environment"].update(dataset_path=str(missing)))
    t = TrainerProcess({"ARENA_MANIFEST": str(manifest), "ARENA_CHECKPOINT_DIR": str(tmp_path / "ck"), "ARENA_NAMESPACE": "ml"})
    assert t.finish(timeout=120) == 1
    error = t.of("error")[-1]
    assert error["reason"] == "DatasetNotFound"
    assert error["message"] == f"environment.dataset_path: {missing} does not exist in this worker"
    assert "checkpoint storage" in error["hint"] and "ml namespace" in error["hint"]
