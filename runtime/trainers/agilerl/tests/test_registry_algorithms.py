"""The rest of the platform's classic registry (DDPG, TD3, Rainbow DQN, PPO, Recurrent PPO, MATD3, IPPO, NeuralTS),
each trained to its max_steps by AgileRL's manifest trainer in a trainer process, its checkpoint loaded by AgileRL's
own class, resumed from that checkpoint to a higher max_steps, and served: the server's answer must be what
AgileRL's own get_action computes for the same checkpoint.

The resume runs through the trainer's ``main`` in this process (as test_stop_and_resume does for DQN): it is the
code path the process takes, with the environment variables the supervisor sets, and this saves AgileRL's import,
most of a tiny run's time, once per algorithm on a loaded 2-core machine.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from agilerl import algorithms
from arena_agilerl.events import EventWriter
from arena_agilerl.run import main
from arena_agilerl.serve import Model, load_agent, pick_member
from arena_agilerl.stop import StopFlag
from arena_agilerl.upstream import reattach_bandit_exploration_layer
from conftest import TrainerProcess, write_manifest
from make_datasets import bandit_tables

ServeCheck = Callable[[Model, Any, np.random.Generator], None]
MPE_AGENTS = ("agent_0", "agent_1", "agent_2")


def _observations(space: dict[str, Any], n: int, rng: np.random.Generator) -> Any:
    if space["type"] == "Dict":
        return {k: _observations(s, n, rng) for k, s in space["spaces"].items()}
    assert space["type"] == "Box", space
    return rng.normal(size=(n, *space["shape"])).astype(np.float32)


def _assert_same(served: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        assert sorted(served) == sorted(expected)
        for k in expected:
            np.testing.assert_array_equal(served[k], np.asarray(expected[k]), err_msg=k)
    else:
        np.testing.assert_array_equal(served, np.asarray(expected))


def _answers_as(own: Callable[[Any, Any], Any]) -> ServeCheck:
    """The server answers a batch as ``own(agent, obs)``, the agent's own call, does.

    Both draw from the same torch seed: PPO and IPPO sample from their policy even in evaluation mode.
    """

    def check(model: Model, reference: Any, rng: np.random.Generator) -> None:
        obs = _observations(model.info()["observation_space"], 32, rng)
        torch.manual_seed(7)
        served = model.get_action({"n": 32, "obs": obs})["action"]
        torch.manual_seed(7)
        expected = own(reference, obs)
        _assert_same(served, expected)

    return check


def _recurrent_answers(model: Model, reference: Any, rng: np.random.Generator) -> None:
    """Two steps of an episode: the hidden state the server hands back is the one the next request carries."""
    hidden = model.info()["hidden_state"]
    assert hidden and all(spec["shape"] == [1, 1, 16] for spec in hidden.values()), "the manifest's LSTM of 16"
    state = reference.get_initial_hidden_state(16)
    carried = None
    for seed in (11, 12):
        obs = _observations(model.info()["observation_space"], 16, rng)
        torch.manual_seed(seed)
        served = model.get_action({"n": 16, "obs": obs, "hidden_state": carried})
        torch.manual_seed(seed)
        action, *_, state = reference.get_action(obs, hidden_state=state)
        np.testing.assert_array_equal(served["action"], action)
        assert sorted(served["hidden_state"]) == sorted(state)
        for k, v in state.items():
            np.testing.assert_array_equal(served["hidden_state"][k], v.numpy(), err_msg=k)
        carried = served["hidden_state"]


def _bandit_answers(model: Model, reference: Any, rng: np.random.Generator) -> None:
    """Thompson sampling draws from torch: both answer every row from the same seed and the checkpoint's sigma_inv."""
    reattach_bandit_exploration_layer([reference])
    contexts = _observations(model.info()["observation_space"], 12, rng)
    assert contexts.shape == (12, 3, 12), "a context per arm"
    torch.manual_seed(5)
    served = model.get_action({"n": 12, "obs": contexts})["action"]
    sigma = reference.sigma_inv.clone()
    torch.manual_seed(5)
    expected = []
    for row in contexts:
        expected.append(int(reference.get_action(row)))
        reference.sigma_inv.copy_(sigma)
    assert served.tolist() == expected


def _with_bandit_tables(tmp: Path) -> Callable[[dict[str, Any]], None]:
    features, targets = bandit_tables(tmp / "data")
    return lambda m: m["environment"].update(features=str(features), targets=str(targets))


def _fewer_steps(max_steps: int) -> Callable[[Path], Callable[[dict[str, Any]], None]]:
    return lambda _tmp: lambda m: m["training"].update(max_steps=max_steps)


@dataclass(frozen=True)
class Case:
    cls: type[Any]  # the AgileRL class whose load reads the checkpoint
    manifest: str
    members: int  # the population, training.pop_size
    agent_ids: tuple[str, ...]  # a multi-agent member's agents; () for one agent
    recurrent: bool
    more_steps: int  # what the resumed run trains on top of the checkpoint: one evolution step or two
    served: ServeCheck
    prepare: Callable[[Path], Callable[[dict[str, Any]], None]] | None = None


