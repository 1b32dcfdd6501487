"""LLM fine-tuning with AgileRL's own LLM trainer on CPU: a tiny Qwen2 with random weights and a tokenizer trained
in code (tiny_llm.py), SFT, DPO and GRPO through ``LocalTrainer.from_manifest``, checkpoints as AgileRL writes them, a stop
with a final checkpoint and resumes; and what cannot run on CPU, reproduced."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TRAINER_ROOT, TrainerProcess

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_llm import dpo_manifest, first_rows, grpo_manifest, make, sft_manifest

FIXTURE = Path(__file__).resolve().parents[3] / "testing" / "llm-failure-lines.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield make(tmp_path_factory.mktemp("tiny-llm"))


def _write(tmp: Path, manifest: dict[str, Any], name: str) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(manifest))
    return path


def _start(
    tmp: Path, manifest: dict[str, Any], name: str, *, run: str, resume_from: str | None = None, ranks: int = 1
) -> TrainerProcess:
    """The LLM trainer on CPU with this manifest, checkpointing under ``tmp/checkpoints/run-<run>``; with several
    ``ranks``, under torchrun as the runtime starts it (runtime/trainers/registry.ts torchrunArgs)."""
    env = {"ARENA_DEVICE": "cpu", "ARENA_MANIFEST": str(_write(tmp, manifest, name)), "ARENA_RUN": run}
    env["ARENA_CHECKPOINT_DIR"] = str(tmp / "checkpoints")
    if resume_from:
        env["ARENA_RESUME_FROM"] = resume_from
    launcher = None
    if ranks > 1:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launcher = ["-m", "torch.distributed.run", "--nnodes=1", "--node-rank=0", f"--nproc-per-node={ranks}"]
        launcher += ["--master-addr=127.0.0.1", f"--master-port={port}"]
    return TrainerProcess(env, module="arena_agilerl.llm", launcher=launcher)


def _finished(run: TrainerProcess) -> TrainerProcess:
    assert run.finish(timeout=600) == 0, "".join(run.log[-40:])
    return run


def test_sft_trains_checkpoints_stops_and_resumes(tiny: Path, tmp_path: Path) -> None:
    run = _finished(_start(tmp_path, sft_manifest(tiny, max_steps=16, evo_steps=8), "sft", run="1"))
    steps = [e["step"] for e in run.of("checkpoint")]
    assert steps == [8, 16], steps
    assert run.of("finished") == [{"event": "finished", "step": 16}]
    progress = run.of("progress")
    assert progress and all(p["training_score"] is not None for p in progress), progress
    folder = Path(run.of("checkpoint")[-1]["path"])
    meta = json.loads((folder / "arena-checkpoint.json").read_text())
    assert meta["llm"] is True and meta["weights"] == "lora-adapter" and meta["algorithm"] == "SFT"
    assert meta["base_model"] == str(tiny / "model")
    adapter = folder / "agent" / "actor"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert (folder / "agent" / "attributes.pt").is_file()

    # The adapter is PEFT's own: it loads onto the base model anywhere, and training moved it off its zero init.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny / "model"), str(adapter))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b), "LoRA B is still zero: nothing was learned"

    # A long run stopped by SIGTERM writes a final checkpoint and exits 0.
    long = _start(tmp_path, sft_manifest(tiny, max_steps=100_000, evo_steps=8), "sft-long", run="2")
    long.wait_for(lambda e: e["event"] == "checkpoint", timeout=600)
    long.proc.send_signal(signal.SIGTERM)
    assert long.finish(timeout=120) == 0, "".join(long.log[-40:])
    final = long.of("checkpoint")[-1]
    assert final.get("final") is True and Path(final["path"]).name.endswith("-final")
    assert any("stopped at step" in line for line in long.log)

    # Resumed from it, the run continues from the checkpoint's step to the new max_steps.
    target = int(final["step"]) + 8
    manifest = sft_manifest(tiny, max_steps=target, evo_steps=8)
    resumed = _finished(_start(tmp_path, manifest, "sft-resume", run="3", resume_from=final["path"]))
    assert any(f"resumed SFT from {final['path']}/agent at step {final['step']}" in line for line in resumed.log), resumed.log[
        -20:
    ]
    after = [e["step"] for e in resumed.of("checkpoint")]
    assert after and all(s > int(final["step"]) for s in after) and after[-1] == target, after


def test_sft_over_two_ranks_under_torchrun_checkpoints_stops_and_resumes(tiny: Path, tmp_path: Path) -> None:
    """A worker with several GPUs runs AgileRL's LLM path under torchrun, one process per GPU (gloo on CPU here):
    every rank takes part in AgileRL's collective saves, rank 0 writes, the pod's channel gets one copy of each
    event, steps count every rank's samples, and a SIGTERM stops all ranks at the same step with one final
    checkpoint, which two ranks resume from."""
    long = _start(tmp_path, sft_manifest(tiny, max_steps=100_000, evo_steps=8), "sft-ddp", run="1", ranks=2)
    first = long.wait_for(lambda e: e["event"] == "checkpoint", timeout=600)
    assert first["step"] == 8, first
    assert any("device cpu, Liger kernels off (CPU), 2 ranks" in line for line in long.log), long.log[-20:]
    long.proc.send_signal(signal.SIGTERM)
    long.finish(timeout=180)  # torchrun's own exit code after a SIGTERM is not the workers'; the events say
    checkpoints = long.of("checkpoint")
    final = checkpoints[-1]
    assert final.get("final") is True and Path(final["path"]).name.endswith("-final"), checkpoints
    paths = [c["path"] for c in checkpoints]
    assert len(paths) == len(set(paths)), f"one event per checkpoint, not one per rank: {paths}"
    assert [line for line in long.log if "final checkpoint" in line] == [
        f"arena-agilerl: stopped at step {final['step']}; final checkpoint {final['path']}\n"
    ], long.log[-20:]
    assert not long.of("error"), long.of("error")
    written = sorted(p.name for p in (tmp_path / "checkpoints" / "run-1").iterdir())
    assert written == sorted(Path(c["path"]).name for c in checkpoints), written

    target = int(final["step"]) + 16
    more = sft_manifest(tiny, max_steps=target, evo_steps=8)
    resumed = _finished(_start(tmp_path, more, "sft-ddp-resume", run="2", resume_from=final["path"], ranks=2))
    # One line, from rank 0 only. The other rank's warnings share the pipe and can land on the same line, so the
    # line is matched by its start.
    resumed_lines = [line for line in resumed.log if "resumed SFT" in line]
    expected = f"arena-agilerl: resumed SFT from {final['path']}/agent at step {final['step']}"
    assert len(resumed_lines) == 1 and resumed_lines[0].startswith(expected), resumed.log[-20:]
    assert not resumed_lines[0][len(expected) :][:1].isdigit(), resumed_lines
    after = [c["step"] for c in resumed.of("checkpoint")]
    assert after and all(s > int(final["step"]) for s in after) and after[-1] == target, after
    assert resumed.of("finished") == [{"event": "finished", "step": target}]


def _adapter(folder: Path, name: str = "actor") -> dict[str, Any]:
    """The LoRA weights of a checkpoint's adapter, as PEFT saved them."""
    from safetensors.torch import load_file

    return load_file(str(folder / "agent" / name / "adapter_model.safetensors"))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def _serves_the_trained_adapter(folder: Path, tiny: Path) -> str:
    """What ``arena-runtime serve`` runs for an LLM checkpoint on CPU (arena_agilerl.llm_engine): the base model with
    the checkpoint's actor adapter merged in, which answers differently from the base model, and generates."""
    import torch
    from arena_agilerl.llm_engine import Model
    from transformers import AutoModelForCausalLM

    served = Model(folder, "cpu")
    prompt = "what is 2 plus 3 ?"
    ids = served.tokenizer(prompt, return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(str(tiny / "model"))
    base.train(False)
    with torch.no_grad():
        assert not torch.equal(served.model(**ids).logits, base(**ids).logits), "the served model is the base model"
    out = served.generate(prompt, {"max_new_tokens": 3, "temperature": 0})
    assert isinstance(out["text"], str) and 1 <= out["meta_info"]["completion_tokens"] <= 3, out
    assert served.description.startswith(f"{json.loads((folder / 'arena-checkpoint.json').read_text())['algorithm']} step ")
    return str(served.description)


def _trained(weights: dict[str, Any]) -> bool:
    """LoRA B starts at zero: a nonzero one has been trained."""
    return any(float(t.abs().sum()) > 0 for n, t in weights.items() if "lora_B" in n)


DPO_METRICS = ("train/mean_loss", "train/mean_chosen_reward", "train/mean_rejected_reward", "train/mean_reward_margin")


def test_dpo_trains_checkpoints_and_resumes(tiny: Path, tmp_path: Path) -> None:
    """DPO over preference pairs goes through AgileRL's dataset loop (objective: preference) like SFT. Over eight
    training pairs, the run makes a full pass, so AgileRL refreshes the reference adapter, and the resume starts
    from a checkpoint that has done so."""
    pairs = first_rows(tiny / "sums-preferences.parquet")
    run = _finished(_start(tmp_path, dpo_manifest(tiny, max_steps=16, evo_steps=8, dataset=pairs), "dpo", run="1"))
    assert any("arena-agilerl: DPO on sums-preferences" in line for line in run.log), run.log[-20:]
    assert [e["step"] for e in run.of("checkpoint")] == [8, 16], run.of("checkpoint")
    assert run.of("finished") == [{"event": "finished", "step": 16}]

    # One report per learning step (4 pairs each), with DPO's own figures, all finite numbers.
    metrics = run.of("metrics")
    assert [m["step"] for m in metrics] == [4, 8, 12, 16], metrics
    for m in metrics:
        assert all(k in m["values"] and math.isfinite(m["values"][k]) for k in DPO_METRICS), m
    # The first step's policy is its reference (LoRA B starts at zero), so its implicit rewards are 0; once a step
    # has trained the adapter, the policy is off the reference, and the rewards with it.
    first = metrics[0]["values"]
    assert first["train/mean_chosen_reward"] == first["train/mean_rejected_reward"] == 0.0, first
    rewards = [(m["values"]["train/mean_chosen_reward"], m["values"]["train/mean_rejected_reward"]) for m in metrics[1:]]
    assert any(c != 0.0 and r != 0.0 for c, r in rewards), rewards
    print("DPO loss", [m["values"]["train/mean_loss"] for m in metrics], "rewards", rewards)
    progress = run.of("progress")
    assert progress and all(p["training_score"] is not None for p in progress), progress

    step8, step16 = (Path(e["path"]) for e in run.of("checkpoint"))
    meta = json.loads((step16 / "arena-checkpoint.json").read_text())
    assert meta["llm"] is True and meta["weights"] == "lora-adapter" and meta["algorithm"] == "DPO"
    assert meta["base_model"] == str(tiny / "model") and meta["environment"] == "sums-preferences"
    for f in ("actor/adapter_config.json", "actor/adapter_model.safetensors", "attributes.pt"):
        assert (step16 / "agent" / f).is_file(), f

    # Training moved the adapter off its zero init, and on between the two checkpoints.
    weights = _adapter(step16)
    assert _trained(weights), "LoRA B is still zero: nothing was learned"
    assert not _same(_adapter(step8), weights), "the adapter did not change between steps 8 and 16"
    # DPO's reference policy is an adapter of its own (AgileRL's use_separate_reference_adapter), saved with the
    # actor; at step 8 it is still the initial policy, and the pass over the data copied the trained actor onto it.
    assert not _trained(_adapter(step8, "reference")) and _trained(_adapter(step16, "reference"))
    import torch

    assert torch.load(step16 / "agent" / "attributes.pt", weights_only=False)["reference_update_tracker"] == 1

    # Resumed from the last checkpoint, the run continues from its step to the new max_steps; AgileRL restores the
    # pass count, which the runtime starts again from 0 with the loop's (arena_agilerl/upstream.py), and evo_steps
    # (16) above the 8 steps left is no longer refused.
    manifest = dpo_manifest(tiny, max_steps=24, evo_steps=16, dataset=pairs)
    resumed = _finished(_start(tmp_path, manifest, "dpo-resume", run="2", resume_from=str(step16)))
    assert any(f"resumed DPO from {step16}/agent at step 16" in line for line in resumed.log), resumed.log[-20:]
    assert [m["step"] for m in resumed.of("metrics")] == [20, 24], resumed.of("metrics")
    assert all(math.isfinite(m["values"]["train/mean_loss"]) for m in resumed.of("metrics"))
    [after] = resumed.of("checkpoint")
    assert after["step"] == 24, after
    assert resumed.of("finished") == [{"event": "finished", "step": 24}]
    assert not _same(weights, _adapter(Path(after["path"]))), "the resumed run did not train the adapter"
    # Served: the actor adapter, not the reference one.
    print("served", _serves_the_trained_adapter(Path(after["path"]), tiny))


def test_grpo_trains_on_cpu_checkpoints_and_resumes(tiny: Path, tmp_path: Path) -> None:
    """GRPO through AgileRL's rollout loop, with its rollouts generated by transformers in the trainer process
    (``rollout_mode: async`` under LocalTrainer; tiny_llm.grpo_manifest says why): each prompt's group is scored by
    the rubric, the group-relative advantages train the LoRA adapter, checkpoints are AgileRL's, and a resume
    continues from the checkpoint's step."""
    run = _finished(_start(tmp_path, grpo_manifest(tiny, max_steps=8, evo_steps=4), "grpo", run="1"))
    assert any("arena-agilerl: GRPO on sums" in line for line in run.log), run.log[-20:]
    # A learning step is a batch of 2 prompts times a group of 2 completions: 4 samples, which AgileRL counts as steps.
    assert [e["step"] for e in run.of("checkpoint")] == [4, 8], run.of("checkpoint")
    assert run.of("finished") == [{"event": "finished", "step": 8}]
    metrics = run.of("metrics")
    assert metrics and all(math.isfinite(m["values"]["train/mean_loss"]) for m in metrics), metrics
    # Completions in a group score differently under the hash, so advantages are not all zero: there was a gradient.
    assert any(m["values"]["train/mean_adv_zero_frac"] < 1.0 for m in metrics), [m["values"] for m in metrics]
    assert any(m["values"]["train/mean_reward_arbitrary_score"] > 0.0 for m in metrics), [m["values"] for m in metrics]

    step4, step8 = (Path(e["path"]) for e in run.of("checkpoint"))
    meta = json.loads((step8 / "arena-checkpoint.json").read_text())
    assert meta["llm"] is True and meta["weights"] == "lora-adapter" and meta["algorithm"] == "GRPO"
    assert meta["base_model"] == str(tiny / "model") and meta["environment"] == "sums"
    weights = _adapter(step8)
    assert _trained(weights), "LoRA B is still zero: nothing was learned"
    assert not _same(_adapter(step4), weights), "the adapter did not change between steps 4 and 8"

    more = grpo_manifest(tiny, max_steps=12, evo_steps=4)
    resumed = _finished(_start(tmp_path, more, "grpo-resume", run="2", resume_from=str(step8)))
    assert any(f"resumed GRPO from {step8}/agent at step 8" in line for line in resumed.log), resumed.log[-20:]
    [after] = resumed.of("checkpoint")
    assert after["step"] == 12, after
    assert not _same(_adapter(Path(after["path"])), weights), "the resumed run did not train the adapter"


@pytest.mark.parametrize("algorithm", ["GSPO", "CISPO", "LLMPPO", "LLMREINFORCE"])
def test_the_rest_of_the_rollout_family_trains_resumes_and_serves_on_cpu(algorithm: str, tiny: Path, tmp_path: Path) -> None:
    """GSPO, CISPO, LLM PPO and LLM REINFORCE go through GRPO's rollout loop and builder, so one manifest with
    another algorithm name trains each; LLM PPO learns a value head instead of comparing a group, and REINFORCE takes
    no group. Each resumes from its checkpoint and carries on training, and its checkpoint is served."""

    def manifest_for(max_steps: int) -> dict[str, Any]:
        manifest = grpo_manifest(tiny, max_steps=max_steps, evo_steps=8)
        spec = manifest["algorithm"]
        assert isinstance(spec, dict)
        spec["name"] = algorithm
        if algorithm in ("LLMPPO", "LLMREINFORCE"):
            del spec["group_size"]
        return manifest

    run = _finished(_start(tmp_path, manifest_for(8), algorithm.lower(), run="1"))
    assert any(f"arena-agilerl: {algorithm} on sums" in line for line in run.log), run.log[-20:]
    [checkpoint] = run.of("checkpoint")
    assert checkpoint["step"] == 8 and run.of("finished") == [{"event": "finished", "step": 8}], run.events
    metrics = run.of("metrics")
    assert metrics and all(math.isfinite(m["values"]["train/mean_loss"]) for m in metrics), metrics
    folder = Path(checkpoint["path"])
    meta = json.loads((folder / "arena-checkpoint.json").read_text())
    assert meta["algorithm"] == algorithm and meta["weights"] == "lora-adapter", meta
    assert _trained(_adapter(folder)), "LoRA B is still zero: nothing was learned"
    if algorithm == "LLMPPO":
        assert (folder / "agent" / "critic").is_dir(), sorted(p.name for p in (folder / "agent").iterdir())

    resumed = _finished(_start(tmp_path, manifest_for(16), f"{algorithm.lower()}-resume", run="2", resume_from=str(folder)))
    assert any(f"resumed {algorithm} from {folder}/agent at step 8" in line for line in resumed.log), resumed.log[-20:]
    [after] = resumed.of("checkpoint")
    assert after["step"] == 16 and resumed.of("finished") == [{"event": "finished", "step": 16}], resumed.events
    later = Path(after["path"])
    assert not _same(_adapter(folder), _adapter(later)), "the resumed run did not train the adapter"
    if algorithm == "LLMPPO":
        from safetensors.torch import load_file

        critic = [load_file(str(f / "agent" / "critic" / "adapter_model.safetensors")) for f in (folder, later)]
        assert not _same(*critic), "the resumed run did not train the value head"
    print("served", _serves_the_trained_adapter(later, tiny))


def test_colocated_grpo_needs_vllm_which_does_not_run_on_cpu(tiny: Path, tmp_path: Path) -> None:
    """The platform's default for the GRPO family, ``rollout_mode: colocated``, generates with vLLM in the trainer
    process; vLLM is a CUDA build, so on CPU the build fails with AgileRL's ImportError, which the runtime names."""
    run = _start(tmp_path, grpo_manifest(tiny, max_steps=4, rollout_mode="colocated"), "grpo", run="1")
    assert run.finish(timeout=600) == 1
    lines = {c["name"]: c["line"] for c in json.loads(FIXTURE.read_text())["lines"]}
    assert lines["GRPO without vLLM"] in [line.strip() for line in run.log], "".join(run.log[-20:])
    [error] = run.of("error")
    assert "vLLM is required for colocated generation" in error["message"]


def test_agilerl_patches_liger_kernels_into_a_cpu_model(tiny: Path, tmp_path: Path) -> None:
    """Why the trainer turns Liger off on CPU: AgileRL applies Liger's Triton kernels whenever liger-kernel is
    installed (it is part of agilerl's cpu-llm extra), and Triton has no CPU driver."""
    manifest = _write(tmp_path, sft_manifest(tiny, max_steps=4, evo_steps=4), "sft-liger")
    script = f"""
from agilerl.models import TrainingManifest
from agilerl.training.trainer import LocalTrainer
trainer = LocalTrainer.from_manifest(TrainingManifest.get_validated({str(manifest)!r}, mode="python"), device="cpu")
trainer.train(verbose=False)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=TRAINER_ROOT)
    assert out.returncode != 0
    assert "RuntimeError: 0 active drivers ([]). There should only be one." in out.stderr, out.stderr[-3000:]
    assert "liger_kernel" in out.stderr


def test_agilerl_dpo_reports_its_figures_divided_by_the_micro_batch(tiny: Path, tmp_path: Path) -> None:
    """AgileRL 2.58.0's ``DPO.learn`` sums its micro-batches' mean loss and implicit rewards and divides the sum by
    the number of rows instead of the number of micro-batches (SFT's ``learn`` divides by the number of updates). So
    DPO's reported loss, rewards, margin, training score and fitness are the true figures divided by the micro-batch
    size (``algorithm.micro_batch_size_per_gpu``, else the batch). Training is not affected: the backward pass gets
    the true loss. Reproduced with AgileRL alone: before the first update the policy is its reference, so the pure
    DPO loss (``nll_alpha: 0``) is exactly ln 2, which AgileRL reports as ln 2 / 4 for micro-batches of 4 pairs and
    as ln 2 for micro-batches of one."""
    manifests = []
    for micro in (None, 1):
        manifest = dpo_manifest(tiny, max_steps=4, evo_steps=4)
        algorithm = manifest["algorithm"]
        assert isinstance(algorithm, dict)
        algorithm["nll_alpha"] = 0.0
        if micro is not None:
            algorithm["micro_batch_size_per_gpu"] = micro
        manifests.append(str(_write(tmp_path, manifest, f"dpo-micro-{micro}")))
    script = f"""
import json
import agilerl.algorithms.core.base as core
core.HAS_LIGER_KERNEL = False  # Liger's Triton kernels do not run on CPU (see the test above)
from agilerl.models import TrainingManifest
from agilerl.training.trainer import LocalTrainer
for path in {manifests!r}:
    trainer = LocalTrainer.from_manifest(TrainingManifest.get_validated(path, mode="python"), device="cpu")
    out = trainer.population[0].learn(trainer.env.reset(reset_dataloaders=True))
    print("LOSS", json.dumps(out["loss"]))
    trainer.close()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=TRAINER_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    batched, single = (float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("LOSS "))
    # bf16, AgileRL's default dtype for the model: ln 2 is 0.69140625 there.
    assert single == pytest.approx(math.log(2), abs=0.005), single
    assert batched == pytest.approx(single / 4, abs=1e-6), (batched, single)
