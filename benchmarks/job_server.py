"""A tiny, fast OGC API - Processes job server for the triggerer benchmark (stdlib + optional uvloop).

Every ``GET /jobs/{id}`` answers ``200`` with a pygeoapi-like statusInfo whose status is
``running``, so polled jobs never end. HTTP/1.1 keep-alive, no body parsing beyond the headers.
``GET /stats`` returns ``{"requests": ..., "connections": ..., "open": ...}`` (job requests
served, connections accepted, connections open). Runs in its own process so its CPU is not
counted against the triggers::

    python -m benchmarks.job_server --port 0      # prints "READY <port>" when listening
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import sys
import time

STATUS_TEMPLATE = (
    '{{"type":"process","processID":"water-bodies","jobID":"{job}","status":"running",'
    '"message":"Running water-bodies on 2 scenes","progress":42,'
    '"created":"2026-01-01T00:00:00Z","started":"2026-01-01T00:00:01Z","updated":"{now}",'
    '"links":[{{"href":"{base}/jobs/{job}","rel":"self","type":"application/json",'
    '"title":"This job status"}}]}}'
)


class Stats:
    requests = 0
    connections = 0
    open = 0


class HTTPProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; GET only (a Content-Length body is skipped)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        Stats.connections += 1
        Stats.open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        Stats.open -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            method, _, rest = lines[0].partition(" ")
            target, _, version = rest.rpartition(" ")
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            self.respond(method, target.split("?", 1)[0], close)
            if close:
                return

    def respond(self, method: str, path: str, close: bool) -> None:
        assert self.transport is not None
        if method == "GET" and path.startswith("/jobs/") and path.count("/") == 2:
            Stats.requests += 1
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            body = STATUS_TEMPLATE.format(job=path[6:], now=now, base=self.base).encode()
            status = "200 OK"
        elif method == "GET" and path == "/stats":
            body = json.dumps(
                {"requests": Stats.requests, "connections": Stats.connections, "open": Stats.open}
            ).encode()
            status = "200 OK"
        else:
            body = b'{"type":"http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job"}'
            status = "404 Not Found"
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        if close:
            self.transport.close()


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    base_holder: list[str] = []
    server = await loop.create_server(
        lambda: HTTPProtocol(base_holder[0]), host, port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    base_holder.append(f"http://{host}:{bound}")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {bound}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.job_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-uvloop", action="store_true", help="use the stdlib event loop")
    args = parser.parse_args(argv)
    raise_fd_limit()
    runner = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    runner(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
