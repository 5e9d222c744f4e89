"""A local HTTP server on 127.0.0.1 that answers as the Anthropic Messages API does, from a script.

The SDK talks HTTP through httpx2, so tests point it here with ANTHROPIC_BASE_URL (or base_url=) rather than
mocking a transport. `respond(body, server)` returns what to answer each POST /v1/messages: a message dict (see
`message`), or (status, error dict[, headers]). A wrong API key gets a 401, as the API answers. `message` takes
any stop_reason (max_tokens, model_context_window_exceeded, refusal...) and `thinking` makes a thinking block.
`capabilities` (a dict as the Models API returns it, see `capabilities`) is served with GET /v1/models/ID.

Run by hand (for `hf-autoresearch run --agent claude` against it):
    python tests/fake_anthropic.py --port 8765 [--dump DIR]   then   ANTHROPIC_BASE_URL=http://127.0.0.1:8765
    ANTHROPIC_API_KEY=test-key hf-autoresearch run ...   (--dump DIR keeps every request body as JSON)
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API_KEY = "test-key"
USAGE = {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def thinking(summary: str, signature: str = "sig-fake") -> dict:
    """A thinking block as adaptive thinking returns it with display "summarized"."""
    return {"type": "thinking", "thinking": summary, "signature": signature}


def capabilities(efforts=("low", "medium", "high", "max"), thinking_types=("adaptive", "disabled")) -> dict:
    """A ModelInfo `capabilities` object supporting the given effort levels and thinking types."""

    def support(flag: bool) -> dict:
        return {"supported": flag}

    levels = ("low", "medium", "high", "xhigh", "max")
    kinds = ("adaptive", "between_tools", "disabled", "enabled")
    no = support(False)
    return {
        "batch": no,
        "citations": no,
        "code_execution": no,
        "context_management": {"supported": False},
        "effort": {"supported": bool(efforts), **{level: support(level in efforts) for level in levels}},
        "image_input": no,
        "pdf_input": no,
        "server_tools": {"supported": False},
        "structured_outputs": no,
        "thinking": {"supported": bool(thinking_types), "types": {k: support(k in thinking_types) for k in kinds}},
    }


def tool_use(name: str, **tool_input) -> dict:
    return {"type": "tool_use", "id": "", "name": name, "input": tool_input}


def message(*blocks: dict, stop_reason: str | None = None, usage: dict | None = None) -> dict:
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {"content": list(blocks), "stop_reason": stop_reason, "usage": dict(usage or USAGE)}


def overloaded(retry_after_ms: int = 10):
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return 529, error, {"retry-after-ms": str(retry_after_ms)}


def scripted(*answers):
    """Answer the n-th request with answers[n]; past the end, repeat the last one."""

    def respond(body, server):
        return answers[min(len(server.requests) - 1, len(answers) - 1)]

    return respond


def editing(edits: list[tuple[str, str]], finish_after: int | None = None):
    """A conversation per experiment: view train.py, replace the first applicable `old` by `new`, finish.

    Experiment k starts at edits[k % len(edits)] and takes the first edit whose `old` is in the train.py shown in
    the prompt. With `finish_after=n`, conversations after the n-th never finish (they view train.py forever).
    """

    def respond(body, server):
        messages = body["messages"]
        conversations = sum(1 for r in server.requests if len(r["messages"]) == 1)
        source = re.search(r"```python\n(.*)```", messages[0]["content"], re.S).group(1)
        if finish_after is not None and conversations > finish_after:
            return message(tool_use("str_replace_based_edit_tool", command="view", path="train.py"))
        step = len(messages) // 2
        if step == 0:
            return message(
                text("Looking at the script first."),
                tool_use("str_replace_based_edit_tool", command="view", path="train.py"),
            )
        start = (conversations - 1) % len(edits)
        old, new = next(((o, n) for o, n in edits[start:] + edits[:start] if o in source), edits[start])
        if step == 1:
            return message(
                tool_use(
                    "str_replace_based_edit_tool", command="str_replace", path="train.py", old_str=old, new_str=new
                )
            )
        return message(tool_use("finish_experiment", description=f"Set {new.strip()}"))

    return respond


class FakeAnthropic:
    def __init__(
        self,
        respond,
        api_key: str = API_KEY,
        models: tuple[str, ...] = ("claude-sonnet-5-5",),
        model_capabilities: dict | None = None,
    ):
        self.respond = respond
        self.api_key = api_key
        self.models = models
        self.model_capabilities = model_capabilities
        self.requests: list[dict] = []  # every POST /v1/messages body, retries included
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", "req_fake")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                # this SDK sends the key as `Authorization: Bearer KEY`; older ones as `x-api-key: KEY`
                sent = self.headers.get("x-api-key") or self.headers.get("authorization", "").removeprefix("Bearer ")
                if sent == fake.api_key:
                    return True
                error = {"type": "authentication_error", "message": "invalid x-api-key"}
                self._send(401, {"type": "error", "error": error})
                return False

            def do_GET(self):
                if not self._authorised():
                    return
                model = self.path.rsplit("/", 1)[-1]
                if not self.path.startswith("/v1/models/") or model not in fake.models:
                    error = {"type": "not_found_error", "message": f"model: {model}"}
                    return self._send(404, {"type": "error", "error": error})
                info = {"type": "model", "id": model, "display_name": model, "created_at": "2026-01-01T00:00:00Z"}
                if fake.model_capabilities is not None:
                    info["capabilities"] = fake.model_capabilities
                self._send(200, {**info, "lifecycle": "active"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                if not self._authorised():
                    return
                with fake.lock:
                    fake.requests.append(body)
                    answer = fake.respond(body, fake)
                    number = len(fake.requests)
                if isinstance(answer, tuple):
                    return self._send(*answer)
                content = [dict(block) for block in answer["content"]]
                for i, block in enumerate(content):
                    if block["type"] == "tool_use":
                        block["id"] = f"toolu_{number}_{i}"
                payload = {
                    "id": f"msg_{number}",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": content,
                    "stop_reason": answer["stop_reason"],
                    "stop_sequence": None,
                    "usage": answer["usage"],
                }
                self._send(200, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeAnthropic:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


INTENT_EDITS = [
    ("LEARNING_RATE = 5e-5 ", "LEARNING_RATE = 3e-4 "),
    ("WARMUP = 0.1 ", "WARMUP = 0.0 "),
    ("BATCH_SIZE = 32 ", "BATCH_SIZE = 16 "),
    ('LR_SCHEDULER = "linear" ', 'LR_SCHEDULER = "cosine" '),
]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a fake Messages API editing the intent-categorization train.py")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dump", help="write each request body to DIR/request-NNN.json (to read what is sent)")
    args = parser.parse_args()
    respond = editing(INTENT_EDITS)
    if args.dump:
        folder = Path(args.dump)
        folder.mkdir(parents=True, exist_ok=True)

        def respond(body, server, answer=respond):  # noqa: F811 (the editing conversation, plus a copy on disk)
            (folder / f"request-{len(server.requests):03d}.json").write_text(json.dumps(body, indent=1))
            return answer(body, server)

    fake = FakeAnthropic(respond)
    fake.server.server_close()
    fake.server = ThreadingHTTPServer(("127.0.0.1", args.port), fake.server.RequestHandlerClass)
    print(f"fake Messages API on http://127.0.0.1:{args.port} (ANTHROPIC_API_KEY={API_KEY})", flush=True)
    fake.server.serve_forever()
