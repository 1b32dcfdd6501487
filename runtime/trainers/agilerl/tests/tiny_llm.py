"""A tiny LLM and its data, made in code (there is no model hub here): a Qwen2 configuration with random weights,
a byte-level BPE tokenizer trained on the data's own text, a Parquet dataset of sums (prompt, output, question,
answer columns, for SFT and for a GRPO rollout over rows), the same sums as preference pairs (prompt, chosen,
rejected columns, AgileRL's DatasetEnv's ``objective: preference``, for DPO) and reward functions for GRPO.

``python tiny_llm.py OUT``: ``OUT/model/`` (a Hugging Face folder), ``OUT/sums.parquet``,
``OUT/sums-preferences.parquet``, ``OUT/rubric.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

RUBRIC = '''def exact_sum(completion, answer, question):
    """1 when the completion contains the answer as a word."""
    return 1.0 if str(answer) in str(completion).split() else 0.0


def arbitrary_score(completion, answer, question):
    """A deterministic score in [0, 1) that two different completions almost never share. The tests check GRPO's
    plumbing, not what it learns: a model with random weights earns nothing under exact_sum, so every group ties,
    every advantage (a reward minus its group's mean) is 0 and nothing trains; under this score it does."""
    import zlib

    return (zlib.crc32(str(completion).encode()) % 1000) / 1000
'''


def rows() -> list[dict[str, str]]:
    return [
        {"prompt": f"what is {a} plus {b} ?", "output": str(a + b), "question": f"what is {a} plus {b} ?", "answer": str(a + b)}
        for a in range(10)
        for b in range(10)
    ]


def preference_rows() -> list[dict[str, str]]:
    """The sums as DPO pairs: the right sum chosen over one that is one off."""
    return [{"prompt": r["prompt"], "chosen": r["output"], "rejected": str(int(r["output"]) + 1)} for r in rows()]


def make(out: Path, *, hidden: int = 32, layers: int = 2) -> Path:
    import pandas as pd  # type: ignore[import-untyped]
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # type: ignore[import-untyped]
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    data = rows()
    # Byte-level BPE, as Qwen2's own: transformers 5 loads a qwen2 model's tokenizer as Qwen2Tokenizer, which
    # rebuilds it from the vocabulary and merges with byte-level pre-tokenization (a word-level vocabulary would
    # lose every word).
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [f"{r['prompt']} {r['output']}" for r in data]
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=320, special_tokens=["<pad>", "<eos>", "<bos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )
    model_dir = out / "model"
    tokenizer.save_pretrained(model_dir)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(model_dir)  # type: ignore[no-untyped-call]
    pd.DataFrame(data).to_parquet(out / "sums.parquet")
    pd.DataFrame(preference_rows()).to_parquet(out / "sums-preferences.parquet")
    (out / "rubric.py").write_text(RUBRIC, encoding="utf-8")
    return out


def first_rows(dataset: Path, rows: int = 9) -> Path:
    """A dataset's first ``rows`` rows alone. Nine leave eight training rows after AgileRL's 0.9 split, two batches
    of 4: a run with batches of 4 finishes its first pass over them at its third batch, and AgileRL's dataset loop
    refreshes the reference policy (DPO's reference adapter) before the fourth."""
    import pandas as pd

    path = dataset.with_name(f"{dataset.stem}-{rows}.parquet")
    pd.read_parquet(dataset).head(rows).to_parquet(path)
    return path


def sft_manifest(
    out: Path, *, max_steps: int, evo_steps: int, lr: float = 0.01, dataset: Path | None = None
) -> dict[str, object]:
    return {
        "algorithm": {
            "name": "SFT",
            "batch_size": 4,
            "lr": lr,
            # Liger's fused loss and gradient checkpointing are GPU-time savers; off for a tiny CPU run.
            "use_liger_loss": False,
            "gradient_checkpointing": False,
        },
        "network": {
            "pretrained_model_name_or_path": str(out / "model"),
            "max_context_length": 64,
            "lora_config": {"lora_r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        },
        "environment": {
            "env_type": "dataset",
            "objective": "sft",
            "dataset": str(dataset or out / "sums.parquet"),
            "response_column": "output",
            "name": "sums",
        },
        "training": {"max_steps": max_steps, "evo_steps": evo_steps, "pop_size": 1},
    }


def dpo_manifest(
    out: Path, *, max_steps: int, evo_steps: int, lr: float = 0.01, dataset: Path | None = None
) -> dict[str, object]:
    """AgileRL's DPO over the preference pairs, with the SFT manifest's network (a LoRA adapter on the tiny model)."""
    sft = sft_manifest(out, max_steps=max_steps, evo_steps=evo_steps, lr=lr)
    return {
        **sft,
        "algorithm": {
            "name": "DPO",
            "batch_size": 4,
            "lr": lr,
            "beta": 0.1,
            "nll_alpha": 1.0,
            "use_liger_loss": False,
            "gradient_checkpointing": False,
        },
        "environment": {
            "env_type": "dataset",
            "objective": "preference",
            "dataset": str(dataset or out / "sums-preferences.parquet"),
            "name": "sums-preferences",
        },
    }


def grpo_manifest(
    out: Path, *, max_steps: int, evo_steps: int | None = None, rollout_mode: str = "async", rubric: str = "arbitrary_score"
) -> dict[str, object]:
    """GRPO over the sums' rows. With ``rollout_mode: async`` AgileRL 2.58.0 builds the agent without a vLLM engine
    (builders/llm.py colocates vLLM only for ``colocated``), so its LocalTrainer generates the rollouts with
    transformers' ``generate`` in the trainer process, which runs on CPU; ``colocated``, the platform's default,
    needs vLLM. The platform's validator wants an async run to name its rollout engines and the LLM rollout buffer."""
    training: dict[str, object] = {"max_steps": max_steps, "pop_size": 1, "rollout_mode": rollout_mode}
    if evo_steps is not None:
        training["evo_steps"] = evo_steps
    manifest: dict[str, object] = {
        "algorithm": {
            "name": "GRPO",
            "batch_size": 2,
            "group_size": 2,
            "lr": 0.01,
            "use_liger_loss": False,
            "gradient_checkpointing": False,
            "max_output_tokens": 4,
        },
        "network": {
            "pretrained_model_name_or_path": str(out / "model"),
            "max_context_length": 64,
            "lora_config": {"lora_r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        },
        "environment": {
            "env_type": "rollout",
            "dataset": str(out / "sums.parquet"),
            "name": "sums",
            "prompt_template": {"user_0": "{question}"},
            "rubric_file_path": str(out / "rubric.py"),
            "rubric_name": rubric,
        },
        "training": training,
    }
    if rollout_mode == "async":
        training["rollout_engines_per_agent"] = 1
        manifest["replay_buffer"] = {"kind": "llm"}
    return manifest


if __name__ == "__main__":
    print(make(Path(sys.argv[1])))
