"""``python -m arena_agilerl.serve --checkpoint PATH``: the model process behind ``arena-runtime serve`` for AgileRL
checkpoints (runtime/serve/agilerl-model.ts starts it).

It loads one agent with its own algorithm's ``load`` (the best member of a checkpoint folder of this trainer, or a
single AgileRL ``.pt`` file), puts it in evaluation mode, and answers get_action requests with what the agent's own
``get_action`` returns in evaluation mode (no exploration noise, epsilon 0).

Framing, on stdin and stdout alike: ``u32 LE header length, u32 LE payload length, header JSON, payload``. Arrays
travel raw in the payload, a leaf of the header naming them as ``{"$a": [dtype, shape, offset]}``: base64 ``.npy``
in JSON lines would cost an encode and a decode per array on both sides for nothing. The first frame out is
``{"ready": {...}}`` (the spaces, so the caller can check shapes itself) or ``{"fatal": reason}``; then one reply
per request, in order: ``{"id", "action", "hidden_state"?}`` or ``{"id", "error": {"field", "message"}}``.
A request never ends the process; only a checkpoint that cannot be loaded does (exit 1, the reason on stderr too).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import struct
import sys
import traceback
from pathlib import Path
from typing import IO, Any

import numpy as np

METADATA = "arena-checkpoint.json"
HEADER = struct.Struct("<II")

# The wire's dtypes (runtime/npy/npy.ts) as NumPy type strings.
DTYPES = {
    "f4": "<f4",
    "f8": "<f8",
    "i1": "i1",
    "i2": "<i2",
    "i4": "<i4",
    "i8": "<i8",
    "u1": "u1",
    "u2": "<u2",
    "u4": "<u4",
    "u8": "<u8",
    "b1": "?",
}


class BadRequest(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def pick_member(location: Path) -> tuple[Path, dict[str, Any]]:
    """The file to serve and what the checkpoint says about it: the elite, else the highest fitness, else member 0."""
    if location.is_file():
        return location, {}
    if not location.is_dir():
        raise FileNotFoundError(f"{location} does not exist")
    meta_file = location / METADATA
    if not meta_file.is_file():
        files = sorted(location.glob("*.pt"))
        if len(files) != 1:
            raise FileNotFoundError(
                f"{location} has no {METADATA} and {len(files)} .pt files: give the folder of a checkpoint of this "
                "trainer, or one .pt file"
            )
        return files[0], {}
    meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
    members: list[dict[str, Any]] = list(meta.get("agents") or [])
    if not members:
        raise ValueError(f"{meta_file} lists no agents")
    chosen = next((m for m in members if m.get("file") == meta.get("elite")), None)
    if chosen is None:
        scored = [m for m in members if isinstance(m.get("fitness"), (int, float))]
        chosen = max(scored, key=lambda m: float(m["fitness"])) if scored else members[0]
    file = location / str(chosen["file"])
    if not file.is_file():
        raise FileNotFoundError(f"{meta_file} names {chosen['file']}, which is not in the folder")
    return file, {**meta, "member": chosen}


def load_agent(file: Path, device: str) -> Any:
    """AgileRL's own ``load`` of the class the checkpoint records (its ``algo`` attribute)."""
    import dill  # type: ignore[import-untyped]
    import torch
    from agilerl import algorithms
    from agilerl.algorithms.core.base import EvolvableAlgorithm

    # The class name is all that is read here; the algorithm's own load does the real work.
    raw = torch.load(str(file), map_location="cpu", pickle_module=dill, weights_only=False)
    if not isinstance(raw, dict) or "network_info" not in raw:
        raise ValueError(f"{file} is not an AgileRL (2.x) algorithm checkpoint")
    name = str(raw.get("algo") or "")
    # ``algo`` is AgileRL's display name, which can have a space ("Rainbow DQN"); the class is the name without it,
    # as AgileRL's own create_population maps it.
    cls = getattr(algorithms, name.replace(" ", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, EvolvableAlgorithm)):
        raise ValueError(f"{file} holds algorithm {name!r}, which agilerl.algorithms does not have")
    del raw
    agent = cls.load(str(file), device=device)
    from .upstream import reattach_bandit_exploration_layer

    reattach_bandit_exploration_layer([agent])
    agent.set_training_mode(False)
    return agent


