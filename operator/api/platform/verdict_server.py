"""The Arena platform's own manifest verdict, served to the operator over JSON lines.

The operator, its webhook, the runtime and ``kubectl arena manifest`` ask this process, so every layer refuses
exactly what the platform refuses: the verdict is the platform's ``agilerl.arena.models.verdict``, not a copy of
its rules. One request per line on stdin, one answer per line on stdout, in order. A request that breaks the
platform's code is answered as a refusal with the exception named; it never ends the process.

Requests (``id`` is echoed back):
  {"id": 1, "op": "verdict", "document": {...}}   a manifest already parsed (from an Experiment)
  {"id": 2, "op": "verdict_yaml", "text": "..."}  a manifest file's text, read as the platform reads one
  {"id": 3, "op": "parse_yaml", "text": "..."}    the document the platform reads from that text, as JSON
  {"id": 4, "op": "schema"}                       the platform's manifest JSON Schema
  {"id": 5, "op": "registry"}                     the platform's algorithm registry
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from agilerl.arena.models import __version__ as manifest_version
from agilerl.arena.models import verdict as platform
from agilerl.arena.models.algorithms.base import LLMAlgorithmSpec, MultiAgentAlgorithmSpec
from agilerl.arena.models.manifest import API_VERSION, TrainingManifest
from agilerl.arena.models.registry import MANIFEST_REGISTRY
from agilerl.arena.models.schema import manifest_schema
from pydantic import ValidationError

JSON = dict[str, Any]


def field_of(loc: Sequence[Any], document: object) -> str:
    """The dotted path of a pydantic error location, as a field of *document*.

    pydantic puts union labels (an ``env_type`` tag such as ``gym``, a model's class name, ``function-after[...]``)
    into a location between real keys. A label the document does not hold at that point is left out, so
    ``environment.gym.num_envs`` names the field the user wrote, ``environment.num_envs``.
    """
    parts: list[str] = []
    node: object = document
    for i, entry in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(entry, int) and isinstance(node, list):
            if parts:
                parts[-1] = f"{parts[-1]}[{entry}]"
            node = node[entry] if 0 <= entry < len(node) else None
            continue
        key = str(entry)
        if isinstance(node, Mapping) and key in node:
            parts.append(key)
            node = node[key]
        elif not _is_label(key):
            parts.append(key)
            node = None
        elif last:
            # A model validator of a union member reports at the member's label: the error is the section's.
            break
    return ".".join(parts)


def _is_label(key: str) -> bool:
    return "[" in key or key[:1].isupper() or key in _UNION_TAGS


def _union_tags() -> frozenset[str]:
    tags: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, Mapping):
            discriminator = node.get("discriminator")
            if isinstance(discriminator, Mapping):
                mapping = discriminator.get("mapping")
                if isinstance(mapping, Mapping):
                    tags.update(str(k) for k in mapping)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(manifest_schema())
    for _, spec in MANIFEST_REGISTRY.items():
        tags.add(str(spec.env_type))
    return frozenset(tags)


_UNION_TAGS = _union_tags()


def verdict(document: object) -> JSON:
    """The platform's verdict on *document*, with each error's field named against the document.

    The same steps as the platform's ``verdict()`` (validate, then ``to_payload``), taken here once so that a refusal
    keeps pydantic's own error locations, which ``field_of`` needs, without validating the document a second time.
    """
    try:
        manifest = TrainingManifest.model_validate(document)
        return {"ok": True, "payload": manifest.to_payload()}
    except ValidationError as err:
        errors = [
            {
                "path": platform.loc_to_path(e["loc"]),
                "field": field_of(e["loc"], document),
                "message": e["msg"],
                "kind": e["type"],
            }
            for e in err.errors()
        ]
    except ValueError as err:
        errors = [{**e, "field": e["path"]} for e in platform.errors(err)]
    except Exception as err:  # noqa: BLE001 - the platform's code crashed on this input: that is a refusal
        message = f"the platform's validator failed on this manifest: {err!r}"
        errors = [{"path": "", "field": "", "message": message, "kind": "crash"}]
    return {"ok": False, "errors": errors}


def read_yaml(text: str) -> object:
    """The document the platform reads from a manifest file (PyYAML's safe loader, YAML 1.1)."""
    return yaml.safe_load(text)


def _non_string_key(value: object) -> object:
    """A mapping key that is not a string (YAML 1.1 reads `no:` as False), which json.dumps would quietly rename."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return k
            found = _non_string_key(v)
            if found is not None:
                return found
    elif isinstance(value, list):
        for v in value:
            found = _non_string_key(v)
            if found is not None:
                return found
    return None


def registry() -> list[JSON]:
    entries = []
    for name, spec in MANIFEST_REGISTRY.items():
        family = (
            "llm"
            if issubclass(spec, LLMAlgorithmSpec)
            else "multi-agent"
            if issubclass(spec, MultiAgentAlgorithmSpec)
            else "single-agent"
        )
        entries.append(
            {
                "name": name,
                "spec": spec.__name__,
                "family": family,
                "envType": str(spec.env_type),
                "offline": bool(spec.offline),
                "bandit": bool(spec.bandit),
                "offPolicy": bool(spec.off_policy),
            }
        )
    return entries


def answer(request: Mapping[str, Any]) -> JSON:
    op = request.get("op")
    if op == "verdict":
        return verdict(request.get("document"))
    if op == "verdict_yaml" or op == "parse_yaml":
        try:
            document = read_yaml(str(request.get("text", "")))
        except yaml.YAMLError as err:
            return {"ok": False, "unreadable": True, "message": f"not YAML: {err}"}
        if op == "parse_yaml":
            key = _non_string_key(document)
            if key is not None:
                return {"ok": False, "unreadable": True, "message": f"holds the key {key!r}, and JSON keys are strings"}
            try:
                return {"ok": True, "document": json.loads(json.dumps(document, allow_nan=False))}
            except (TypeError, ValueError) as err:
                return {"ok": False, "unreadable": True, "message": f"holds a value JSON cannot carry: {err}"}
        return verdict(document)
    if op == "schema":
        return {"ok": True, "schema": manifest_schema()}
    if op == "registry":
        return {"ok": True, "registry": registry()}
    if op == "hello":
        return {"ok": True, "manifestVersion": manifest_version, "apiVersion": API_VERSION}
    return {"ok": False, "message": f"unknown op {op!r}"}


def strict_json(value: object) -> str:
    """JSON that any parser reads: a value JSON has no word for (``.inf``, ``.nan``, a date) is written as text."""
    try:
        return json.dumps(value, allow_nan=False, default=str)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False, default=str)


def _finite(value: object) -> object:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        request_id: object = None
        try:
            request = json.loads(line)
            request_id = request.get("id") if isinstance(request, dict) else None
            reply = answer(request) if isinstance(request, dict) else {"ok": False, "message": "a request is a JSON object"}
        except Exception as err:  # noqa: BLE001 - one bad request must not end the service
            reply = {"ok": False, "message": f"request failed: {err!r}"}
        sys.stdout.write(strict_json({"id": request_id, **reply}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