# DDPG, TD3 and Rainbow DQN act without exploration noise when told training=False; PPO, MATD3 and IPPO return a
# tuple whose first element is the action the environment is stepped with.
_WITHOUT_NOISE = _answers_as(lambda a, o: a.get_action(o, training=False))
_FIRST_OF_TUPLE = _answers_as(lambda a, o: a.get_action(o)[0])

CASES = {
    "DDPG": Case(algorithms.DDPG, "ddpg-pendulum-tiny.json", 2, (), False, 200, _WITHOUT_NOISE),
    "TD3": Case(algorithms.TD3, "td3-pendulum-tiny.json", 2, (), False, 400, _WITHOUT_NOISE),
    "Rainbow DQN": Case(algorithms.RainbowDQN, "rainbow-cartpole-tiny.json", 2, (), False, 200, _WITHOUT_NOISE),
    "PPO": Case(algorithms.PPO, "ppo-cartpole-tiny.json", 2, (), False, 512, _FIRST_OF_TUPLE, _fewer_steps(1024)),
    "Recurrent PPO": Case(algorithms.RecurrentPPO, "recurrent-ppo-cartpole-tiny.json", 2, (), True, 128, _recurrent_answers),
    "MATD3": Case(algorithms.MATD3, "matd3-spread-tiny.json", 2, MPE_AGENTS, False, 100, _FIRST_OF_TUPLE),
    "IPPO": Case(algorithms.IPPO, "ippo-spread-tiny.json", 2, MPE_AGENTS, False, 200, _FIRST_OF_TUPLE),
    "NeuralTS": Case(algorithms.NeuralTS, "neuralts-tiny.json", 2, (), False, 100, _bandit_answers, _with_bandit_tables),
}


def _check_loads(case: Case, checkpoint: dict[str, Any]) -> None:
    folder = Path(checkpoint["path"])
    meta = json.loads((folder / "arena-checkpoint.json").read_text())
    assert meta["step"] == checkpoint["step"]
    assert len(meta["agents"]) == case.members
    for member in meta["agents"]:
        agent = case.cls.load(str(folder / member["file"]), device="cpu")
        assert isinstance(agent, case.cls)
        assert agent.steps == member["steps"] == checkpoint["step"]
        if case.agent_ids:
            assert tuple(agent.agent_ids) == case.agent_ids
        else:
            assert bool(getattr(agent, "recurrent", False)) is case.recurrent


@pytest.mark.parametrize("name", list(CASES))
def test_trains_checkpoints_loads_resumes_and_serves(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    change = case.prepare(tmp_path) if case.prepare else None
    manifest = write_manifest(tmp_path, case.manifest, change)
    max_steps = json.loads(manifest.read_text())["training"]["max_steps"]

    t = TrainerProcess({"ARENA_MANIFEST": str(manifest), "ARENA_CHECKPOINT_DIR": str(tmp_path), "ARENA_RUN": "first"})
    assert t.finish(timeout=240) == 0, "".join(t.log[-30:])
    progress = [e["step"] for e in t.of("progress")]
    assert progress and progress == sorted(set(progress)) and progress[-1] >= max_steps, progress
    checkpoints = t.of("checkpoint")
    assert [c["step"] for c in checkpoints] == progress
    assert t.events[-1] == {"event": "finished", "step": progress[-1]}
    last = checkpoints[-1]
    _check_loads(case, last)

    resumed_manifest = write_manifest(
        tmp_path, str(manifest), lambda m: m["training"].update(max_steps=last["step"] + case.more_steps)
    )
    out = io.StringIO()
    env = {
        "ARENA_MANIFEST": str(resumed_manifest),
        "ARENA_CHECKPOINT_DIR": str(tmp_path),
        "ARENA_RUN": "resumed",
        "ARENA_RESUME_FROM": last["path"],
        "ARENA_RESUME_STEP": str(last["step"]),
    }
    capsys.readouterr()
    assert main(StopFlag(), env, EventWriter(out)) == 0, capsys.readouterr().err[-4000:]
    printed = capsys.readouterr().out
    assert f"resumed {case.members} agents from {last['path']} at step {last['step']}" in printed
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    resumed = [e for e in events if e["event"] == "checkpoint"]
    assert resumed and all(c["step"] > last["step"] for c in resumed), f"resumed past {last['step']}: {resumed}"
    assert events[-1] == {"event": "finished", "step": last["step"] + case.more_steps}
    _check_loads(case, resumed[-1])

    file, meta = pick_member(Path(resumed[-1]["path"]))
    model = Model(load_agent(file, "cpu"), file, meta)
    # Not the class: AgileRL records a RecurrentPPO's checkpoint as "PPO", so the server loads it with PPO.load,
    # and the recurrent flag comes from the checkpoint.
    assert model.info()["recurrent"] is case.recurrent
    assert model.info()["agent_ids"] == list(case.agent_ids)
    reference = case.cls.load(str(file), device="cpu")
    reference.set_training_mode(False)
    case.served(model, reference, np.random.default_rng(0))
