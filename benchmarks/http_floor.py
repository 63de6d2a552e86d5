"""Diagnostic: CPU per status GET on keep-alive connections, by client, in one process.

Separates what the provider's hook costs from what its HTTP client costs: ``OGCProcessesHook.
aget_job_status`` vs. a bare ``httpx.AsyncClient.get(...).json()`` vs. a minimal HTTP/1.1 GET on
``asyncio`` streams (the floor of an asyncio HTTP client in Python), each ``requests`` times after a
warm-up, with 1 and with 10 requests in flight. Run by :mod:`benchmarks.triggerer`::

    python -m benchmarks.http_floor --url http://127.0.0.1:PORT --out floor.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

CONN_ID = "ogc_bench"


async def _measure(fn: Callable[[int], Awaitable[Any]], requests: int, concurrency: int) -> float:
    for i in range(min(200, requests)):
        await fn(i)
    per_worker = requests // concurrency

    async def worker(k: int) -> None:
        for i in range(per_worker):
            await fn(k * per_worker + i)

    cpu0 = time.process_time()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return 1000 * (time.process_time() - cpu0) / (per_worker * concurrency)


async def _streams_client(host: str, port: int, concurrency: int) -> Callable[[int], Awaitable[Any]]:
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

    return get


async def run(url: str, requests: int) -> dict[str, Any]:
    import httpx

    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

    parsed = httpx.URL(url)
    result: dict[str, Any] = {"requests": requests, "cpu_ms_per_request": {}}
    for concurrency in (1, 10):
        client = httpx.AsyncClient()
        hook = OGCProcessesHook(ogc_conn_id=CONN_ID)

        async def bare(i: int, client: httpx.AsyncClient = client) -> Any:
            return (await client.get(f"{url}/jobs/job-{i}")).json()

        async def provider(i: int, hook: OGCProcessesHook = hook) -> Any:
            return await hook.aget_job_status(f"job-{i}")

        streams = await _streams_client(parsed.host, parsed.port or 80, concurrency)
        result["cpu_ms_per_request"][f"in_flight_{concurrency}"] = {
            "provider_hook": round(await _measure(provider, requests, concurrency), 4),
            "httpx_bare": round(await _measure(bare, requests, concurrency), 4),
            "asyncio_streams": round(await _measure(streams, requests, concurrency), 4),
        }
        await client.aclose()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_floor")
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "ogc_processes", "host": args.url})
    )
    Path(args.out).write_text(json.dumps(asyncio.run(run(args.url, args.requests)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
