"""How many steps and how long until the population's best evaluation score reaches a target (CartPole-v1: 475).

Prints figures, asserts nothing. Runs the trainer in-process, so the run is exactly what the supervisor would get,
and stops it (with the usual final checkpoint) at the target or at the time limit.

    python bench/solve.py bench/solve_dqn.json --limit-seconds 900
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena_agilerl.events import EventWriter
from arena_agilerl.run import main
from arena_agilerl.stop import StopFlag


class Watcher(EventWriter):
    def __init__(self, flag: StopFlag, target: float, started: float) -> None:
        super().__init__(io.StringIO())
        self.flag, self.target, self.started = flag, target, started
        self.reached: tuple[int, float] | None = None
        self.best = float("-inf")
        self.last_step = 0

    def emit(self, event: str, **fields: Any) -> None:
        super().emit(event, **fields)
        if event != "progress":
            return
        self.last_step = int(fields["step"])
        score = fields.get("evaluation_score")
        if isinstance(score, float):
            self.best = max(self.best, score)
            if score >= self.target and self.reached is None:
                self.reached = (self.last_step, time.monotonic() - self.started)
                self.flag.request("target reached")


def main_() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("manifest")
    p.add_argument("--target", type=float, default=475.0)
    p.add_argument("--limit-seconds", type=float, default=900.0)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    flag = StopFlag()
    started = time.monotonic()
    cpu0 = time.process_time()
    watcher = Watcher(flag, args.target, started)
    timer = threading.Timer(args.limit_seconds, flag.request, args=("time limit",))
    timer.daemon = True
    timer.start()
    with tempfile.TemporaryDirectory() as ck:
        rc = main(flag, {"ARENA_MANIFEST": args.manifest, "ARENA_CHECKPOINT_DIR": ck}, watcher)
    timer.cancel()
    result = {
        "manifest": Path(args.manifest).name,
        "exit": rc,
        "target": args.target,
        "reached_at_step": watcher.reached[0] if watcher.reached else None,
        "reached_after_seconds": round(watcher.reached[1], 1) if watcher.reached else None,
        "best_evaluation": watcher.best,
        "last_step": watcher.last_step,
        "wall_seconds": round(time.monotonic() - started, 1),
        "trainer_cpu_seconds": round(time.process_time() - cpu0, 1),
        "stopped_by": flag.signal_name,
    }
    print("SOLVE " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main_()
