"""Drives ``arena-runtime serve`` with the Arena platform's own Python client (``agilerl.arena.Agent``).

platform-client.test.ts runs this with the project's Python and asks it, one JSON line per request on stdin,
to open agents and call their methods; it answers one JSON line per request on stdout, in order. The point is
that the platform's client parses our answers with its own code (pydantic models, .npy serde, its error
mapping), so the answers carry what that code returns or raises, not what the wire held.

Requests (``id`` is echoed back):
  {"id": 1, "op": "open", "name": "dqn", "endpoint": "http://127.0.0.1:1234", "api_key": "k", "probe": true}
  {"id": 2, "op": "call", "name": "dqn", "method": "get_action", "kwargs": {...}}

Answers: ``{"id": 1, "returned": <value>}`` or ``{"id": 1, "raised": {"type", "status_code", "detail", "message"}}``;
a streaming method also reports the ``pieces`` it yielded before it raised.

Values cross as JSON with two tags: ``{"__array__": nested list, "dtype": "float32", "shape": [...]}`` is a NumPy
array and ``{"__tuple__": [...]}`` a tuple. A pydantic model comes back as ``{"__model__": class name,
"fields": ...}``, so a test sees which of the client's models it parsed into.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
from agilerl.arena import Agent
from pydantic import BaseModel


def decode(value: Any) -> Any:
    """The Python value of a tagged JSON value."""
    if isinstance(value, dict):
        if "__array__" in value:
            arr = np.asarray(value["__array__"], dtype=value.get("dtype"))
            shape = value.get("shape")
            return arr.reshape(shape) if shape is not None else arr
        if "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def encode(value: Any) -> Any:
    """The tagged JSON value of what the client returned."""
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": value.dtype.name, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, BaseModel):
        return {"__model__": type(value).__name__, "fields": encode(value.model_dump())}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def describe(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "status_code": getattr(exc, "status_code", None),
        "detail": getattr(exc, "detail", None),
        "message": str(exc),
    }


class Driver:
    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "open":
            return self.open(request)
        if op == "call":
            return self.call(request)
        return {"raised": {"type": "DriverError", "message": f"unknown op {op!r}"}}

    def open(self, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request["name"])
        old = self.agents.pop(name, None)
        if old is not None:
            old.close()
        # Whatever the client raises is the answer under test: it is reported, and the driver goes on.
        try:
            agent = Agent(
                str(request["endpoint"]), api_key=request.get("api_key"), probe_on_init=bool(request.get("probe", True))
            )
        except Exception as exc:  # noqa: BLE001
            return {"raised": describe(exc)}
        self.agents[name] = agent
        return {"returned": encode(agent.metadata)}

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        agent = self.agents.get(str(request["name"]))
        if agent is None:
            return {"raised": {"type": "DriverError", "message": f"no agent {request['name']!r} is open"}}
        method = getattr(agent, str(request["method"]))
        kwargs = decode(request.get("kwargs") or {})
        pieces: list[str] = []
        try:
            result = method(**kwargs)
            if isinstance(result, Iterator):
                # generate_stream is lazy: nothing is sent until it is iterated.
                for piece in result:
                    pieces.append(piece)
                return {"returned": pieces}
            return {"returned": encode(result)}
        except Exception as exc:  # noqa: BLE001
            answer: dict[str, Any] = {"raised": describe(exc)}
            if pieces:
                answer["pieces"] = pieces
            return answer

    def close(self) -> None:
        for agent in self.agents.values():
            agent.close()


def main() -> None:
    driver = Driver()
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            answer = driver.handle(request)
            answer["id"] = request.get("id")
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        driver.close()


if __name__ == "__main__":
    main()
