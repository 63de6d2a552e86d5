"""A real HTTP server on 127.0.0.1 that answers from a route table and records every request.

Used only for answers no real server here produces on demand: ZOO-Project-DRU's shapes (copied
from the seed), a proxy's HTML 502 page, 429 with Retry-After, Part 2 wire format before a
Part 2 server exists. It speaks real HTTP, so the hook's whole transport stack is exercised.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    """One canned answer. ``body`` dicts/lists are sent as JSON; ``reset`` drops the connection."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0
    reset: bool = False

    def encoded(self, base_url: str) -> tuple[bytes, str]:
        body = self.body
        if isinstance(body, (dict, list)):
            text = json.dumps(body).replace("{base}", base_url)
            return text.encode(), self.content_type or "application/json"
        if isinstance(body, str):
            return body.replace("{base}", base_url).encode(), self.content_type or "text/plain"
        if isinstance(body, bytes):
            return body, self.content_type or "application/octet-stream"
        return b"", self.content_type or "application/json"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ReplayServer:
    """Serve ``Reply`` objects per (method, path); the last reply of a route repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being answered at once
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def route(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self.routes[(method.upper(), path)] = list(replies)

    def hits(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def _next_reply(self, method: str, path: str) -> Reply:
        with self._lock:
            replies = self.routes.get((method, path))
            if not replies:
                return Reply(404, {"type": "not-found", "title": "Not Found", "detail": f"no route {path}"})
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                with server._lock:
                    server.requests.append(
                        Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
                    )
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(parts.path)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, path: str) -> None:
                reply = server._next_reply(self.command, path)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.reset:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload, content_type = reply.encoded(server.url)
                self.send_response(reply.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value.replace("{base}", server.url))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler
