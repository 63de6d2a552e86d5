"""The one test HTTP server: real HTTP (or HTTPS) on 127.0.0.1, answering from a route table or a
callable, and recording every request with the answer it got.

Used only for answers no real server here produces on demand: ZOO-Project-DRU's shapes (copied
from the seed), a proxy's HTML 502 page, 429 with Retry-After, Part 2 wire format before a
Part 2 server exists, a certificate the client must refuse, a CWL file to deploy by reference;
and, with :func:`forwarding_to`, as a counting pass-through in front of a real server. It speaks
real HTTP, so the client's whole transport stack is exercised.

::

    server = ReplayServer().start()                      # or ``with ReplayServer() as server:``
    server.route("GET", "/ogc/jobs/j1", Reply(503), Reply(200, {"status": "running"}))
    server = ReplayServer(handler=forwarding_to(real.url))  # every answer from a callable
    server = ReplayServer(tls=(cert_pem, key_pem))        # HTTPS; ``server.url`` starts https://
    server.requests, server.hits("GET", path), server.count("GET", regex, status=200), server.wait_for(...)
    server.max_in_flight                                  # most requests answered at once
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    """
    One canned answer. ``body`` dicts/lists are sent as JSON; ``reset`` drops the connection.

    ``{base}`` in a str or JSON body and in header values becomes the server's URL. ``headers`` may
    be a list of pairs to repeat a name; ``content_type=""`` sends no ``Content-Type`` at all.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0
    reset: bool = False
    reason: str | None = None

    def encoded(self, base_url: str) -> tuple[bytes, str]:
        body = self.body
        if isinstance(body, (dict, list)):
            text = json.dumps(body).replace("{base}", base_url)
            return text.encode(), _default(self.content_type, "application/json")
        if isinstance(body, str):
            return body.replace("{base}", base_url).encode(), _default(self.content_type, "text/plain")
        if isinstance(body, bytes):
            return body, _default(self.content_type, "application/octet-stream")
        return b"", _default(self.content_type, "application/json")

    def header_items(self) -> list[tuple[str, str]]:
        return list(self.headers.items()) if isinstance(self.headers, dict) else list(self.headers)


def _default(content_type: str | None, fallback: str) -> str:
    return fallback if content_type is None else content_type


@dataclass
class Recorded:
    """
    One request as it reached the server, and (once answered) the answer's status and body.

    ``path`` is without the query, ``target`` the request line's target as sent. ``status`` stays
    ``None`` while the request is being answered, and for a dropped connection.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    target: str = ""
    status: int | None = None
    answer: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Recorded], Reply | None]
"""Answers a request (``None``: fall back to the route table). Runs on the server's request thread."""


class ReplayServer:
    """
    Serve ``Reply`` objects per (method, path), the last reply of a route repeating; or ask ``handler``.

    :param handler: called first for every request; a ``Reply`` it returns is sent, ``None`` falls
        back to the routes (no route: a 404 problem document).
    :param tls: a (certificate chain, private key) pair of PEM files: serve HTTPS. The handshake runs
        on the first read, so a client refusing the certificate leaves no request recorded.
    """

    def __init__(self, handler: Handler | None = None, *, tls: tuple[Path, Path] | None = None) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Recorded] = []
        self.handler = handler
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being answered at once
        self._changed = threading.Condition()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def route(self, method: str, path: str, *replies: Reply) -> None:
        with self._changed:
            self.routes[(method.upper(), path)] = list(replies)

    def hits(self, method: str, path: str) -> list[Recorded]:
        """Every request (answered or not) with this method and exactly this path."""
        with self._changed:
            return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def count(
        self, method: str | None = None, path: str = "", status: int | None = None, answer: str | None = None
    ) -> int:
        """Answered requests with this method, a path matching ``path`` (a regex), this status and
        ``answer`` in the answer's body."""
        with self._changed:
            return self._count_locked(method, path, status, answer)

    def wait_for(
        self,
        method: str | None = None,
        path: str = "",
        status: int | None = None,
        answer: str | None = None,
        timeout: float = 60,
    ) -> None:
        """Block until an answered request like this was recorded (a bound, not a timing assertion)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._count_locked(method, path, status, answer), timeout):
                raise AssertionError(f"no {method} {path} answered {status} within {timeout} s")

    def _count_locked(self, method: str | None, path: str, status: int | None, answer: str | None) -> int:
        return sum(
            1
            for r in self.requests
            if r.status is not None
            and (method is None or r.method == method.upper())
            and re.fullmatch(path or ".*", r.path)
            and (status is None or r.status == status)
            and (answer is None or answer.encode() in r.answer)
        )

    def _next_reply(self, request: Recorded) -> Reply:
        if self.handler is not None:
            reply = self.handler(request)
            if reply is not None:
                return reply
        with self._changed:
            replies = self.routes.get((request.method, request.path))
            if not replies:
                return Reply(
                    404, {"type": "not-found", "title": "Not Found", "detail": f"no route {request.path}"}
                )
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _answered(self, request: Recorded, status: int, answer: bytes) -> None:
        with self._changed:  # recorded before the client sees the answer
            request.status, request.answer = status, answer
            self._changed.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Recorded(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers), body, self.path
                )
                with server._changed:
                    server.requests.append(request)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server._changed.notify_all()
                try:
                    self._answer(request)
                finally:
                    with server._changed:
                        server.in_flight -= 1

            def _answer(self, request: Recorded) -> None:
                reply = server._next_reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.reset:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload, content_type = reply.encoded(server.url)
                server._answered(request, reply.status, payload)
                self.send_response(reply.status, reply.reason)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.header_items():
                    self.send_header(key, value.replace("{base}", server.url))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return RequestHandler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A refused TLS handshake (it runs on the handler's first read) or a client gone away is no error.
        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            super().handle_error(request, client_address)


# Headers that belong to one connection, not to the message a pass-through forwards.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"})


def forwarding_to(upstream: str) -> Handler:
    """
    A handler passing every request to a real server on loopback and its answer back unchanged.

    Only the client's view of the origin differs, so absolute URLs the real server advertises
    (pygeoapi's ``Location``) point to another host, as behind any reverse proxy.

    :param upstream: the real server's base URL.
    """
    parts = urlsplit(upstream)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)

    def forward(request: Recorded) -> Reply:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(*address, timeout=120)
        try:
            connection.request(request.method, request.target, body=request.body or None, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        dropped = HOP_BY_HOP | {"content-length", "server", "date", "content-type"}
        return Reply(
            answer.status,
            data,
            headers=[(k, v) for k, v in answer.getheaders() if k.lower() not in dropped],
            content_type=answer.getheader("Content-Type") or "",
            reason=answer.reason,
        )

    return forward