def describe_space(space: Any) -> dict[str, Any]:
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "shape": list(space.shape), "nvec": [int(v) for v in space.nvec.flat]}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "shape": list(space.shape)}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {str(k): describe_space(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [describe_space(s) for s in space.spaces]}
    return {"type": type(space).__name__}


def mask_width(space: Any) -> int | None:
    """Columns of an action mask AgileRL takes for this action space; None where it takes none."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(space.nvec.sum())
    return None


def fmt_shape(shape: tuple[int, ...] | list[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_batch_shape(shape: tuple[int, ...]) -> str:
    """The shape with N for its batch axis, as the TypeScript side writes it: (N,), (N, 4)."""
    if not shape:
        return "()"
    rest = [str(d) for d in shape[1:]]
    return "(N,)" if not rest else "(N, " + ", ".join(rest) + ")"


def check_obs(value: Any, space: Any, field: str, n: int) -> Any:
    """The observation as AgileRL takes it for ``space``, or BadRequest naming the field."""
    import numpy as np
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        if not isinstance(value, dict):
            raise BadRequest(field, f"expected an object keyed by {', '.join(map(json.dumps, space.spaces))}")
        missing = [k for k in space.spaces if k not in value]
        extra = [k for k in value if k not in space.spaces]
        if missing or extra:
            raise BadRequest(field, f"expected the keys {sorted(space.spaces)}, got {sorted(value)}")
        return {k: check_obs(value[k], s, f"{field}.{k}", n) for k, s in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(space.spaces):
            raise BadRequest(field, f"expected a tuple of {len(space.spaces)} arrays")
        return tuple(check_obs(v, s, f"{field}[{i}]", n) for i, (v, s) in enumerate(zip(value, space.spaces, strict=True)))
    if not isinstance(value, np.ndarray):
        raise BadRequest(field, "expected one array")
    want: tuple[int, ...] = (n, *space.shape) if space.shape is not None else (n,)
    if value.shape != want:
        raise BadRequest(field, f"expected shape {fmt_batch_shape(want)}, got {fmt_batch_shape(value.shape)}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        row = int(np.argwhere(~np.isfinite(value.reshape(n, -1)))[0][0])
        raise BadRequest(field, f"row {row} holds a non-finite value")
    if isinstance(space, spaces.Discrete):
        if value.dtype.kind not in "iu":
            raise BadRequest(field, f"expected integers (a Discrete({space.n}) observation), got {value.dtype}")
        if ((value < space.start) | (value >= space.start + space.n)).any():
            raise BadRequest(field, f"expected values from {space.start} to {space.start + space.n - 1}")
    return value


def check_mask(value: Any, width: int | None, n: int) -> Any:
    import numpy as np

    if value is None:
        return None
    if width is None:
        raise BadRequest("action_mask", "this model's action space takes no action mask")
    if not isinstance(value, np.ndarray):
        raise BadRequest("action_mask", f"expected one array of shape (N, {width})")
    if value.shape != (n, width):
        raise BadRequest("action_mask", f"expected shape (N, {width}), got {fmt_batch_shape(value.shape)}")
    allowed = value != 0
    empty = np.flatnonzero(~allowed.any(axis=1))
    if empty.size:
        raise BadRequest("action_mask", f"row {int(empty[0])} allows no action")
    # AgileRL reads 1 as allowed and 0 as forbidden.
    return allowed.astype(np.int8)


def bandit_context_space(agent: Any) -> Any:
    """What one bandit request row is: a context per arm, as AgileRL's BanditEnv hands them to ``get_action``."""
    from gymnasium import spaces

    box = agent.observation_space
    return spaces.Box(low=-np.inf, high=np.inf, shape=(int(agent.action_space.n), *box.shape), dtype=box.dtype)


def check_agent_dict(value: Any, agent_ids: list[str], field: str) -> dict[str, Any]:
    """An object keyed by some of this model's agent ids (each agent's own entry is checked by the caller)."""
    if not isinstance(value, dict):
        raise BadRequest(field, f"expected an object keyed by agent id ({', '.join(agent_ids)})")
    unknown = [k for k in value if k not in agent_ids]
    if unknown:
        raise BadRequest(f"{field}.{unknown[0]}", f"not an agent of this model ({', '.join(agent_ids)})")
    return value


class Model:
    def __init__(self, agent: Any, file: Path, meta: dict[str, Any]) -> None:
        import torch
        from agilerl.algorithms import NeuralTS, NeuralUCB
        from agilerl.algorithms.core.base import MultiAgentAlgorithm

        self.agent = agent
        self.torch = torch
        self.algo = type(agent).__name__
        self.recurrent = bool(getattr(agent, "recurrent", False))
        self.multi_agent = isinstance(agent, MultiAgentAlgorithm)
        # A contextual bandit's get_action takes one context (a row per arm) and returns one arm.
        self.bandit = isinstance(agent, (NeuralUCB, NeuralTS))
        self.agent_ids: list[str] = [str(a) for a in agent.agent_ids] if self.multi_agent else []
        if self.multi_agent:
            from gymnasium import spaces

            self.observation_space = spaces.Dict(dict(agent.possible_observation_spaces))
            self.action_space = spaces.Dict(dict(agent.possible_action_spaces))
            self.mask_width = None
            self.mask_widths: dict[str, int] = {
                a: w for a in self.agent_ids if (w := mask_width(self.action_space[a])) is not None
            }
        else:
            self.observation_space = bandit_context_space(agent) if self.bandit else agent.observation_space
            self.action_space = agent.action_space
            self.mask_width = mask_width(agent.action_space)
            self.mask_widths = {}
        params = inspect.signature(agent.get_action).parameters
        # Each algorithm spells evaluation mode its own way: DQN takes epsilon, Rainbow/DDPG/TD3 take training.
        self.kwargs: dict[str, Any] = {}
        if "epsilon" in params:
            self.kwargs["epsilon"] = 0.0
        if "training" in params:
            self.kwargs["training"] = False
        # Multi-agent algorithms read masks (and env-defined actions) from the per-agent infos they take.
        self.takes_mask = "action_mask" in params or self.multi_agent
        if not self.takes_mask:
            self.mask_width = None
        self.hidden_spec: dict[str, dict[str, Any]] = {}
        if self.recurrent:
            one = agent.get_initial_hidden_state(1)
            two = agent.get_initial_hidden_state(2)
            for k, t in one.items():
                axis = next(i for i, (a, b) in enumerate(zip(t.shape, two[k].shape, strict=True)) if a != b)
                self.hidden_spec[k] = {"shape": list(t.shape), "batch_axis": axis, "dtype": str(t.dtype).removeprefix("torch.")}
        member = meta.get("member") or {}
        env = meta.get("environment")
        own = getattr(agent, "steps", None)
        steps = member.get("steps", own[-1] if isinstance(own, list) and own else own)
        parts = [self.algo + (f" {env}" if env else ""), f"step {meta.get('step', steps)}"]
        if member:
            parts.append(f"member {member.get('index')} (fitness {member.get('fitness')})")
        parts.append(f"{file.name} on {agent.device}")
        self.description = ", ".join(parts)

    def info(self) -> dict[str, Any]:
        return {
            "algo": self.algo,
            "recurrent": self.recurrent,
            "multi_agent": self.multi_agent,
            "agent_ids": self.agent_ids,
            "description": self.description,
            # Multi-agent: a Dict keyed by agent id, which is what obs and action are keyed by on the wire.
            "observation_space": describe_space(self.observation_space),
            "action_space": describe_space(self.action_space),
            "action_mask_width": self.mask_width,
            "action_mask_widths": self.mask_widths,
            "hidden_state": self.hidden_spec if self.recurrent else None,
            "device": str(self.agent.device),
        }

    def hidden(self, value: Any, n: int) -> dict[str, Any]:
        import numpy as np

        torch = self.torch
        if value is None:
            return dict(self.agent.get_initial_hidden_state(n))
        if not isinstance(value, dict) or sorted(value) != sorted(self.hidden_spec):
            raise BadRequest(
                "hidden_state", f"expected an object keyed by {', '.join(map(json.dumps, self.hidden_spec))} (or null)"
            )
        out: dict[str, Any] = {}
        for k, spec in self.hidden_spec.items():
            a = value[k]
            want = list(spec["shape"])
            want[spec["batch_axis"]] = n
            if not isinstance(a, np.ndarray) or list(a.shape) != want:
                got = fmt_shape(a.shape) if isinstance(a, np.ndarray) else "not an array"
                raise BadRequest(f"hidden_state.{k}", f"expected shape {fmt_shape(want)}, got {got}")
            out[k] = torch.as_tensor(a, dtype=torch.float32, device=self.agent.device)
        return out

    def multi_agent_infos(self, request: dict[str, Any], n: int) -> dict[str, dict[str, Any]] | None:
        """The per-agent infos AgileRL's multi-agent get_action reads masks and env-defined actions from."""
        infos: dict[str, dict[str, Any]] = {}
        masks = request.get("action_mask")
        if masks is not None:
            for aid, m in check_agent_dict(masks, self.agent_ids, "action_mask").items():
                if aid not in self.mask_widths:
                    raise BadRequest(f"action_mask.{aid}", "this agent's action space takes no action mask")
                try:
                    infos.setdefault(aid, {})["action_mask"] = check_mask(m, self.mask_widths[aid], n)
                except BadRequest as e:
                    raise BadRequest(f"action_mask.{aid}", e.message) from None
        defined = request.get("env_defined_actions")
        if defined is not None:
            for aid, a in check_agent_dict(defined, self.agent_ids, "env_defined_actions").items():
                if not isinstance(a, np.ndarray) or a.shape[:1] != (n,):
                    raise BadRequest(f"env_defined_actions.{aid}", "expected one array with batch_size rows")
                infos.setdefault(aid, {})["env_defined_actions"] = a
        return infos or None

    def get_multi_agent_action(self, request: dict[str, Any], n: int) -> dict[str, Any]:
        obs = check_obs(request.get("obs"), self.observation_space, "obs", n)
        infos = self.multi_agent_infos(request, n)
        with self.torch.no_grad():
            result = self.agent.get_action(obs, infos=infos)
        # MADDPG and MATD3 return (actions, raw actions), IPPO (actions, log probs, entropies, values): the first
        # is what the environment is stepped with.
        actions = result[0] if isinstance(result, tuple) else result
        return {"action": {str(k): np.asarray(v) for k, v in actions.items()}}

    def get_bandit_action(self, obs: Any, mask: Any, n: int) -> dict[str, Any]:
        # NeuralUCB and NeuralTS update their exploration matrix (sigma_inv) on every get_action; a served policy
        # answers each row from the checkpoint's own state, so answers do not drift with traffic and every replica
        # agrees. The gradients get_action takes of the network need autograd, so this is not under no_grad.
        saved = self.agent.sigma_inv.clone()
        arms: list[int] = []
        try:
            for i in range(n):
                kwargs = {"action_mask": mask[i]} if mask is not None else {}
                arms.append(int(self.agent.get_action(obs[i], **kwargs)))
                self.agent.sigma_inv.copy_(saved)
        finally:
            self.agent.sigma_inv.copy_(saved)
        return {"action": np.asarray(arms, dtype=np.int64)}

    def get_action(self, request: dict[str, Any]) -> dict[str, Any]:
        n = int(request["n"])
        if self.multi_agent:
            return self.get_multi_agent_action(request, n)
        obs = check_obs(request.get("obs"), self.observation_space, "obs", n)
        mask = check_mask(request.get("action_mask"), self.mask_width, n)
        if self.bandit:
            return self.get_bandit_action(obs, mask, n)
        kwargs = dict(self.kwargs)
        if self.takes_mask:
            kwargs["action_mask"] = mask
        if self.recurrent:
            kwargs["hidden_state"] = self.hidden(request.get("hidden_state"), n)
        with self.torch.no_grad():
            result = self.agent.get_action(obs, **kwargs)
        reply: dict[str, Any] = {}
        # PPO returns (action, log_prob, entropy, value[, next hidden]); the others the action alone.
        action = result[0] if isinstance(result, tuple) else result
        reply["action"] = np.asarray(action)
        if self.recurrent and isinstance(result, tuple):
            nxt = result[-1] or {}
            reply["hidden_state"] = {k: v.detach().cpu().numpy() for k, v in nxt.items()}
        return reply


def decode(node: Any, payload: bytearray) -> Any:
    import numpy as np

    if isinstance(node, list):
        return tuple(decode(v, payload) for v in node)
    if isinstance(node, dict):
        if "$a" in node:
            dtype, shape, offset = node["$a"]
            count = math.prod(shape)
            return np.frombuffer(payload, dtype=np.dtype(DTYPES[dtype]), count=count, offset=offset).reshape(shape)
        return {k: decode(v, payload) for k, v in node.items()}
    return None


def wire_dtype(array: Any) -> tuple[Any, str]:
    import numpy as np

    a = np.ascontiguousarray(array)
    if a.dtype == np.bool_:
        return a, "b1"
    code = f"{a.dtype.kind}{a.dtype.itemsize}"
    if code not in DTYPES or a.dtype.kind not in "fiu":
        a = a.astype(np.float32 if a.dtype.kind == "f" else np.int64)
        code = f"{a.dtype.kind}{a.dtype.itemsize}"
    return a.astype(DTYPES[code], copy=False), code


def encode(node: Any, chunks: list[bytes], offset: list[int]) -> Any:
    import numpy as np

    if isinstance(node, dict):
        return {str(k): encode(v, chunks, offset) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [encode(v, chunks, offset) for v in node]
    a, code = wire_dtype(np.asarray(node))
    data = a.tobytes()
    leaf = {"$a": [code, list(a.shape), offset[0]]}
    chunks.append(data)
    offset[0] += len(data)
    return leaf


def write_frame(out: IO[bytes], header: dict[str, Any], chunks: list[bytes] | None = None) -> None:
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    body = b"".join(chunks or [])
    out.write(HEADER.pack(len(head), len(body)) + head + body)
    out.flush()


def read_exact(stream: IO[bytes], size: int) -> bytearray | None:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        k = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            return None
        got += k
    return buf


def serve(model: Model, stdin: IO[bytes], out: IO[bytes]) -> None:
    while True:
        head = read_exact(stdin, HEADER.size)
        if head is None:
            return
        head_len, body_len = HEADER.unpack(head)
        raw_header = read_exact(stdin, head_len)
        payload = read_exact(stdin, body_len) if body_len else bytearray()
        if raw_header is None or payload is None:
            return
        rid: Any = None
        try:
            request = json.loads(raw_header)
            rid = request.get("id")
            req = {k: decode(request.get(k), payload) for k in ("obs", "action_mask", "hidden_state", "env_defined_actions")}
            req["n"] = request["n"]
            reply = model.get_action(req)
            chunks: list[bytes] = []
            offset = [0]
            write_frame(out, {"id": rid, **{k: encode(v, chunks, offset) for k, v in reply.items()}}, chunks)
        except BadRequest as e:
            write_frame(out, {"id": rid, "error": {"field": e.field, "message": e.message}})
        except Exception as e:  # noqa: BLE001 - one bad request must not end the process
            traceback.print_exc(file=sys.stderr)
            write_frame(out, {"id": rid, "error": {"field": None, "message": f"{type(e).__name__}: {e}"}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arena_agilerl.serve")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder of this trainer, or one AgileRL .pt file")
    args = parser.parse_args(argv)
    # The frames own stdout; anything AgileRL or torch prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        file, meta = pick_member(Path(args.checkpoint))
        import torch

        threads = os.environ.get("ARENA_TORCH_THREADS")
        # One request is a few small matrix products: intra-op threads only add hand-offs (see the trainer README).
        torch.set_num_threads(int(threads) if threads else 1)
        device = os.environ.get("ARENA_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
        model = Model(load_agent(file, device), file, meta)
    except Exception as e:  # noqa: BLE001 - every load failure becomes the pod's reason
        reason = f"{type(e).__name__}: {e}" if not isinstance(e, (FileNotFoundError, ValueError)) else str(e)
        traceback.print_exc(file=sys.stderr)
        print(f"arena_agilerl.serve: cannot load {args.checkpoint}: {reason}", file=sys.stderr)
        write_frame(out, {"fatal": reason})
        return 1
    write_frame(out, {"ready": model.info()})
    serve(model, sys.stdin.buffer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
