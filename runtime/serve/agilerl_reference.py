"""AgileRL's own answer for a checkpoint, independent of ``serve.py``: the tests' reference for ``/get_action``.

Loads the elite member named in the checkpoint's ``arena-checkpoint.json`` with the class its metadata names and
runs AgileRL's ``get_action`` in evaluation mode, either once for the whole batch or row by row.

    python agilerl_reference.py CHECKPOINT_FOLDER OBS.npy MASK.npy|- OUT.npy batch|rows
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from agilerl import algorithms


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[4] not in ("batch", "rows"):
        print(__doc__, file=sys.stderr)
        return 2
    folder, obs_file, mask_file, out_file, mode = argv
    meta = json.loads((Path(folder) / "arena-checkpoint.json").read_text())
    agent: Any = getattr(algorithms, meta["algorithm"]).load(str(Path(folder) / meta["elite"]), device="cpu")
    agent.set_training_mode(False)
    obs = np.load(obs_file)
    mask = np.load(mask_file) if mask_file != "-" else None

    def act(o: np.ndarray, m: np.ndarray | None) -> np.ndarray:
        # DQN explores with epsilon unless told otherwise; the others act greedily when not training.
        if meta["algorithm"] == "DQN":
            return np.asarray(agent.get_action(o, epsilon=0.0, action_mask=m))
        return np.asarray(agent.get_action(o, training=False))

    if mode == "batch":
        result = act(obs, mask)
    else:
        rows = [act(obs[i : i + 1], None if mask is None else mask[i : i + 1]) for i in range(len(obs))]
        result = np.concatenate(rows)
    np.save(out_file, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
