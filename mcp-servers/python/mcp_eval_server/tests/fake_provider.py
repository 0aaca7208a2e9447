"""A real HTTP server on 127.0.0.1 that imitates OpenAI chat completions and Anthropic Messages with scripted replies.

Used by the judge tests, the end-to-end tests and the benchmark. Each request pops the next scripted `Reply`
(or asks `responder` when the script is empty), so tests choose statuses, headers, latency and bodies exactly.
Requests are recorded (path, headers, JSON body) so tests can assert what the judge sent. `SilentProvider` accepts
connections and never answers: the fixture for the judge-call deadline.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str | None = None  # model text, wrapped in the API shape of the request path
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: str | None = None  # sent verbatim instead of an API-shaped body
    delay_s: float = 0.0
    usage: tuple[int, int] = (100, 20)


def api_body(path: str, text: str, usage: tuple[int, int], model: str = "fake-model") -> dict[str, Any]:
    if path.endswith("/v1/messages"):
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


class FakeProvider:
    """Context manager running the server in a daemon thread; `url` is its base URL."""

    def __init__(self, responder: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.script: list[Reply] = []
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes; avoid the 40 ms delayed ACK

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                request = {"path": self.path, "headers": dict(self.headers), "body": body}
                with provider._lock:
                    provider.requests.append(request)
                    reply = provider.script.pop(0) if provider.script else None
                if reply is None:
                    reply = provider.responder(request) if provider.responder else Reply(text="{}")
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = (
                    reply.raw_body
                    if reply.raw_body is not None
                    else json.dumps(api_body(self.path, reply.text or "", reply.usage))
                )
                data = payload.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


def last_user_text(request: dict[str, Any]) -> str:
    """The final user message of an OpenAI- or Anthropic-shaped request body."""
    return request["body"]["messages"][-1]["content"]


class SilentProvider:
    """A real TCP server on 127.0.0.1 that accepts every connection and never answers (nor closes it).

    The hanging-provider case: the judge's connection succeeds, its request is sent, and no byte ever comes back.
    `connections` counts accepted connections, so tests can see how many attempts were made.
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)  # kept open and never read: the client waits for an answer that never comes

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SilentProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._open:
            conn.close()
        self._sock.close()
