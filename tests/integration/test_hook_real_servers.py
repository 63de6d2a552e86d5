"""Every hook method against real pygeoapi 0.21 and wraptile 0.3 servers on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ogc.exceptions import OGCProcessesAPIError
from airflow_provider_ogc.models import JobStatus
from airflow_provider_ogc.retry import is_transient
from tests.servers.launch import RunningServer
from tests.support.jobs import wait_for_job
from tests.support.openapi import validate

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(server: RunningServer, hook_for: Any) -> Any:
    return hook_for(server.url)


def test_landing_page(hook: Any) -> None:
    landing = hook.get_landing_page()
    assert landing["links"] and "title" in landing


def test_conformance_declares_processes_core(hook: Any) -> None:
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in hook.get_conformance()


def test_api_definition_is_found_where_each_server_puts_it(hook: Any) -> None:
    # pygeoapi: the landing page's service-desc link (/openapi); wraptile: /openapi.json. /api is 404 on both.
    api = hook.get_api_definition()
    assert api["openapi"].startswith("3.") and "/processes" in api["paths"]


def test_list_and_describe_processes(hook: Any) -> None:
    ids = {p["id"] for p in hook.list_processes()}
    assert {"echo", "sleep", "fail"} <= ids
    echo = hook.get_process("echo")
    assert echo["id"] == "echo" and "message" in echo["inputs"] and "echo" in echo["outputs"]


def test_execute_async_poll_and_fetch_results(hook: Any, server: RunningServer, shared_dir: Path) -> None:
    execution = hook.execute_process("echo", {"message": "water", "count": 2})
    assert not execution.synchronous and execution.job_id
    assert execution.job_url == f"{server.url}/jobs/{execution.job_id}"
    statuses = wait_for_job(hook, execution.job_id)
    for info in statuses:
        validate(shared_dir, "statusCode", info.status.value)
    assert statuses[-1].status is JobStatus.SUCCESSFUL and statuses[-1].job_id == execution.job_id
    assert hook.get_job_results(execution.job_id) == {"echo": "water water"}


def test_pygeoapi_answers_201_location_and_null_body(pygeoapi_server: RunningServer, hook_for: Any) -> None:
    hook = hook_for(pygeoapi_server.url)
    reply = hook.request(
        "POST",
        "processes/echo/execution",
        json_body={"inputs": {"message": "x"}},
        headers={"Prefer": "respond-async"},
    )
    assert reply.status_code == 201 and reply.headers["Location"].startswith(f"{pygeoapi_server.url}/jobs/")
    assert reply.json() is None
    execution = hook._parse_execution(reply)
    assert execution.job_id == reply.headers["Location"].rsplit("/", 1)[1]


def test_pygeoapi_runs_the_seeds_prefer_header_synchronously(
    pygeoapi_server: RunningServer, hook_for: Any
) -> None:
    # The seed sends "respond-async;return=representation"; pygeoapi then answers 200 with the results,
    # which is why the hook sends exactly "respond-async".
    hook = hook_for(pygeoapi_server.url)
    reply = hook.request(
        "POST",
        "processes/echo/execution",
        json_body={"inputs": {"message": "x"}},
        headers={"Prefer": "respond-async;return=representation"},
    )
    assert reply.status_code == 200


def test_wraptile_answers_201_job_info_without_location(
    wraptile_server: RunningServer, hook_for: Any
) -> None:
    hook = hook_for(wraptile_server.url)
    reply = hook.request(
        "POST",
        "processes/echo/execution",
        json_body={"inputs": {"message": "x"}},
        headers={"Prefer": "respond-async"},
    )
    assert reply.status_code == 201 and "location" not in reply.headers
    execution = hook._parse_execution(reply)
    assert execution.job_id == reply.json()["jobID"] and execution.job_id.startswith("job_")
    assert execution.job_url == f"{wraptile_server.url}/jobs/{execution.job_id}"


def test_wraptile_job_ids_are_sequential(wraptile_server: RunningServer, hook_for: Any) -> None:
    hook = hook_for(wraptile_server.url)
    first = hook.execute_process("echo", {"message": "a"}).job_id
    second = hook.execute_process("echo", {"message": "b"}).job_id
    assert int(second.split("_")[1]) == int(first.split("_")[1]) + 1
    for job_id in (first, second):
        wait_for_job(hook, job_id)


def test_sync_mode_on_pygeoapi_returns_results(pygeoapi_server: RunningServer, hook_for: Any) -> None:
    execution = hook_for(pygeoapi_server.url).execute_process("echo", {"message": "now"}, mode="sync")
    assert execution.synchronous and execution.results == {"echo": "now"}
    assert execution.status is not None and execution.status.status is JobStatus.SUCCESSFUL


def test_sync_mode_on_wraptile_still_gives_a_job(wraptile_server: RunningServer, hook_for: Any) -> None:
    hook = hook_for(wraptile_server.url)
    execution = hook.execute_process("echo", {"message": "now"}, mode="sync")
    assert not execution.synchronous and execution.job_id
    wait_for_job(hook, execution.job_id)


def test_accepted_and_running_are_polled_through(hook: Any) -> None:
    execution = hook.execute_process("sleep", {"seconds": 1.5})
    statuses = wait_for_job(hook, execution.job_id)
    assert {s.status for s in statuses[:-1]} <= {JobStatus.ACCEPTED, JobStatus.RUNNING}
    assert len(statuses) > 3 and statuses[-1].status is JobStatus.SUCCESSFUL
    assert any(s.progress not in (None, 0, 100) for s in statuses), "progress is reported while running"


def test_results_not_ready_is_an_error_with_the_servers_status(hook: Any, server: RunningServer) -> None:
    execution = hook.execute_process("sleep", {"seconds": 3})
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.get_job_results(execution.job_id)
    # wraptile says 403 result-not-ready, pygeoapi 404 ResultNotReady: both permanent for this request.
    assert caught.value.http_status == {"wraptile": 403, "pygeoapi": 404}[server.name]
    assert "not" in str(caught.value).lower() and "ready" in str(caught.value).lower()
    hook.dismiss_job(execution.job_id)


def test_failed_job_reports_failed_with_the_message(hook: Any) -> None:
    execution = hook.execute_process("fail", {"message": "cloud cover too high"})
    final = wait_for_job(hook, execution.job_id)[-1]
    assert final.status is JobStatus.FAILED and final.is_terminal
    assert "cloud cover too high" in (final.message or "")


def test_list_jobs_finds_the_job(hook: Any) -> None:
    execution = hook.execute_process("echo", {"message": "listed"})
    wait_for_job(hook, execution.job_id)
    jobs = hook.list_jobs()
    assert execution.job_id in {j.job_id for j in jobs}
    assert all(j.job_url and j.job_url.endswith(f"/jobs/{j.job_id}") for j in jobs)


def test_dismiss_a_running_job(hook: Any, server: RunningServer) -> None:
    execution = hook.execute_process("sleep", {"seconds": 30})
    wait_until_running(hook, execution.job_id)
    hook.dismiss_job(execution.job_id)
    if server.name == "wraptile":
        assert hook.get_job_status(execution.job_id).status is JobStatus.DISMISSED
    else:  # pygeoapi deletes the job record at once
        with pytest.raises(OGCProcessesAPIError) as caught:
            hook.get_job_status(execution.job_id)
        assert caught.value.http_status == 404


def test_unknown_process_and_job_fail_at_once(hook: Any) -> None:
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.get_process("no-such-process")
    assert caught.value.http_status == 404 and not is_transient(caught.value)
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.execute_process("no-such-process", {})
    assert caught.value.http_status == 404
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.get_job_status("no-such-job")
    assert caught.value.http_status == 404


def test_invalid_inputs(hook: Any, server: RunningServer) -> None:
    if server.name == "wraptile":  # rejects before creating a job
        with pytest.raises(OGCProcessesAPIError) as caught:
            hook.execute_process("echo", {"count": 2})
        assert caught.value.http_status == 400 and "message" in str(caught.value)
    else:  # pygeoapi accepts the async job, which then fails
        execution = hook.execute_process("echo", {"count": 2})
        final = wait_for_job(hook, execution.job_id)[-1]
        assert final.status is JobStatus.FAILED and "message" in (final.message or "")


def test_part2_is_not_supported_by_these_servers(hook: Any) -> None:
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.deploy_process("cwlVersion: v1.2\nclass: CommandLineTool\n")
    assert caught.value.http_status == 405
    for call in (
        lambda: hook.replace_process("echo", "cwlVersion: v1.2\n"),
        lambda: hook.undeploy_process("echo"),
    ):
        with pytest.raises(OGCProcessesAPIError) as caught:
            call()
        assert caught.value.http_status == 405
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.get_process_package("echo")
    assert caught.value.http_status == 404


def test_test_connection_says_what_the_server_supports(hook: Any, server: RunningServer) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert server.url in message and "core" in message and "OGC process description" in message


def test_test_connection_reports_an_unreachable_server(hook_for: Any) -> None:
    from tests.servers.launch import free_port

    ok, message = hook_for(f"http://127.0.0.1:{free_port()}", extra={"max_retries": 0}).test_connection()
    assert not ok and "Cannot use http://127.0.0.1:" in message


async def test_async_methods(server: RunningServer, make_conn: Any) -> None:
    from airflow_provider_ogc.hooks import OGCProcessesHook

    hook = OGCProcessesHook(ogc_conn_id=make_conn(server.url))
    execution = hook.execute_process("echo", {"message": "async"})
    import asyncio

    for _ in range(300):
        status = await hook.aget_job_status(execution.job_id)
        if status.is_terminal:
            break
        await asyncio.sleep(0.1)
    assert status.status is JobStatus.SUCCESSFUL
    assert await hook.aget_job_results(execution.job_id) == {"echo": "async"}

    running = hook.execute_process("sleep", {"seconds": 30})
    await asyncio.to_thread(wait_until_running, hook, running.job_id)
    await hook.adismiss_job(running.job_id)
    if server.name == "wraptile":
        assert (await hook.aget_job_status(running.job_id)).status is JobStatus.DISMISSED
    hook.close()


def wait_until_running(hook: Any, job_id: str, timeout: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hook.get_job_status(job_id).status is JobStatus.RUNNING:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reported running")
