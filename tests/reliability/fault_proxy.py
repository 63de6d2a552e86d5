"""A fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1, in front of a real server.

For a seeded share of requests it answers, or fails, the way gateways and flaky networks do:

* ``error``: a 500, 502 or 503 page (HTML or JSON) made by the proxy, never forwarded;
* ``throttle``: 429 with ``Retry-After: 1``, never forwarded;
* ``reset``: the connection is reset once the request has been read, never forwarded;
* ``stall``: the request is read and held, never forwarded, until the client gives up and closes
  (or ``max_stall`` passes); then the connection is closed;
* ``lost_reset``: the request **is** forwarded and answered upstream, then the client's connection
  is reset instead of relaying the answer (the response is lost);
* ``lost_stall``: forwarded and answered upstream, then held until the client gives up.

Answers that are relayed have the upstream base URL rewritten to the proxy's in ``Location`` and in
textual bodies (JSON links, pygeoapi's ``next`` pages), so every link stays on the proxy origin.
Every request is recorded with the fault it got. Faults can be forced for the next requests of a
method (and path pattern), before the random plan applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import re
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

FAULT_KINDS = ("error", "throttle", "reset", "stall", "lost_reset", "lost_stall")
# Faults after which the request reached the upstream server.
FORWARDING_FAULTS = frozenset({"lost_reset", "lost_stall"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",  # httpx decodes bodies; they are relayed as identity
        "host",
        "accept-encoding",
    }
)
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Fault:
    """
    One injected fault.

    :param kind: one of :data:`FAULT_KINDS`.
    :param status: the status of an ``error`` page (500, 502 or 503).
    :param html: whether an ``error`` page is HTML (else JSON).
    """

    kind: str
    status: int = 0
    html: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "error" and self.status not in (500, 502, 503):
            raise ValueError("an error fault needs status 500, 502 or 503")


@dataclass
class ProxiedRequest:
    """What the proxy saw and did for one request."""

    method: str
    target: str  # path and query, as the client sent it
    fault: Fault | None
    forwarded: bool = False
    upstream_status: int | None = None
    client_status: int | None = None  # what the client was sent, if anything
    client_gave_up: bool | None = None  # for stalls: the client closed (True) or max_stall passed (False)
    upstream_response: httpx.Response | None = field(default=None, repr=False, compare=False)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass
class _Forced:
    method: str
    pattern: re.Pattern[str] | None
    faults: list[Fault | None] = field(default_factory=list)


class FaultProxy:
    """
    A reverse proxy on a free 127.0.0.1 port (its own event loop in a daemon thread).

    :param upstream: the real server's base URL (no trailing slash).
    :param seed: seed of the random fault plan.
    :param share: the share of requests that get a random fault (0-1).
    :param kinds: the fault kinds the random plan draws from (uniformly, or by ``weights``).
    :param weights: relative weight of each of ``kinds``.
    :param max_stall: longest a stalled connection is held if the client never gives up, in seconds.
    :param on_forwarded: called (in a worker thread) with the record and the upstream response
        after a ``lost_*`` request was answered upstream and before its answer is dropped.
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        share: float = 0.3,
        kinds: Sequence[str] = FAULT_KINDS,
        weights: Sequence[float] | None = None,
        max_stall: float = 30.0,
        on_forwarded: Callable[[ProxiedRequest, httpx.Response], None] | None = None,
    ) -> None:
        for kind in kinds:
            Fault(kind, status=500)  # validates the kind
        self.upstream = upstream.rstrip("/")
        self.share = share
        self.kinds = list(kinds)
        self.weights = list(weights) if weights is not None else None
        self.max_stall = max_stall
        self.on_forwarded = on_forwarded
        self.requests: list[ProxiedRequest] = []
        self._rng = random.Random(seed)
        self._forced: list[_Forced] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._client: httpx.AsyncClient | None = None
        self._upstream_pattern = re.compile(re.escape(self.upstream.encode()) + rb"(?![0-9])")
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        # trust_env=False: never send loopback traffic through a proxy from the environment.
        self._client = httpx.AsyncClient(trust_env=False, timeout=120, follow_redirects=False)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=MAX_HEADER_BYTES)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the plan

    def reset(
        self,
        *,
        seed: int = 0,
        share: float | None = None,
        weights: Sequence[float] | None = None,
        on_forwarded: Callable[[ProxiedRequest, httpx.Response], None] | None = None,
    ) -> FaultProxy:
        """Start a new plan (and forget forced faults and records), keeping the proxy's URL."""
        with self._lock:
            self._rng = random.Random(seed)
            if share is not None:
                self.share = share
            self.weights = list(weights) if weights is not None else None
            self.on_forwarded = on_forwarded
            self._forced.clear()
            self.requests = []
        return self

    def force(self, method: str, *faults: Fault | None, path: str | None = None) -> None:
        """
        Give the next requests of ``method`` (whose path matches the regex ``path``, if given)
        these faults, in order; ``None`` lets one request through untouched. The random plan
        applies once they are used up.
        """
        with self._lock:
            self._forced.append(_Forced(method.upper(), re.compile(path) if path else None, list(faults)))

    def _decide(self, method: str, target: str) -> Fault | None:
        with self._lock:
            path = target.split("?", 1)[0]
            for forced in self._forced:
                if (
                    forced.faults
                    and forced.method == method
                    and (forced.pattern is None or forced.pattern.search(path))
                ):
                    return forced.faults.pop(0)
            if self._rng.random() >= self.share:
                return None
            kind = self._rng.choices(self.kinds, weights=self.weights)[0]
            status = self._rng.choice((500, 502, 503))
            return Fault(kind, status=status, html=self._rng.random() < 0.5)

    # ------------------------------------------------------------------ records

    def records(self, method: str | None = None, path: str | None = None) -> list[ProxiedRequest]:
        """Recorded requests, optionally of one method and with a path matching the regex ``path``."""
        with self._lock:
            found = list(self.requests)
        return [
            r
            for r in found
            if (method is None or r.method == method.upper()) and (path is None or re.search(path, r.path))
        ]

    def fault_kinds(self, method: str | None = None, path: str | None = None) -> set[str]:
        """The kinds of fault injected (for ``error``, also ``error:<status>``)."""
        kinds: set[str] = set()
        for record in self.records(method, path):
            if record.fault is not None:
                kinds.add(record.fault.kind)
                if record.fault.kind == "error":
                    kinds.add(f"error:{record.fault.status}")
        return kinds

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if not await self._serve(request, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            return
        except asyncio.CancelledError:
            return  # the proxy is stopping; ending quietly keeps asyncio from logging the cancellation
        finally:
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; whether the connection stays open for the next."""
        fault = self._decide(request.method, request.target)
        record = ProxiedRequest(request.method, request.target, fault)
        with self._lock:
            self.requests.append(record)
        keep_alive = request.headers.get("connection", "").lower() != "close"
        if fault is None:
            status, headers, body = await self._forward(request, record)
            record.client_status = status
            await _write_response(writer, status, headers, body, close=not keep_alive)
            return keep_alive
        if fault.kind == "error":
            status, headers, body = _error_page(fault)
            record.client_status = status
            await _write_response(writer, status, headers, body, close=not keep_alive)
            return keep_alive
        if fault.kind == "throttle":
            body = json.dumps({"title": "Too Many Requests", "status": 429, "detail": "Slow down"}).encode()
            headers = [("Content-Type", "application/json"), ("Retry-After", "1")]
            record.client_status = 429
            await _write_response(writer, 429, headers, body, close=not keep_alive)
            return keep_alive
        if fault.kind in FORWARDING_FAULTS:
            await self._forward(request, record)
            if self.on_forwarded is not None and record.upstream_response is not None:
                await asyncio.to_thread(self.on_forwarded, record, record.upstream_response)
        if fault.kind in ("reset", "lost_reset"):
            _reset(writer)
        else:  # stall, lost_stall: hold until the client gives up, never answer
            record.client_gave_up = await self._hold(reader)
        return False

    async def _hold(self, reader: asyncio.StreamReader) -> bool:
        """Wait for the client to close its side (it timed out): ``True``; or ``max_stall``: ``False``."""

        async def until_closed() -> None:
            while await reader.read(65536):
                pass

        try:
            await asyncio.wait_for(until_closed(), self.max_stall)
        except asyncio.TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    async def _forward(
        self, request: _Request, record: ProxiedRequest
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._client is not None
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        headers.append(("Accept-Encoding", "identity"))
        try:
            response = await self._client.request(
                request.method, self.upstream + request.target, headers=headers, content=request.body
            )
        except httpx.HTTPError as err:
            body = f"<html><body><h1>502 Bad Gateway</h1><p>upstream: {err}</p></body></html>".encode()
            return 502, [("Content-Type", "text/html")], body
        record.forwarded = True
        record.upstream_status = response.status_code
        record.upstream_response = response
        out = []
        for key, value in response.headers.multi_items():
            if key.lower() in HOP_BY_HOP:
                continue
            if key.lower() in ("location", "content-location"):
                value = self._upstream_pattern.sub(self.url.encode(), value.encode()).decode()
            out.append((key, value))
        body = response.content
        content_type = response.headers.get("content-type", "")
        if any(t in content_type for t in ("json", "text", "html", "xml")) or not content_type:
            body = self._upstream_pattern.sub(self.url.encode(), body)
        return response.status_code, out, body


# ---------------------------------------------------------------------- HTTP helpers


@dataclass
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").strip().split()
    if len(parts) != 3:
        raise ValueError(f"bad request line {line!r}")
    method, target, _version = parts
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(chunks)
    elif headers.get("content-length"):
        body = await reader.readexactly(int(headers["content-length"]))
    return _Request(method.upper(), target, headers, body)


async def _write_response(
    writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes, *, close: bool
) -> None:
    reason = httpx.codes.get_reason_phrase(status) or "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    names = {k.lower() for k, _ in headers}
    if "date" not in names:
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


def _error_page(fault: Fault) -> tuple[int, list[tuple[str, str]], bytes]:
    reason = httpx.codes.get_reason_phrase(fault.status)
    if fault.html:
        body = (
            f"<html><head><title>{fault.status} {reason}</title></head><body>"
            f"<h1>{fault.status} {reason}</h1><hr>fault-proxy</body></html>"
        ).encode()
        return fault.status, [("Content-Type", "text/html")], body
    body = json.dumps({"title": reason, "status": fault.status, "detail": "injected by fault-proxy"}).encode()
    return fault.status, [("Content-Type", "application/json")], body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed gateway does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
