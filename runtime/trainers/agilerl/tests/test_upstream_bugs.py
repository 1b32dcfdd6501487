"""The AgileRL 2.58.0 bugs this trainer works around (arena_agilerl/upstream.py), reproduced with AgileRL alone.

Each test asserts that the bug is still there and that the work-around removes it (or, where nothing can be worked
around, that the trainer's diagnosis names it). When a pinned AgileRL fixes one, its test fails: drop the
work-around and the test together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agilerl.algorithms import NeuralTS, NeuralUCB
from agilerl.arena.models.verdict import verdict
from agilerl.training.train_bandits import train_bandits
from agilerl.training.trainer import LocalTrainer
from arena_agilerl.errors import Phase, diagnose
from arena_agilerl.upstream import bandit_eval_steps, reattach_bandit_exploration_layer, rebase_reference_update_tracker
from conftest import MANIFESTS
from make_datasets import bandit_tables
from tiny_llm import dpo_manifest, first_rows, make, sft_manifest


def _bandit_manifest(tmp: Path, name: str = "NeuralUCB", max_steps: int = 50) -> dict[str, Any]:
    features, targets = bandit_tables(tmp / "data", rows=100)
    manifest: dict[str, Any] = json.loads((MANIFESTS / "neuralucb-tiny.json").read_text())
    manifest["algorithm"]["name"] = name
    manifest["environment"].update(features=str(features), targets=str(targets))
    manifest["training"].update(max_steps=max_steps, evo_steps=50, episode_steps=50, pop_size=1)
    return manifest


def test_bandit_loop_fails_on_the_eval_steps_local_trainer_passes(tmp_path: Path) -> None:
    manifest = _bandit_manifest(tmp_path)
    trainer = LocalTrainer.from_manifest(manifest, device="cpu")
    try:
        assert trainer.training_spec.eval_steps is None
        with pytest.raises(TypeError, match="'NoneType' object cannot be interpreted as an integer"):
            trainer.train(verbose=False)
        # The work-around: the loop's own default instead of the None.
        assert bandit_eval_steps(train_bandits, None) == 500
        assert bandit_eval_steps(train_bandits, 20) == 20
        fixed = LocalTrainer.from_manifest(manifest, device="cpu")
        fixed.training_spec.eval_steps = bandit_eval_steps(fixed.train_fn, fixed.training_spec.eval_steps)
        population, _ = fixed.train(verbose=False)
        assert int(np.max(population[0].steps)) >= 50, "the loop ran its steps"
        fixed.close()
    finally:
        trainer.close()


@pytest.mark.parametrize("cls", [NeuralUCB, NeuralTS])
def test_loaded_bandit_cannot_act_until_its_exploration_layer_is_reattached(
    tmp_path: Path, cls: type[NeuralUCB] | type[NeuralTS]
) -> None:
    manifest = _bandit_manifest(tmp_path, cls.__name__)
    trainer = LocalTrainer.from_manifest(manifest, device="cpu")
    agent = trainer.population[0]
    assert isinstance(agent, cls)
    context = np.random.default_rng(0).normal(size=(3, 12)).astype(np.float32)
    agent.get_action(context)  # a freshly built agent acts
    path = tmp_path / "agent.pt"
    agent.save_checkpoint(str(path))
    trainer.close()

    loaded = cls.load(str(path), device="cpu")
    assert not any(p is q for p in loaded.exp_layer.parameters() for q in loaded.actor.parameters())
    with pytest.raises(ValueError, match="expected a non-empty list of Tensors"):
        loaded.get_action(context)
    resumed = cls.load(str(path), device="cpu")
    resumed.load_checkpoint(str(path))
    with pytest.raises(ValueError, match="expected a non-empty list of Tensors"):
        resumed.get_action(context)

    reattach_bandit_exploration_layer([loaded, resumed])
    for a in (loaded, resumed):
        assert a.exp_layer is a.actor.get_output_dense()
        assert 0 <= int(a.get_action(context)) < 3


def test_a_recurrent_ppo_manifest_with_an_mlp_encoder_validates_and_then_cannot_be_built() -> None:
    manifest: dict[str, Any] = json.loads((MANIFESTS / "recurrent-ppo-cartpole-tiny.json").read_text())
    manifest["network"].update(arch="mlp", encoder_config={"hidden_size": [16]})
    # The platform's validator (`arena manifest validate`) checks encoder_config against the arch it names ...
    assert verdict(manifest)["ok"] is True
    # ... and the builder makes an LSTM for a recurrent policy whatever that arch.
    with pytest.raises(AssertionError, match="LSTM net config must contain hidden_state_size") as failed:
        LocalTrainer.from_manifest(manifest, device="cpu")
    # Nothing to work around: the trainer names the field and the fix instead of AgileRL's assertion.
    diagnosis = diagnose(failed.value, Phase.BUILD)
    assert diagnosis.message.startswith("network: ") and "network.arch: lstm" in diagnosis.hint


@pytest.mark.parametrize("algorithm", ["DPO", "SFT"])
def test_llm_agent_resumed_after_a_pass_over_the_dataset_fails_its_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    import agilerl.algorithms.core.base as core
    from agilerl.utils.utils import save_llm_checkpoint

    monkeypatch.setattr(core, "HAS_LIGER_KERNEL", False)  # Liger's Triton kernels do not run on CPU (llm.py)
    tiny = make(tmp_path / "tiny")
    build = dpo_manifest if algorithm == "DPO" else sft_manifest
    dataset = first_rows(tiny / ("sums-preferences.parquet" if algorithm == "DPO" else "sums.parquet"))
    trainer = LocalTrainer.from_manifest(build(tiny, max_steps=16, evo_steps=16, dataset=dataset), device="cpu")
    trainer.train(verbose=False)
    agent = trainer.population[0]
    assert isinstance(agent, core.LLMAlgorithm)
    assert agent.reference_update_tracker == 1, "the run made a full pass over its 8 rows"
    save_llm_checkpoint(agent, str(tmp_path / "checkpoint"))
    trainer.close()

    more = build(tiny, max_steps=4, evo_steps=4, dataset=dataset)
    resumed = LocalTrainer.from_manifest(more, device="cpu", resume_from_checkpoint=str(tmp_path / "checkpoint"))
    try:
        assert getattr(resumed.population[0], "reference_update_tracker", None) == 1, "load_checkpoint restores it"
        with pytest.raises(AssertionError, match="Reference policy update tracker should be greater than or equal"):
            resumed.train(verbose=False)
    finally:
        resumed.close()

    # The work-around: the pass count starts again from 0, as the resumed loop's does.
    fixed = LocalTrainer.from_manifest(more, device="cpu", resume_from_checkpoint=str(tmp_path / "checkpoint"))
    rebase_reference_update_tracker(fixed.population)
    fixed.train(verbose=False)
    assert int(fixed.population[0].steps) == 20, "the resumed agent trained on from its 16 steps"
    fixed.close()
