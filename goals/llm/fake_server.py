"""A small OpenAI-compatible server for tests: `POST /v1/chat/completions` on 127.0.0.1.

It checks the bearer key and the model, records each request, and answers with a short
draft that quotes the prompt's figures line (so a test can see they reached the model).
`fail_next(status, times)` makes the next requests fail with that status (429 with
`Retry-After: 0`).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLM:
    def __init__(self, key: str = "sk-test-" + "k" * 32, model: str = "fake-model") -> None:
        self.key = key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def fail_next(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def _next_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def answer(self, body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        figures = next((line for line in prompt.splitlines() if "progress" in line.lower()), "")
        return f"On track overall. {figures.strip()} Next: keep the weekly pace."

    def __enter__(self) -> "FakeLLM":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any], **headers: str) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if self.headers.get("Authorization") != f"Bearer {fake.key}":
                    self._send(401, {"error": {"message": "Incorrect API key provided"}})
                    return
                failure = fake._next_failure()
                if failure is not None:
                    self._send(failure, {"error": {"message": "busy"}}, **{"Retry-After": "0"})
                    return
                if body.get("model") != fake.model:
                    self._send(404, {"error": {"message": f"model {body.get('model')} unknown"}})
                    return
                self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "model": fake.model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": fake.answer(body)},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
