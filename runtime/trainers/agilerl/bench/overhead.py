"""Steps per second of AgileRL alone against the same run under this trainer (reporting, a checkpoint of the
whole population every evolution step, the stop check on every environment step).

Prints figures, asserts nothing. Each measurement is a fresh process, alternating the two, timing train() only.

    python bench/overhead.py tests/manifests/dqn-cartpole-tiny.json --max-steps 6000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(mode: str, manifest: str, seed: int, threads: str) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    n_threads = torch.get_num_threads() if threads == "default" else int(threads)
    torch.set_num_threads(n_threads)
    with tempfile.TemporaryDirectory() as ck:
        if mode == "alone":
            from agilerl.training.trainer import LocalTrainer

            trainer = LocalTrainer.from_manifest(manifest, device="cpu")
            t0 = time.perf_counter()
            trainer.train(verbose=False)
            wall = time.perf_counter() - t0
            trainer.close()
        else:
            sys.path.insert(0, str(ROOT))
            from arena_agilerl.events import EventWriter
            from arena_agilerl.run import Run
            from arena_agilerl.stop import StopFlag

            env = {"ARENA_MANIFEST": manifest, "ARENA_CHECKPOINT_DIR": ck, "ARENA_TORCH_THREADS": str(n_threads)}
            with open(os.devnull, "w") as sink:
                run = Run(env, EventWriter(sink), StopFlag())
                run.build()
                assert run.trainer is not None
                t0 = time.perf_counter()
                run.train()
                wall = time.perf_counter() - t0
                run.trainer.close()
            trainer = run.trainer
        steps = sum(int(a.steps) for a in trainer.population)
    print("RESULT " + json.dumps({"mode": mode, "env_steps": steps, "train_seconds": wall}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("manifest")
    p.add_argument("--max-steps", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", default="1", help="torch threads for both, or 'default' for torch's own choice")
    p.add_argument(
        "--hpo",
        action="store_true",
        help="keep the manifest's mutations: they pick learn_step and batch_size from fitness, so the two runs "
        "then do different amounts of work per step",
    )
    p.add_argument("--one", choices=["alone", "wrapped"])
    args = p.parse_args()
    if args.one:
        one(args.one, args.manifest, args.seed, args.threads)
        return
    manifest = json.loads(Path(args.manifest).read_text())
    manifest["training"]["max_steps"] = args.max_steps
    if not args.hpo:
        manifest["training"]["hpo"] = False
        manifest.pop("mutation", None)
        manifest.pop("tournament_selection", None)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(manifest, f)
    rates: dict[str, list[float]] = {"alone": [], "wrapped": []}
    for _ in range(args.repeats):
        for mode in ("alone", "wrapped"):
            out = subprocess.run(
                [sys.executable, __file__, f.name, "--one", mode, "--seed", str(args.seed), "--threads", args.threads],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
            rates[mode].append(r["env_steps"] / r["train_seconds"])
            print(
                f"{mode:8s} {r['env_steps']} env steps in {r['train_seconds']:.1f}s = {rates[mode][-1]:.0f} steps/s", flush=True
            )
    a, w = statistics.median(rates["alone"]), statistics.median(rates["wrapped"])
    print(f"median: AgileRL alone {a:.0f} steps/s, under arena_agilerl {w:.0f} steps/s ({(w / a - 1) * 100:+.1f}%)")
    os.unlink(f.name)


if __name__ == "__main__":
    main()
