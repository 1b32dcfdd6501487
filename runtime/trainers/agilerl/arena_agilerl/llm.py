"""One LLM fine-tuning run: the manifest built by AgileRL's ``LocalTrainer.from_manifest`` (its LLM builders and
its ``train_llm_dataset`` / ``train_llm_rollout`` loops), reported through the same logger hook as classic RL, and
checkpointed as AgileRL writes LLM checkpoints (``save_llm_checkpoint``: LoRA adapter folders, or the whole actor
when the manifest has no LoRA config, with ``attributes.pt``).

A checkpoint is ``<ARENA_CHECKPOINT_DIR>/run-<ARENA_RUN>/step-<N>/``: ``agent/`` (what AgileRL wrote for the
population's elite) and ``arena-checkpoint.json``, which names the base model, so a checkpoint can be served and
resumed without the manifest that trained it.

Under torchrun (several GPUs in a pod, or a gang of pods) every rank runs this module: all of them take part in
AgileRL's collective saves, global rank 0 writes the checkpoint, local rank 0 of each pod speaks for the pod on the
event channel, and a stop is agreed by all ranks at the same learning step.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from tempfile import TemporaryDirectory, gettempdir
from typing import Any

from .events import ErrorsOnly, EventWriter
from .stop import StopFlag, StopRequested

FORMAT = "arena-agilerl-llm-checkpoint/v1"
METADATA = "arena-checkpoint.json"
AGENT_DIR = "agent"

# vLLM's names for the attention backends the runtime's GPU probe picks (runtime/gpu/probe.ts).
VLLM_ATTENTION_BACKENDS = {"fa3": "FLASH_ATTN", "flashinfer": "FLASHINFER"}


def engine_environment(env: Mapping[str, str]) -> dict[str, str]:
    """What an in-process vLLM engine reads for the attention backend the runtime chose for these GPUs."""
    backend = env.get("ARENA_ATTENTION_BACKEND")
    out: dict[str, str] = {}
    if backend in VLLM_ATTENTION_BACKENDS and not env.get("VLLM_ATTENTION_BACKEND"):
        out["VLLM_ATTENTION_BACKEND"] = VLLM_ATTENTION_BACKENDS[backend]
    return out


LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def single_process(env: Mapping[str, str]) -> bool:
    """One trainer process for the whole run: not started by torchrun, and the pod's gang is one process.

    Every worker pod carries the gang's rendezvous (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); AgileRL
    initialises torch.distributed whenever those are set, so a single process would rendezvous with itself through
    the headless Service's name. Without them it trains undistributed."""
    if env.get("TORCHELASTIC_RUN_ID") or env.get("LOCAL_RANK"):
        return False
    try:
        return int(env.get("NNODES") or env.get("WORLD_SIZE") or 1) * int(env.get("NPROC_PER_NODE") or 1) <= 1
    except ValueError:
        return False


def without_gpu_kernels_on_cpu(device: str) -> bool:
    """AgileRL 2.58.0 patches Liger's Triton kernels into every model when liger-kernel is installed, whatever the
    device; on CPU the first forward then fails inside Triton ("0 active drivers"). Liger's kernels are GPU
    kernels, so on CPU the trainer tells AgileRL it has none (tests/test_llm.py reproduces the failure)."""
    if device != "cpu":
        return False
    import agilerl.algorithms.core.base as core

    core.HAS_LIGER_KERNEL = False  # type: ignore[attr-defined]
    return True


@dataclass(frozen=True)
class WrittenLlmCheckpoint:
    path: Path
    step: int
    size_bytes: int


def _fsync_tree(root: Path) -> None:
    from .checkpoints import _fsync  # imports AgileRL: not before the stop handler is in

    for p in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        _fsync(p)


def write_llm_checkpoint(
    run_dir: Path,
    agent: Any,
    *,
    step: int,
    algorithm: str,
    environment: str,
    base_model: str,
    training_score: float | None,
    evaluation_score: float | None,
    final: bool,
) -> WrittenLlmCheckpoint:
    """AgileRL's own LLM checkpoint of one agent, written apart and renamed into place."""
    from agilerl.utils.utils import save_llm_checkpoint

    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".step-{step}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        save_llm_checkpoint(agent, str(tmp / AGENT_DIR))
        lora = (tmp / AGENT_DIR / "actor" / "adapter_config.json").is_file()
        metadata = {
            "format": FORMAT,
            "step": step,
            "algorithm": algorithm,
            "environment": environment,
            "llm": True,
            "base_model": base_model,
            "weights": "lora-adapter" if lora else "full",
            "agent": AGENT_DIR,
            "agilerl_version": version("agilerl"),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "final": final,
            "training_score": training_score,
            "evaluation_score": evaluation_score,
        }
        (tmp / METADATA).write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        from .checkpoints import _free_name

        dest = _free_name(run_dir, f"step-{step}-final" if final else f"step-{step}")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return WrittenLlmCheckpoint(path=dest, step=step, size_bytes=size)


