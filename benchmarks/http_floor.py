"""Diagnostic: CPU per status GET on keep-alive connections, by client, in one process.

Separates what the provider's hook costs from what its HTTP client costs: ``OGCProcessesHook.
aget_job_status`` vs. a bare ``httpx.AsyncClient.get(...).json()`` vs. a bare ``aiohttp.ClientSession``
``get`` + ``json()`` vs. a minimal HTTP/1.1 GET on ``asyncio`` streams (the floor of an asyncio HTTP
client in Python, for reference only), with 1 and with 10 requests in flight. Every client keeps its
connections alive (at most as many as requests in flight).

This machine's CPU speed drifts by a third within seconds, so the figures are made to hold still:
the variants take turns in many short rounds (30 of about 400 GETs, the order rotated each round,
after one warm-up of each); each CPU figure is the median over the rounds, and each ratio the
median of the per-round ratios (two variants measured back to back see the same machine); and
given the server's PID, the client and the server run on two different CPUs. With 4 rounds and
ratios of medians, the hook-to-aiohttp ratio ranged from 1.03 to 1.60 over nine runs of the same
code, pinned or not; as now, from 1.34 to 1.37 in four. Run by
:mod:`benchmarks.triggerer`::

    python -m benchmarks.http_floor --url http://127.0.0.1:PORT --out floor.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    Get = Callable[[int], Awaitable[Any]]

CONN_ID = "ogc_bench"
CONCURRENCY = (1, 10)
# The JSON keys under cpu_ms_per_request.in_flight_N, in the order measured in the first round.
VARIANTS = ("provider_hook", "httpx_bare", "aiohttp_bare", "asyncio_streams")
# Well-kept client libraries the provider is compared with (the goal: at most 1.5x the cheaper one).
LIBRARIES = ("httpx_bare", "aiohttp_bare")
WARMUP = 200


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


async def _measure(fn: Get, requests: int, concurrency: int) -> float:
    """CPU ms per request over ``requests`` GETs, ``concurrency`` in flight."""
    per_worker = max(1, requests // concurrency)

    async def worker(k: int) -> None:
        for i in range(per_worker):
            await fn(k * per_worker + i)

    cpu0 = time.process_time()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return 1000 * (time.process_time() - cpu0) / (per_worker * concurrency)


async def _streams_client(
    host: str, port: int, concurrency: int
) -> tuple[Get, Callable[[], Awaitable[None]]]:
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for pair in connections:
        free.put_nowait(pair)

    async def get(i: int) -> Any:
        reader, writer = await free.get()
        try:
            writer.write(
                f"GET /jobs/job-{i} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            return json.loads(await reader.readexactly(length))
        finally:
            free.put_nowait((reader, writer))

    async def close() -> None:
        for _, writer in connections:
            writer.close()

    return get, close


async def _aiohttp_client(url: str, concurrency: int) -> tuple[Get, Callable[[], Awaitable[None]]]:
    import aiohttp

    # One session, keep-alive (aiohttp's default), at most `concurrency` connections.
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    async def get(i: int) -> Any:
        async with session.get(f"{url}/jobs/job-{i}") as response:
            return await response.json()

    return get, session.close


async def run(url: str, requests: int, rounds: int = 30) -> dict[str, Any]:
    import httpx

    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook, aclose_shared_clients

    parsed = httpx.URL(url)
    rounds = max(1, min(rounds, requests // max(CONCURRENCY)))
    result: dict[str, Any] = {
        "requests": requests,
        "rounds": rounds,
        "variants": list(VARIANTS),
        "libraries": list(LIBRARIES),
        "versions": {dist: _version(dist) for dist in ("httpx", "httpcore", "aiohttp")},
        "cpu_ms_per_request": {},
        "samples_ms": {},
        "provider_ratio": {},
        "cheapest_library": {},
    }
    for concurrency in CONCURRENCY:
        client = httpx.AsyncClient()
        hook = OGCProcessesHook(ogc_conn_id=CONN_ID)

        async def bare(i: int, client: httpx.AsyncClient = client) -> Any:
            return (await client.get(f"{url}/jobs/job-{i}")).json()

        async def provider(i: int, hook: OGCProcessesHook = hook) -> Any:
            return await hook.aget_job_status(f"job-{i}")

        streams, close_streams = await _streams_client(parsed.host, parsed.port or 80, concurrency)
        aiohttp_get, close_aiohttp = await _aiohttp_client(url, concurrency)
        fns: dict[str, Get] = {
            "provider_hook": provider,
            "httpx_bare": bare,
            "aiohttp_bare": aiohttp_get,
            "asyncio_streams": streams,
        }
        for fn in fns.values():  # the warm-up also opens every connection
            await _measure(fn, min(WARMUP, requests), concurrency)
        samples: dict[str, list[float]] = {name: [] for name in fns}
        for r in range(rounds):
            for name in VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]:
                samples[name].append(await _measure(fns[name], requests // rounds, concurrency))
        cpu = {name: round(statistics.median(v), 4) for name, v in samples.items()}
        key = f"in_flight_{concurrency}"
        result["cpu_ms_per_request"][key] = cpu
        result["samples_ms"][key] = {name: [round(s, 4) for s in v] for name, v in samples.items()}
        # Paired: each round's ratio of two variants measured back to back, then the median.
        own = samples["provider_hook"]
        result["provider_ratio"][key] = {
            name: round(statistics.median(a / b for a, b in zip(own, v, strict=True) if b), 3)
            for name, v in samples.items()
            if name != "provider_hook"
        }
        result["cheapest_library"][key] = min(LIBRARIES, key=cpu.__getitem__)
        await client.aclose()
        await close_streams()
        await close_aiohttp()
    await aclose_shared_clients()
    return result


@contextlib.contextmanager
def _pinned_apart(server_pid: int | None) -> Iterator[dict[str, int] | None]:
    """This process on one CPU and the server on another, restored afterwards (Linux, 2+ CPUs)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if server_pid is None or len(cpus) < 2:
        yield None
        return
    own, server = os.sched_getaffinity(0), os.sched_getaffinity(server_pid)
    os.sched_setaffinity(0, {cpus[0]})
    os.sched_setaffinity(server_pid, {cpus[-1]})
    try:
        yield {"client_cpu": cpus[0], "server_cpu": cpus[-1]}
    finally:
        os.sched_setaffinity(0, own)
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(server_pid, server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_floor")
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=12000, help="timed GETs per variant, all rounds")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", required=True)
    parser.add_argument("--server-pid", type=int, help="pin the server and this process to two CPUs")
    args = parser.parse_args(argv)
    os.environ.setdefault(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "ogc_processes", "host": args.url})
    )
    with _pinned_apart(args.server_pid) as pinned:
        result = asyncio.run(run(args.url, args.requests, args.rounds))
    Path(args.out).write_text(json.dumps({**result, "pinned": pinned}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
