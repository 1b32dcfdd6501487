"""Runs AgileRL's own manifest trainer in two processes through Accelerate (gloo, CPU), as a two-worker gang would.

With AgileRL 2.58.0 both DQN and PPO fail inside AgileRL: DQN in tournament selection (``KeyError: 'actor'`` when it
clones an agent whose networks were unwrapped) and PPO at its first action ('DistributedDataParallel' object has no
attribute 'extract_features'). The runtime refuses multi-worker classic RL until this passes with a pinned AgileRL
(runtime/trainers/registry.ts).

    python bench/accelerate_repro.py tests/manifests/dqn-cartpole-tiny.json

Prints one line per rank and exits 0 only when both ranks finish training.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def rank_main(manifest: str) -> None:
    import torch
    from accelerate.accelerator import Accelerator
    from agilerl.models import TrainingManifest
    from agilerl.training.trainer import LocalTrainer

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    validated = TrainingManifest.get_validated(manifest, mode="python")
    trainer = LocalTrainer.from_manifest(validated, device=str(accelerator.device), accelerator=accelerator)
    started = time.monotonic()
    population, _ = trainer.train(verbose=False, checkpoint_steps=None, checkpoint_path=None)
    steps = [int(a.steps) for a in population]
    print(f"rank {accelerator.process_index}: finished in {time.monotonic() - started:.1f}s, steps {steps}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--rank":
        rank_main(argv[1])
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    base = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29561", "OMP_NUM_THREADS": "1"}
    ranks = [
        subprocess.Popen(
            [sys.executable, __file__, "--rank", argv[0]],
            env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    codes = []
    for r, proc in enumerate(ranks):
        out, _ = proc.communicate(timeout=900)
        last = [line for line in out.splitlines() if "Error" in line or "rank " in line][-1:] or ["(no output)"]
        print(f"rank {r}: exit {proc.returncode}: {last[0]}")
        codes.append(proc.returncode)
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
