"""The async half of the hook: same rules as sync, and one shared pool per event loop and server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_ogc.exceptions import OGCProcessesAPIError
from airflow_provider_ogc.hooks import OGCProcessesHook
from airflow_provider_ogc.models import JobStatus
from tests.support.replay_server import ReplayServer, Reply


async def test_async_status_results_and_dismiss(replay: ReplayServer, make_conn: Any) -> None:
    replay.route(
        "GET",
        "/ogc/jobs/j1",
        Reply(503, None),
        Reply(200, {"jobID": "j1", "status": "successful", "progress": 100}),
    )
    replay.route("GET", "/ogc/jobs/j1/results", Reply(200, {"out": {"value": 42}}))
    replay.route("DELETE", "/ogc/jobs/j1", Reply(200, {"jobID": "j1", "status": "dismissed"}))
    hook = OGCProcessesHook(
        ogc_conn_id=make_conn(f"{replay.url}/ogc", password="tok", extra={"auth_type": "bearer"})
    )

    status = await hook.aget_job_status("j1")
    assert status.status is JobStatus.SUCCESSFUL and status.job_url == f"{replay.url}/ogc/jobs/j1"
    assert await hook.aget_job_results("j1") == {"out": {"value": 42}}
    dismissed = await hook.adismiss_job("j1")
    assert dismissed is not None and dismissed.status is JobStatus.DISMISSED
    assert len(replay.hits("GET", "/ogc/jobs/j1")) == 2, "the 503 was retried"
    assert all(r.headers["Authorization"] == "Bearer tok" for r in replay.requests)
    assert all(r.headers["Accept"] == "application/json" for r in replay.requests)


async def test_async_errors_are_the_same_type(replay: ReplayServer, make_conn: Any) -> None:
    replay.route(
        "GET", "/ogc/jobs/gone", Reply(404, {"type": "no-such-job", "title": "No such job", "status": 404})
    )
    hook = OGCProcessesHook(ogc_conn_id=make_conn(f"{replay.url}/ogc"))
    with pytest.raises(OGCProcessesAPIError) as caught:
        await hook.aget_job_status("gone")
    assert caught.value.http_status == 404 and caught.value.type == "no-such-job"
    assert len(replay.requests) == 1


async def test_hooks_on_one_loop_share_one_pool(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("GET", "/ogc/jobs/j1", Reply(200, {"jobID": "j1", "status": "running"}))
    conn_id = make_conn(f"{replay.url}/ogc")
    hooks = [OGCProcessesHook(ogc_conn_id=conn_id) for _ in range(20)]
    await asyncio.gather(*(h.aget_job_status("j1") for h in hooks))
    clients = {id(await h.aget_client()) for h in hooks}
    assert len(clients) == 1, "twenty hooks, one connection pool"
    other = OGCProcessesHook(ogc_conn_id=make_conn(f"{replay.url}/ogc", password="x"))
    assert id(await other.aget_client()) not in clients, "different credentials, different pool"


def test_pools_are_per_event_loop(replay: ReplayServer, make_conn: Any) -> None:
    conn_id = make_conn(f"{replay.url}/ogc")

    async def client_id() -> int:
        return id(await OGCProcessesHook(ogc_conn_id=conn_id).aget_client())

    loop_a, loop_b = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert loop_a.run_until_complete(client_id()) == loop_a.run_until_complete(client_id())
        assert loop_a.run_until_complete(client_id()) != loop_b.run_until_complete(client_id())
    finally:
        loop_a.close()
        loop_b.close()


async def test_requests_in_flight_are_capped_per_pool(replay: ReplayServer, make_conn: Any) -> None:
    # Thousands of triggers in one triggerer must queue on the hook, not in httpcore's pool.
    replay.route("GET", "/ogc/jobs/j1", Reply(200, {"jobID": "j1", "status": "running"}, delay=0.05))
    conn_id = make_conn(f"{replay.url}/ogc", extra={"max_connections": 4})
    hooks = [OGCProcessesHook(ogc_conn_id=conn_id) for _ in range(40)]
    statuses = await asyncio.gather(*(h.aget_job_status("j1") for h in hooks))
    assert [s.status for s in statuses] == [JobStatus.RUNNING] * 40
    assert len(replay.hits("GET", "/ogc/jobs/j1")) == 40
    assert 1 < replay.max_in_flight <= 4, f"{replay.max_in_flight} requests in flight, pool of 4"
