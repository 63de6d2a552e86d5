"""BENCHMARK-ONLY: the provider as it was BEFORE the triggerer-pool fix (commit 8b5d946).

Nothing here is used by the provider itself; it exists so the triggerer benchmark can show the
fix's effect side by side in one run (the "provider before the fix" column). Applied in the
benchmark's own trigger process only (``python -m benchmarks.trigger_load --patch before_fix``).

Before the fix, the shared async client had ``httpx.Limits(max_connections=100,
max_keepalive_connections=50)`` and no gate: every trigger's request queued in httpcore's pool.
httpcore 1.0 re-scans every queued request against every connection whenever a request is queued
or a response is closed (``AsyncConnectionPool._assign_requests_to_connections``), so an event costs
O(queued x connections): with thousands of triggers the queue grows, each poll costs more, the queue
grows further, and the loop saturates. And with more connections than keep-alive slots, a busy pool
keeps closing and reopening connections (httpcore closes idle ones while the pool holds more than
``max_keepalive_connections`` connections of any state).

The shipped code (``OGCProcessesHook.aget_client`` / ``arequest``) keeps ``settings.max_connections``
(default 10) connections all alive and holds an ``asyncio.Semaphore(max_connections)`` per shared
client around one request attempt. This patch undoes both:

* the hook's async client is the ``httpx.AsyncClient`` it was then (the async side is on aiohttp
  since issue 15), with 100 connections / 50 kept alive;
* the gate registry ``_ASYNC_GATES`` hands out a no-op async context manager instead of a semaphore.
"""

from __future__ import annotations

import contextlib
from typing import Any

BEFORE_MAX_CONNECTIONS = 100
BEFORE_MAX_KEEPALIVE = 50
_APPLIED: set[str] = set()


class _NoGates:
    """Stands in for the hook's ``_ASYNC_GATES``: stores nothing, every client's gate is a no-op."""

    def __setitem__(self, client: Any, gate: Any) -> None:
        pass

    def __getitem__(self, client: Any) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()  # an async context manager too (Python >= 3.10)


def _before_fix() -> None:
    import httpx

    from airflow_provider_ogc.hooks import ogc_processes

    class _HttpxClient:  # the hook's shared async client as it was before the fix
        def __init__(self, settings: Any) -> None:
            self.client = httpx.AsyncClient(
                auth=settings.auth(),
                headers=ogc_processes._default_headers(),
                timeout=settings.httpx_timeout(),
                verify=settings.verify,
                follow_redirects=False,
                limits=httpx.Limits(
                    max_connections=BEFORE_MAX_CONNECTIONS, max_keepalive_connections=BEFORE_MAX_KEEPALIVE
                ),
            )

        @property
        def is_closed(self) -> bool:
            return self.client.is_closed

        async def aclose(self) -> None:
            await self.client.aclose()

        async def send(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
            return await self.client.request(method, url, **kwargs)

    if not hasattr(ogc_processes, "_ASYNC_GATES") or not hasattr(ogc_processes, "AsyncClient"):
        raise RuntimeError("the hook has no _ASYNC_GATES/AsyncClient: benchmarks/patches.py is out of date")
    ogc_processes.AsyncClient = _HttpxClient  # type: ignore[misc,assignment]
    ogc_processes._ASYNC_GATES = _NoGates()  # type: ignore[assignment]


PATCHES = {"before_fix": _before_fix}


def apply(name: str) -> None:
    """Apply the named patch once (``before_fix``)."""
    if name not in PATCHES:
        raise ValueError(f"unknown patch {name!r}; choose from {', '.join(PATCHES)}")
    if name not in _APPLIED:
        PATCHES[name]()
        _APPLIED.add(name)


def is_applied(name: str) -> bool:
    """Whether ``apply(name)`` ran in this process."""
    return name in _APPLIED
