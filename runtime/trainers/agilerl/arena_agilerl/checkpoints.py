"""Population checkpoints in AgileRL's own format, laid out for the runtime.

A checkpoint is a folder ``run-<run>/step-<N>/`` holding one ``.pt`` file per population member, written by
AgileRL's ``save_population_checkpoint`` (so ``agilerl.algorithms.DQN.load(file)`` and friends read them anywhere),
and ``arena-checkpoint.json``, which says which file is which member and what it scored. The folder is filled under
a temporary name and renamed when complete, so the supervisor, or a later run resuming from it, never sees half of
one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from agilerl.utils.utils import save_population_checkpoint

FORMAT = "arena.agilerl/v1"
METADATA = "arena-checkpoint.json"


@dataclass(frozen=True)
class WrittenCheckpoint:
    path: Path
    step: int
    size_bytes: int


@dataclass(frozen=True)
class ResumePoint:
    # Member files in population order; the population is refilled from them in turn.
    files: list[Path]
    step: int | None
    source: Path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _free_name(parent: Path, name: str) -> Path:
    # A stop right after a periodic checkpoint lands on the same step; both are kept, the later one named apart.
    candidate = parent / name
    n = 1
    while candidate.exists():
        candidate = parent / f"{name}-{n}"
        n += 1
    return candidate


def write_population_checkpoint(
    run_dir: Path,
    agents: Sequence[Any],
    *,
    step: int,
    algorithm: str,
    environment: str,
    fitnesses: Sequence[float | None],
    training_score: float | None,
    evaluation_score: float | None,
    final: bool,
) -> WrittenCheckpoint:
    run_dir.mkdir(parents=True, exist_ok=True)
    # A name no other writer can have: two attempts of a run (a retry started while a lost node's worker still
    # runs) share this folder, and their trainers can have the same pid in their own containers.
    tmp = run_dir / f".step-{step}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        save_population_checkpoint(population=list(agents), save_path=str(tmp / "agent"), overwrite_checkpoints=False)
        members: list[dict[str, Any]] = []
        for i, agent in enumerate(agents):
            # AgileRL names each file after the member's own step count, which differs within a population mid-round.
            produced = tmp / f"agent_{i}_{agent.steps}.pt"
            if not produced.is_file():
                raise FileNotFoundError(f"AgileRL did not write the expected checkpoint file {produced.name}")
            members.append(
                {
                    "file": produced.name,
                    "index": int(agent.index),
                    "steps": int(agent.steps),
                    "fitness": fitnesses[i] if i < len(fitnesses) else None,
                }
            )
        scored = [m for m in members if isinstance(m["fitness"], (int, float))]
        elite = max(scored, key=lambda m: float(m["fitness"]))["file"] if scored else members[0]["file"]
        metadata = {
            "format": FORMAT,
            "step": step,
            "algorithm": algorithm,
            "environment": environment,
            "agilerl_version": version("agilerl"),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "final": final,
            "training_score": training_score,
            "evaluation_score": evaluation_score,
            "elite": elite,
            "agents": members,
        }
        (tmp / METADATA).write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        for f in tmp.iterdir():
            _fsync(f)
        _fsync(tmp)
        dest = _free_name(run_dir, f"step-{step}-final" if final else f"step-{step}")
        os.rename(tmp, dest)
        _fsync(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
    return WrittenCheckpoint(path=dest, step=step, size_bytes=size)


def read_resume_point(location: str) -> ResumePoint:
    """A checkpoint folder written here, a folder of AgileRL ``.pt`` files, or a single AgileRL checkpoint file."""
    path = Path(location)
    if path.is_file():
        return ResumePoint(files=[path], step=None, source=path)
    if not path.is_dir():
        raise FileNotFoundError(f"Checkpoint {location} does not exist")
    meta_file = path / METADATA
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_file} is not an {FORMAT} checkpoint (format {meta.get('format')!r})")
        files = [path / str(m["file"]) for m in meta["agents"]]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"Checkpoint {location} lacks {', '.join(missing)}")
        return ResumePoint(files=files, step=int(meta["step"]), source=path)
    files = sorted(path.glob("*.pt"))
    if not files:
        raise FileNotFoundError(f"Checkpoint folder {location} holds no AgileRL .pt file")
    return ResumePoint(files=files, step=None, source=path)
