"""LLM fine-tuning with AgileRL's own LLM trainer on CPU: a tiny Qwen2 with random weights and a tokenizer trained
in code (tiny_llm.py), SFT through ``LocalTrainer.from_manifest``, checkpoints as AgileRL writes them, a stop with
a final checkpoint and a resume; and what cannot run on CPU, reproduced."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TRAINER_ROOT, TrainerProcess

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_llm import grpo_manifest, make, sft_manifest

FIXTURE = Path(__file__).resolve().parents[3] / "testing" / "llm-failure-lines.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield make(tmp_path_factory.mktemp("tiny-llm"))


def _write(tmp: Path, manifest: dict[str, Any], name: str) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(manifest))
    return path


def _llm(env: dict[str, str]) -> TrainerProcess:
    return TrainerProcess({"ARENA_DEVICE": "cpu", **env}, module="arena_agilerl.llm")


def test_sft_trains_checkpoints_stops_and_resumes(tiny: Path, tmp_path: Path) -> None:
    ck = tmp_path / "checkpoints"
    run = _llm(
        {
            "ARENA_MANIFEST": str(_write(tmp_path, sft_manifest(tiny, max_steps=16, evo_steps=8), "sft")),
            "ARENA_CHECKPOINT_DIR": str(ck),
            "ARENA_RUN": "1",
        }
    )
    assert run.finish(timeout=600) == 0, "".join(run.log[-40:])
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
    long = _llm(
        {
            "ARENA_MANIFEST": str(_write(tmp_path, sft_manifest(tiny, max_steps=100_000, evo_steps=8), "sft-long")),
            "ARENA_CHECKPOINT_DIR": str(ck),
            "ARENA_RUN": "2",
        }
    )
    long.wait_for(lambda e: e["event"] == "checkpoint", timeout=600)
    long.proc.send_signal(signal.SIGTERM)
    assert long.finish(timeout=120) == 0, "".join(long.log[-40:])
    final = long.of("checkpoint")[-1]
    assert final.get("final") is True and Path(final["path"]).name.endswith("-final")
    assert any("stopped at step" in line for line in long.log)

    # Resumed from it, the run continues from the checkpoint's step to the new max_steps.
    target = int(final["step"]) + 8
    resumed = _llm(
        {
            "ARENA_MANIFEST": str(_write(tmp_path, sft_manifest(tiny, max_steps=target, evo_steps=8), "sft-resume")),
            "ARENA_CHECKPOINT_DIR": str(ck),
            "ARENA_RUN": "3",
            "ARENA_RESUME_FROM": final["path"],
        }
    )
    assert resumed.finish(timeout=600) == 0, "".join(resumed.log[-40:])
    assert any(f"resumed SFT from {final['path']}/agent at step {final['step']}" in line for line in resumed.log), resumed.log[
        -20:
    ]
    after = [e["step"] for e in resumed.of("checkpoint")]
    assert after and all(s > int(final["step"]) for s in after) and after[-1] == target, after


def test_grpo_needs_vllm_which_does_not_run_on_cpu(tiny: Path, tmp_path: Path) -> None:
    """AgileRL's GRPO family generates with vLLM, colocated (the default) or on rollout engines; no manifest reaches
    its transformers generate. vLLM is a CUDA build, so on CPU the build fails with AgileRL's ImportError."""
    run = _llm(
        {
            "ARENA_MANIFEST": str(_write(tmp_path, grpo_manifest(tiny, max_steps=4), "grpo")),
            "ARENA_CHECKPOINT_DIR": str(tmp_path / "ck"),
            "ARENA_RUN": "1",
        }
    )
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