def join_llm_checkpoint(agent: Any) -> None:
    """A rank other than global rank 0 in AgileRL's collective save (its gathers and barriers); only rank 0 writes,
    so this rank's folder stays empty and is thrown away."""
    from agilerl.utils.utils import save_llm_checkpoint

    with TemporaryDirectory(prefix="arena-llm-save-") as scratch:
        save_llm_checkpoint(agent, scratch)


def resume_folder(location: str) -> Path:
    """The AgileRL checkpoint folder inside one of ours, or an AgileRL LLM checkpoint folder given directly."""
    path = Path(location)
    if (path / METADATA).is_file():
        meta = json.loads((path / METADATA).read_text(encoding="utf-8"))
        if not meta.get("llm"):
            raise ValueError(f"Checkpoint {location} is not an LLM checkpoint (it holds {meta.get('algorithm')})")
        return path / str(meta.get("agent", AGENT_DIR))
    if (path / "attributes.pt").is_file():
        return path
    raise FileNotFoundError(f"Checkpoint {location} not found (no {METADATA} and no AgileRL attributes.pt)")


class LlmRun:
    def __init__(self, env: Mapping[str, str], events: EventWriter, flag: StopFlag) -> None:
        from .errors import Phase

        self.env = env
        self.events = events
        self.flag = flag
        self.phase = Phase.MANIFEST
        self.trainer: Any = None
        self.run_dir = Path(env.get("ARENA_CHECKPOINT_DIR") or Path(gettempdir()) / "arena-checkpoints") / (
            f"run-{env.get('ARENA_RUN') or '0'}"
        )
        self.last: WrittenLlmCheckpoint | None = None
        self.every: int = 0
        self.taken = 0
        self.logger: Any = None
        self.distributed = False
        self.world = 1
        # The process that speaks for its pod: the only one under a single process, local rank 0 under torchrun.
        self.speaks = env.get("LOCAL_RANK", "0") == "0"

    def say(self, line: str) -> None:
        if self.speaks:
            print(f"arena-agilerl: {line}", flush=True)

    def build(self) -> None:
        from .errors import Phase
        from .run import pick_device

        manifest_path = self.env.get("ARENA_MANIFEST")
        if not manifest_path:
            raise FileNotFoundError("ARENA_MANIFEST is not set")
        os.environ.update(engine_environment(self.env))
        if single_process(self.env):
            for name in LAUNCHER_ENV:
                os.environ.pop(name, None)
        else:
            # AgileRL's LocalTrainer builds the dataset environment (with the process group's rank and world size)
            # before the algorithm, whose constructor is what joins the group: without this every rank would build
            # it for a world of one, and AgileRL's loop refuses that ("DatasetEnv was built with world_size=1").
            from agilerl.distributed import get_world_size, init_distributed

            self.distributed = init_distributed()
            self.world = int(get_world_size())
        from agilerl.models import TrainingManifest
        from agilerl.training.trainer import LocalTrainer

        manifest = TrainingManifest.get_validated(manifest_path, mode="python")
        resume: Path | None = None
        if self.env.get("ARENA_RESUME_FROM"):
            self.phase = Phase.RESUME
            resume = resume_folder(self.env["ARENA_RESUME_FROM"])
        self.phase = Phase.BUILD
        device = pick_device(self.env)
        no_liger = without_gpu_kernels_on_cpu(device)
        self.trainer = LocalTrainer.from_manifest(manifest, device=device, resume_from_checkpoint=str(resume) if resume else None)
        spec = self.trainer.training_spec
        self.every = int(spec.checkpoint_steps or spec.evo_steps or 0)
        self.taken = self.step() // self.every if self.every else 0
        if resume is not None:
            from .upstream import rebase_reference_update_tracker

            rebase_reference_update_tracker(self.trainer.population)
            self.say(f"resumed {self.algorithm()} from {resume} at step {self.step()}")
        self.say(
            f"{self.algorithm()} on {self.environment()}, base model {self.base_model()}, "
            f"population {len(self.trainer.population)}, max_steps {spec.max_steps}, device {device}"
            + (", Liger kernels off (CPU)" if no_liger else "")
            + (f", attention {self.env['ARENA_ATTENTION_BACKEND']}" if self.env.get("ARENA_ATTENTION_BACKEND") else "")
            + (f", {self.world} ranks" if self.distributed else "")
        )

    def algorithm(self) -> str:
        return str(getattr(self.trainer.algorithm_spec, "name", type(self.trainer.algorithm_spec).__name__))

    def environment(self) -> str:
        spec = self.trainer.env_spec
        return str(getattr(spec, "name", None) or getattr(spec, "dataset", None) or type(spec).__name__)

    def base_model(self) -> str:
        return str(self.trainer.algorithm_spec.pretrained_model_name_or_path)

    def step(self) -> int:
        # Under torch.distributed each rank counts its own share of the samples; AgileRL's reports (and max_steps)
        # count them all, the member's steps times the world size.
        return self.world * max((int(a.steps) for a in self.trainer.population), default=0)

    def elite(self) -> Any:
        agents = list(self.trainer.population)
        return max(agents, key=lambda a: float(a.fitness[-1]) if a.fitness else float("-inf"))

    def checkpoint(self, *, final: bool) -> WrittenLlmCheckpoint:
        from agilerl.distributed import broadcast_object_list, is_main_process

        from .errors import Phase

        previous, self.phase = self.phase, Phase.CHECKPOINT
        rnd = self.logger.last_round if self.logger is not None else None
        written: WrittenLlmCheckpoint | None = None
        if is_main_process():
            written = write_llm_checkpoint(
                self.run_dir,
                self.elite(),
                step=self.step(),
                algorithm=self.algorithm(),
                environment=self.environment(),
                base_model=self.base_model(),
                training_score=rnd.training_score if rnd else None,
                evaluation_score=rnd.evaluation_score if rnd else None,
                final=final,
            )
        else:
            join_llm_checkpoint(self.elite())
        if self.distributed:
            # Every pod's supervisor records the checkpoint rank 0 wrote (the operator keeps one entry per folder).
            [written] = broadcast_object_list([written])
        assert written is not None, "rank 0 wrote no checkpoint"
        self.phase = previous
        self.events.checkpoint(
            written.step,
            str(written.path),
            size_bytes=written.size_bytes,
            training_score=rnd.training_score if rnd else None,
            evaluation_score=rnd.evaluation_score if rnd else None,
            final=final,
        )
        self.last = written
        return written

    def after_round(self, rnd: Any) -> None:
        self.after_step()

    def after_step(self) -> None:
        """After every learning step, on every rank at the same point of AgileRL's loop (rank 0 as it reports, the
        others as they clear their metrics): a checkpoint every checkpoint_steps (else evo_steps) samples, and the
        stop, which all ranks take together."""
        step = self.step()
        if self.every and step // self.every > self.taken:
            self.checkpoint(final=False)
            self.taken = step // self.every
        if self.distributed:
            # A SIGTERM reaches the ranks at different moments; a rank that stopped alone would leave the others
            # waiting in the next step's collectives, so all stop at the first step any of them was asked at.
            from agilerl.distributed import any_rank

            if any_rank(self.flag.requested):
                self.flag.request(self.flag.signal_name or "SIGTERM")
        self.flag.raise_if_requested()

    def train(self) -> int:
        from .errors import Phase
        from .reporting import ArenaLogger, every_step_off_rank_0, reporting_to

        self.flag.raise_if_requested()
        self.phase = Phase.TRAIN
        max_steps = self.trainer.training_spec.max_steps
        self.logger = ArenaLogger(self.events, max_steps=max_steps, start_step=self.step(), after_round=self.after_round)
        # AgileRL's LLM loops count max_steps from zero in each train() call; a resumed run gets what is left.
        left = None if max_steps is None else max(0, int(max_steps) - self.step())
        if left is None or left > 0:
            spec = self.trainer.training_spec
            spec.max_steps = left
            # LocalTrainer.train() validates its specs again (to_manifest), and evo_steps may not exceed max_steps;
            # a run resumed with fewer steps left than evo_steps evolves at most once more, at its end. Our own
            # checkpoint cadence (self.every) was taken from the manifest's figures in build().
            if left is not None and spec.evo_steps is not None and spec.evo_steps > left:
                spec.evo_steps = left
            with reporting_to(self.trainer.train_fn, self.logger), every_step_off_rank_0(self.after_step):
                self.trainer.train(verbose=False, checkpoint_steps=None, checkpoint_path=None)
        step = self.step()
        if self.last is None or self.last.step != step:
            self.checkpoint(final=False)
        self.events.finished(step)
        return step


