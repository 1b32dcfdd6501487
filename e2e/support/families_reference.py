"""AgileRL's own get_action for a multi-agent, bandit or offline checkpoint, independent of the server (serve.py):
the families cluster test's reference for what an agent must answer.

    python families_reference.py CHECKPOINT_FOLDER IN.json OUT.json

IN.json: {"obs": [[...], ...] or {"agent_id": [[...], ...]}}. OUT.json: {"action": the same shape as obs}. Loads
the elite member that arena-checkpoint.json names with the class it names, in evaluation mode, and calls its
get_action once for the batch (multi-agent, CQN) or once per context (NeuralUCB, NeuralTS: one context per call,
each from the checkpoint's own exploration state, which get_action would otherwise update).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from agilerl import algorithms
from agilerl.algorithms.core.base import MultiAgentAlgorithm


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    folder, in_file, out_file = (Path(a) for a in argv)
    meta = json.loads((folder / "arena-checkpoint.json").read_text())
    agent: Any = getattr(algorithms, meta["algorithm"]).load(str(folder / meta["elite"]), device="cpu")
    agent.set_training_mode(False)
    request = json.loads(in_file.read_text())
    result: Any
    if isinstance(agent, MultiAgentAlgorithm):
        obs = {k: np.asarray(v, dtype=np.float32) for k, v in request["obs"].items()}
        answer: Any = agent.get_action(obs)
        actions = answer[0]
        result = {k: np.asarray(v).tolist() for k, v in actions.items()}
    elif isinstance(agent, (algorithms.NeuralUCB, algorithms.NeuralTS)):
        # AgileRL 2.58.0 restores a detached exploration layer on load (the trainer's arena_agilerl/upstream.py
        # explains): without pointing it back at the actor's output layer, its get_action cannot run at all.
        bandit: Any = agent
        bandit.exp_layer = bandit.actor.get_output_dense()
        saved = agent.sigma_inv.clone()
        arms = []
        for context in np.asarray(request["obs"], dtype=np.float32):
            arms.append(int(agent.get_action(context)))
            agent.sigma_inv.copy_(saved)
        result = arms
    else:
        result = np.asarray(agent.get_action(np.asarray(request["obs"], dtype=np.float32), epsilon=0.0)).tolist()
    out_file.write_text(json.dumps({"action": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
