"""``python -m arena_agilerl.llm_engine --checkpoint PATH``: an LLM checkpoint of this trainer served with
transformers' own generation, over the part of SGLang's native HTTP API that ``arena-runtime serve`` speaks
(runtime/serve/engine.ts). It stands in for vLLM or SGLang where no engine runs (CPU); the checkpoint is the base
model its ``arena-checkpoint.json`` names with AgileRL's LoRA adapter (PEFT) merged in, or AgileRL's full weights.

- ``GET /health``: 200 once the model is loaded, 503 before.
- ``POST /generate`` ``{text: str | [str], sampling_params: {max_new_tokens, temperature, top_p}, stream?}``:
  ``{text, meta_info: {prompt_tokens, completion_tokens}}`` per prompt (a list for a list), or with ``stream:
  true`` server-sent events ``data: {"text": <completion so far>, ...}`` and ``data: [DONE]``.

The process prints ``arena-llm-engine: listening on http://HOST:PORT`` once it listens (``--port 0`` picks one)
and ``arena-llm-engine: loaded ...`` once it can generate.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

METADATA = "arena-checkpoint.json"


class Model:
    def __init__(self, checkpoint: Path, device: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        meta = json.loads((checkpoint / METADATA).read_text(encoding="utf-8"))
        if not meta.get("llm"):
            raise ValueError(f"{checkpoint} is not an LLM checkpoint (it holds {meta.get('algorithm')})")
        base = str(meta["base_model"])
        agent = checkpoint / str(meta.get("agent", "agent"))
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base)
        adapter = agent / "actor"
        if (adapter / "adapter_config.json").is_file():
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        else:
            state = torch.load(agent / "attributes.pt", weights_only=False, map_location="cpu")
            weights = state.get("network_info", {}).get("modules", {}).get("actor_state_dict")
            if weights is None:
                raise ValueError(f"{agent} holds neither a LoRA adapter nor the actor's weights")
            model.load_state_dict(weights, strict=False)
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.device = device
        self.description = f"{meta.get('algorithm')} step {meta.get('step')} on {base} ({meta.get('weights')})"
        # One generation at a time: the model is shared and CPU threads are few.
        self.lock = threading.Lock()

    def _kwargs(self, sampling: dict[str, Any]) -> dict[str, Any]:
        temperature = float(sampling.get("temperature", 0.7))
        kwargs: dict[str, Any] = {
            "max_new_tokens": int(sampling.get("max_new_tokens", 100)),
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=float(sampling.get("top_p", 1.0)))
        else:
            kwargs.update(do_sample=False)
        return kwargs

    def _encode(self, prompt: str) -> Any:
        import torch

        inputs = self.tokenizer(prompt, return_tensors="pt")
        if inputs["input_ids"].shape[1] == 0:
            # An empty prompt: generation starts from the BOS token (else EOS), as transformers does without input.
            start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
            inputs = {"input_ids": torch.tensor([[start]]), "attention_mask": torch.tensor([[1]])}
        return {k: v.to(self.device) for k, v in inputs.items()}

    def generate(self, prompt: str, sampling: dict[str, Any]) -> dict[str, Any]:
        import torch

        inputs = self._encode(prompt)
        with self.lock, torch.no_grad():
            out = self.model.generate(**inputs, **self._kwargs(sampling))
        new = out[0][inputs["input_ids"].shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return {
            "text": text,
            "meta_info": {"prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": int(new.shape[0])},
        }

    def stream(self, prompt: str, sampling: dict[str, Any]) -> Any:
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._encode(prompt)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self.lock, torch.no_grad():
                    self.model.generate(**inputs, **self._kwargs(sampling), streamer=streamer)
            except BaseException as err:  # noqa: BLE001 - reported to the client as an error event
                failure.append(err)
                streamer.end()  # type: ignore[no-untyped-call]

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        text = ""
        for piece in streamer:
            text += piece
            if piece:
                yield {"text": text}
        worker.join()
        if failure:
            raise failure[0]


class Handler(BaseHTTPRequestHandler):
    model: Model | None = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200 if self.model is not None else 503, {"loaded": self.model is not None})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as err:
            self._json(400, {"error": {"message": f"not JSON: {err}"}})
            return
        if self.path != "/generate":
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        model = self.model
        if model is None:
            self._json(503, {"error": {"message": "the model is still loading"}})
            return
        text = body.get("text")
        sampling = body.get("sampling_params") or {}
        if not (isinstance(text, str) or (isinstance(text, list) and all(isinstance(t, str) for t in text))):
            self._json(400, {"error": {"message": "text: expected a string or a list of strings"}})
            return
        if body.get("stream"):
            if not isinstance(text, str):
                self._json(400, {"error": {"message": "text: a stream takes one prompt"}})
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for event in model.stream(text, sampling):
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                return
            except Exception as err:  # noqa: BLE001 - the stream's error event
                self.wfile.write(f"data: {json.dumps({'error': {'message': str(err)}})}\n\n".encode())
            return
        try:
            answers = [model.generate(t, sampling) for t in ([text] if isinstance(text, str) else text)]
        except Exception as err:  # noqa: BLE001 - answered as the engine's failure
            self._json(500, {"error": {"message": str(err)}})
            return
        self._json(200, answers[0] if isinstance(text, str) else answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="arena_agilerl.llm_engine")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"arena-llm-engine: listening on http://{args.host}:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import torch

    torch.set_num_threads(1)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = Model(Path(args.checkpoint), device)
    Handler.model = model
    print(f"arena-llm-engine: loaded {model.description} on {device}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
