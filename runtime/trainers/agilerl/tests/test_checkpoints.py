from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from agilerl.algorithms import DQN
from arena_agilerl.checkpoints import write_population_checkpoint
from gymnasium import spaces


def _write(run_dir: Path, agent: DQN) -> Path:
    return write_population_checkpoint(
        run_dir,
        [agent],
        step=100,
        algorithm="DQN",
        environment="CartPole-v1",
        fitnesses=[1.0],
        training_score=None,
        evaluation_score=1.0,
        final=False,
    ).path


def test_a_writer_never_touches_another_writers_checkpoint(tmp_path: Path) -> None:
    agent = DQN(spaces.Box(-1.0, 1.0, (4,), dtype=np.float32), spaces.Discrete(2))
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    # What another attempt's trainer, with the same pid in its own container, is in the middle of writing.
    other = run_dir / f".step-100.tmp-{os.getpid()}"
    other.mkdir()
    (other / "agent_0_100.pt").write_bytes(b"half written")

    first = _write(run_dir, agent)
    assert (other / "agent_0_100.pt").read_bytes() == b"half written"
    assert first == run_dir / "step-100"
    # A second writer at the same step gets a name of its own; the first checkpoint is left whole.
    second = _write(run_dir, agent)
    assert second == run_dir / "step-100-1"
    assert sorted(f.name for f in first.iterdir()) == sorted(f.name for f in second.iterdir())
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".step-100.tmp-") and p != other]
