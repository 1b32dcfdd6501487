"""The LLM failure lines the runtime diagnoses (runtime/testing/llm-failure-lines.json) are the ones the installed
libraries print: each is raised here through the library itself and compared with the fixture, so a new
AgileRL or transformers wording fails this test instead of silently escaping the diagnosis."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

FIXTURE = Path(__file__).resolve().parents[3] / "testing" / "llm-failure-lines.json"
LINES: dict[str, dict[str, Any]] = {c["name"]: c for c in json.loads(FIXTURE.read_text())["lines"]}


def _printed(exc: BaseException) -> str:
    """The exception line of the traceback Python prints for it."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _tokenizer(*, eos: bool) -> Any:
    # A word-level tokenizer trained in code: no hub, and no pad token unless one is given.
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # type: ignore[import-untyped]
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["<eos>"] if eos else []
    tok.train_from_iterator(["two plus two is four", "one plus one is two"], trainers.WordLevelTrainer(special_tokens=specials))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **({"eos_token": "<eos>"} if eos else {}))  # type: ignore[no-untyped-call]


def test_transformers_refuses_to_pad_without_a_pad_token() -> None:
    with pytest.raises(ValueError) as err:
        _tokenizer(eos=True)(["two plus two", "one"], padding=True)
    assert _printed(err.value) == LINES["tokenizer without pad token (transformers)"]["line"]


def test_agilerl_cannot_resolve_a_pad_token_without_eos() -> None:
    from agilerl.utils.llm_utils import resolve_pad_token_id

    with pytest.raises(ValueError) as err:
        resolve_pad_token_id(_tokenizer(eos=False))
    assert _printed(err.value) == LINES["tokenizer without pad or eos token (AgileRL)"]["line"]


def test_agilerl_grpo_refuses_a_group_of_one() -> None:
    from agilerl.algorithms.grpo import GRPO

    with pytest.raises(ValueError) as err:
        # The check GRPO's constructor runs, on its own: building a GRPO needs a model.
        GRPO._setup_advantage_options(
            SimpleNamespace(),  # type: ignore[arg-type]
            adv_norm="mean_std",
            group_size=1,
            advantage_granularity="auto",
            whiten_advantages=False,
            adv_clip_range=None,
            filter_zero_adv=False,
            adv_filter_eps=0.0,
            turn_advantage_trajectory_fallback=False,
        )
    assert _printed(err.value) == LINES["GRPO with a group of one (AgileRL)"]["line"]


def test_agilerl_sft_dataset_without_a_prompt_column() -> None:
    from agilerl.llm_envs.dataset_env import DatasetEnv
    from datasets import Dataset  # type: ignore[import-untyped]

    rows = Dataset.from_dict({"question": ["two plus two"], "output": ["four"]})
    with pytest.raises(ValueError) as err:
        DatasetEnv(
            train_dataset=rows,
            test_dataset=rows,
            tokenizer=_tokenizer(eos=True),
            objective="sft",
            response_column="output",
        )
    assert _printed(err.value) == LINES["SFT dataset without prompt"]["line"]


def test_agilerl_lora_config_mismatch() -> None:
    from agilerl.algorithms.core.base import LLMAlgorithm
    from peft import LoraConfig

    text = LLMAlgorithm._format_lora_config_mismatch_error(LoraConfig(r=8), LoraConfig(r=16))
    assert f"ValueError: {text.splitlines()[0]}" == LINES["LoRA config of another run"]["line"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        # vLLM is not installed on CPU, so these are read from the source that raises them.
        ("vLLM wake_up out of memory", 'msg = f"vLLM wake_up failed (GPU OOM).'),
        ("LoRA export to vLLM incomplete", "have no tensor in the vLLM export, e.g."),
        ("checkpoint of another algorithm", '"Loaded registry does not match the algorithm\'s registry. Please make "'),
    ],
)
def test_lines_only_a_gpu_run_raises_are_in_agilerl_source(name: str, fragment: str) -> None:
    import agilerl

    case = LINES[name]
    source = Path(agilerl.__file__).parent.parent / case["source"]
    assert fragment in source.read_text(), f"{case['source']} no longer says {fragment!r}"
