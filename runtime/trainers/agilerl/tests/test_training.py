"""Real AgileRL training of a tiny DQN CartPole population, seen through the event channel."""

from __future__ import annotations

import json
from pathlib import Path

from agilerl.algorithms import DQN
from conftest import TrainerProcess


def test_progress_rises_to_max_steps_and_finishes(trained: tuple[TrainerProcess, int, Path]) -> None:
    t, rc, _ = trained
    assert rc == 0, "".join(t.log[-30:])
    progress = t.of("progress")
    steps = [e["step"] for e in progress]
    assert len(steps) >= 3
    assert steps == sorted(set(steps)), steps
    assert all(e["max_steps"] == 2000 for e in progress)
    assert steps[-1] >= 2000
    assert all(e["steps_per_second"] > 0 for e in progress)
    assert all(isinstance(e["evaluation_score"], float) for e in progress)
    assert t.events[-1] == {"event": "finished", "step": steps[-1]}


def test_every_checkpoint_is_on_disk_and_agilerl_loads_it(trained: tuple[TrainerProcess, int, Path]) -> None:
    t, _, tmp = trained
    checkpoints = t.of("checkpoint")
    assert [c["step"] for c in checkpoints] == [e["step"] for e in t.of("progress")]
    for c in checkpoints:
        folder = Path(c["path"])
        assert folder.parent == tmp / "checkpoints" / "run-trained"
        assert c["size_bytes"] == sum(f.stat().st_size for f in folder.iterdir())
        assert "final" not in c
        meta = json.loads((folder / "arena-checkpoint.json").read_text())
        assert meta["step"] == c["step"]
        assert meta["evaluation_score"] == c["evaluation_score"]
        assert len(meta["agents"]) == 2
        for member in meta["agents"]:
            agent = DQN.load(str(folder / member["file"]))
            assert agent.steps == member["steps"] == c["step"]
    # Nothing half-written is left behind.
    assert not list((tmp / "checkpoints" / "run-trained").glob(".*"))
