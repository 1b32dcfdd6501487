"""SIGTERM mid-run and resuming from a checkpoint, with real AgileRL training."""

from __future__ import annotations

import io
import json
import signal
import time
from pathlib import Path
from typing import Any

import torch
from agilerl.algorithms import DQN
from arena_agilerl.events import EventWriter
from arena_agilerl.run import Run, main
from arena_agilerl.stop import StopFlag
from conftest import MANIFESTS, TrainerProcess, write_manifest


def test_sigterm_writes_a_final_checkpoint_and_exits_0(tmp_path: Path) -> None:
    # A long run, so that the stop lands mid-training rather than after the last round.
    manifest = write_manifest(tmp_path, "dqn-cartpole-tiny.json", lambda m: m["training"].update(max_steps=100_000))
    t = TrainerProcess({"ARENA_MANIFEST": str(manifest), "ARENA_CHECKPOINT_DIR": str(tmp_path), "ARENA_RUN": "stop"})
    first = t.wait_for(lambda e: e["event"] == "checkpoint", timeout=120)
    time.sleep(1.0)
    sent = time.monotonic()
    t.proc.send_signal(signal.SIGTERM)
    rc = t.finish(timeout=25)
    print(f"SIGTERM to exit: {time.monotonic() - sent:.2f}s")
    assert rc == 0, "".join(t.log[-30:])
    final = t.of("checkpoint")[-1]
    assert final.get("final") is True
    assert final["step"] >= first["step"]
    assert not t.of("finished")
    folder = Path(final["path"])
    meta = json.loads((folder / "arena-checkpoint.json").read_text())
    assert meta["final"] is True
    for member in meta["agents"]:
        assert DQN.load(str(folder / member["file"])).steps == member["steps"]


def test_resume_continues_the_step_count(trained: tuple[TrainerProcess, int, Path], tmp_path: Path) -> None:
    source, _, _ = trained
    at_1500 = next(c for c in source.of("checkpoint") if c["step"] == 1500)
    t = TrainerProcess(
        {
            "ARENA_MANIFEST": str(MANIFESTS / "dqn-cartpole-tiny.json"),
            "ARENA_CHECKPOINT_DIR": str(tmp_path),
            "ARENA_RUN": "resumed",
            "ARENA_RESUME_FROM": at_1500["path"],
            "ARENA_RESUME_STEP": "1500",
        }
    )
    rc = t.finish(timeout=240)
    assert rc == 0, "".join(t.log[-30:])
    assert [e["step"] for e in t.of("progress")] == [2000]
    assert [c["step"] for c in t.of("checkpoint")] == [2000]
    assert t.events[-1] == {"event": "finished", "step": 2000}


def test_a_stop_while_a_resume_is_still_building_writes_a_final_checkpoint_at_the_resumed_step(
    trained: tuple[TrainerProcess, int, Path], tmp_path: Path
) -> None:
    """A retry stopped before its first step: the signal lands while AgileRL builds and restores, which nothing
    interrupts; the stop is taken once the population exists, and the run loses nothing it had."""
    source, _, _ = trained
    at_1000 = next(c for c in source.of("checkpoint") if c["step"] == 1000)
    flag = StopFlag()
    flag.request("SIGTERM")
    out = io.StringIO()
    env = {
        "ARENA_MANIFEST": str(MANIFESTS / "dqn-cartpole-tiny.json"),
        "ARENA_CHECKPOINT_DIR": str(tmp_path),
        "ARENA_RUN": "1",
        "ARENA_RESUME_FROM": at_1000["path"],
        "ARENA_RESUME_STEP": "1000",
    }
    assert main(flag, env, EventWriter(out)) == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["event"], e["step"], e.get("final")) for e in events] == [("checkpoint", 1000, True)]
    folder = Path(events[0]["path"])
    assert folder == tmp_path / "run-1" / "step-1000-final"
    meta = json.loads((folder / "arena-checkpoint.json").read_text())
    assert meta["final"] is True
    assert [m["steps"] for m in meta["agents"]] == [1000, 1000]


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return bool(a == b)


def test_resume_restores_each_member(trained: tuple[TrainerProcess, int, Path], tmp_path: Path) -> None:
    """Steps, weights, optimizer state and (mutated) hyperparameters of every member, not just the first."""
    source, _, _ = trained
    folder = Path(next(c for c in source.of("checkpoint") if c["step"] == 1000)["path"])
    meta = json.loads((folder / "arena-checkpoint.json").read_text())
    env = {
        "ARENA_MANIFEST": str(MANIFESTS / "dqn-cartpole-tiny.json"),
        "ARENA_CHECKPOINT_DIR": str(tmp_path),
        "ARENA_RESUME_FROM": str(folder),
    }
    run = Run(env, EventWriter(io.StringIO()), StopFlag())
    run.build()
    assert run.trainer is not None
    try:
        assert run.step() == 1000
        for agent, member in zip(run.trainer.population, meta["agents"], strict=True):
            saved = DQN.load(str(folder / member["file"]))
            assert isinstance(agent, DQN)
            assert agent.steps == saved.steps == 1000
            assert (agent.lr, agent.batch_size, agent.learn_step) == (saved.lr, saved.batch_size, saved.learn_step)
            assert _same_state(agent.actor.state_dict(), saved.actor.state_dict())
            assert _same_state(agent.optimizer.state_dict(), saved.optimizer.state_dict())
        # Exploration picks up where 1000 steps of decay left it, not at eps_start.
        assert run.trainer.training_spec.eps_start is not None
        assert run.trainer.training_spec.eps_start < 1.0
    finally:
        run.trainer.close()
