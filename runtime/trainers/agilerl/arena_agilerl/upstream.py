"""Work-arounds for bugs of the pinned AgileRL (2.58.0) on the paths this trainer and its server take.

Each is the smallest change that lets AgileRL's own code run, applied where the bug bites, and each has a test in
``tests/test_upstream_bugs.py`` that reproduces the bug with AgileRL alone, so that the test fails (and the
work-around can go) once a pinned AgileRL fixes it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any


def reattach_bandit_exploration_layer(agents: Iterable[Any]) -> None:
    """NeuralUCB and NeuralTS: ``load()`` and ``load_checkpoint()`` leave ``exp_layer`` detached from the actor.

    Both algorithms take the gradient of their actor's output layer (``exp_layer``) in every ``get_action``.
    AgileRL's loading rebuilds the actor, points ``exp_layer`` at its output layer (the mutation hook), and then
    restores every saved attribute over it, ``exp_layer`` included: a pickled copy of the old layer that the new
    actor's forward pass never touches. Its gradient is then never computed, and ``get_action`` fails with
    ``torch.cat(): expected a non-empty list of Tensors``, so a loaded bandit can neither be served nor resumed.
    ``sigma_inv`` and ``theta_0`` restored from the checkpoint are right and are kept.
    """
    from agilerl.algorithms import NeuralTS, NeuralUCB
    from torch import nn

    for agent in agents:
        if isinstance(agent, (NeuralUCB, NeuralTS)):
            layer = agent.actor.get_output_dense()
            # The check NeuralUCB's own init_params makes of the same layer.
            if not isinstance(layer, nn.Linear):
                raise TypeError(f"{type(agent).__name__}'s actor has no nn.Linear output layer to explore with")
            agent.exp_layer = layer


def bandit_eval_steps(train_fn: Callable[..., Any], eval_steps: int | None) -> int | None:
    """The bandit loop's evaluation length when the manifest names none.

    ``LocalTrainer`` hands every classic loop ``eval_steps=training.eval_steps``, None when the manifest leaves it
    out, and ``train_bandits`` passes it on to ``agent.test(max_steps=...)``, whose ``range(None)`` raises
    ``TypeError: 'NoneType' object cannot be interpreted as an integer`` after the first evolution step. The loop's
    own default (500 in 2.58.0) is what it would use if the None were not passed.
    """
    if eval_steps is not None:
        return eval_steps
    default = inspect.signature(train_fn).parameters.get("eval_steps")
    value = default.default if default is not None else None
    return value if isinstance(value, int) else None


def rebase_reference_update_tracker(agents: Iterable[Any]) -> None:
    """LLM agents resumed from a checkpoint: their count of passes over the dataset starts at 0 again, as the loop's.

    Before every learning step AgileRL's LLM loops call ``agent.set_reference_policy(env.num_epochs)``, which
    asserts that the env's count of finished passes over the dataset is at least the agent's
    ``reference_update_tracker``, and copies the actor adapter onto the reference adapter when it is higher.
    ``load_checkpoint`` restores the tracker (the passes of the run that wrote the checkpoint), but a new ``train()``
    counts passes from 0 (``DatasetEnv.reset(reset_dataloaders=True)`` sets it so), so a run resumed from a
    checkpoint written after one full pass fails at its first step with ``AssertionError: Reference policy update
    tracker should be greater than or equal to the current reference policy update tracker``. From 0, AgileRL's rule
    holds within the resumed run: the reference adapter restored from the checkpoint stays until the resumed run has
    made a full pass of its own, which is what the dataloader (restarted at a fresh shuffle) also does.
    """
    for agent in agents:
        if getattr(agent, "reference_update_tracker", 0):
            agent.reference_update_tracker = 0