def main(flag: StopFlag, env: Mapping[str, str] | None = None, events: EventWriter | None = None) -> int:
    from .errors import diagnose

    env = dict(os.environ) if env is None else env
    if events is None:
        events = EventWriter.from_env(dict(env)) if env.get("LOCAL_RANK", "0") == "0" else ErrorsOnly.from_env(dict(env))
    run = LlmRun(env, events, flag)
    try:
        try:
            run.build()
            step = run.train()
            run.say(f"finished at step {step}")
            return 0
        except StopRequested:
            if run.trainer is None:
                raise
            written = run.checkpoint(final=True)
            run.say(f"stopped at step {written.step}; final checkpoint {written.path}")
            return 0
        finally:
            if run.trainer is not None:
                run.trainer.close()
    except StopRequested:
        run.say("stopped before training started")
        return 0
    except Exception as exc:  # noqa: BLE001 - every failure becomes the trainer's own diagnosis
        traceback.print_exc()
        d = diagnose(exc, run.phase)
        events.error(d.message, reason=d.reason, hint=d.hint, retryable=d.retryable)
        return 1


if __name__ == "__main__":
    # ``python -m arena_agilerl.llm``, what the runtime starts for the platform's LLM algorithms
    # (runtime/trainers/registry.ts). The handler goes in before AgileRL and torch load (many seconds).
    stop_flag = StopFlag()
    stop_flag.install()
    sys.exit(main(stop_flag))
