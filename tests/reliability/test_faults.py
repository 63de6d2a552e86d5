"""Jobs through a faulty network: 5xx pages, 429, resets, stalls and lost responses in front of real servers.

A fault-injecting proxy (``fault_proxy.py``) sits between the hook and real pygeoapi / wraptile
servers. Whatever it does, every job must complete with the right results, and the server must
hold exactly one job per submission: counted on the server itself (not through the proxy), and
matched one to one with the jobs the hook returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from airflow_provider_ogc.exceptions import OGCAmbiguousSubmissionError
from airflow_provider_ogc.hooks import OGCProcessesHook
from airflow_provider_ogc.triggers import OGCJobTrigger
from tests.conftest import server_bin
from tests.reliability.fault_proxy import FAULT_KINDS, FORWARDING_FAULTS, Fault, FaultProxy, ProxiedRequest
from tests.servers.launch import RunningServer, start_pygeoapi, start_wraptile
from tests.support.context import run_trigger
from tests.support.jobs import wait_for_job

pytestmark = pytest.mark.integration

# Short timeouts so stalls cost 2 s; enough attempts that a 30% fault rate cannot exhaust them.
FAULTY_NETWORK = {
    "timeout": 2,
    "connect_timeout": 2,
    "max_retries": 6,
    "retry_wait_min": 0.05,
    "retry_wait_max": 0.2,
}
EXECUTE = r"^/processes/[^/]+/execution$"
# One of each kind (each error status, HTML and JSON), forced on the first attempt of one job each.
EACH_FAULT = [
    Fault("error", 500),
    Fault("error", 502, html=True),
    Fault("error", 503),
    Fault("throttle"),
    Fault("reset"),
    Fault("stall"),
    Fault("lost_reset"),
    Fault("lost_stall"),
]


def _jobs() -> list[tuple[str, dict[str, Any]]]:
    """Ten jobs: eight echoes with distinct inputs and two short sleeps."""
    jobs: list[tuple[str, dict[str, Any]]] = [
        ("echo", {"message": f"fault-{i}", "count": i % 3 + 1}) for i in range(8)
    ]
    jobs.insert(3, ("sleep", {"seconds": 0.4}))
    jobs.append(("sleep", {"seconds": 0.4}))
    return jobs


def _check_results(process_id: str, inputs: dict[str, Any], results: Any) -> None:
    if process_id == "echo":
        assert results == {"echo": " ".join([inputs["message"]] * inputs["count"])}
    else:
        assert set(results) == {"slept"} and inputs["seconds"] <= results["slept"] < inputs["seconds"] + 5


def _job_ids(upstream: OGCProcessesHook) -> set[str]:
    return {job.job_id for job in upstream.list_jobs()}


@pytest.fixture(scope="module")
def pygeoapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Servers of this module alone: every job on them is one this module submitted, so "one job
    # per submission" is counted exactly, with no other test's job of the same process nearby.
    server = start_pygeoapi(tmp_path_factory.mktemp("pygeoapi-faults"), server_bin("pygeoapi"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wraptile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_wraptile(tmp_path_factory.mktemp("wraptile-faults"), server_bin("wraptile"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def _proxies() -> Iterator[dict[str, FaultProxy]]:
    proxies: dict[str, FaultProxy] = {}
    yield proxies
    for proxy in proxies.values():
        proxy.stop()


@pytest.fixture
def proxy_for(_proxies: dict[str, FaultProxy]) -> Callable[..., FaultProxy]:
    """
    The proxy in front of a server, with a fresh plan. One per server for the module, as one
    gateway in front of a server: its URL is the connection's, so the jobs the hook submitted
    earlier through it are known as its own.
    """

    def get(server: RunningServer, **plan: Any) -> FaultProxy:
        proxy = _proxies.get(server.url)
        if proxy is None:
            proxy = _proxies[server.url] = FaultProxy(server.url).start()
        return proxy.reset(**plan)

    return get


def _created_job_id(response: httpx.Response | None) -> str | None:
    """The job a forwarded execute request created, from the upstream answer the client never got."""
    if response is None:
        return None
    location = response.headers.get("location")
    return location.rsplit("/", 1)[-1] if location else str(response.json()["jobID"])


def _run_jobs(proxy: FaultProxy, hook: OGCProcessesHook, conn_id: str) -> list[str]:
    """Submit, watch (trigger) and fetch the results of each job in turn; the submitted job ids."""
    submitted: list[str] = []
    for number, (process_id, inputs) in enumerate(_jobs()):
        forced = EACH_FAULT[number] if number < len(EACH_FAULT) else None
        if forced:  # on the first POST of this job; its other attempts follow the random plan
            proxy.force("POST", forced, path=EXECUTE)
        execution = hook.execute_process(process_id, inputs)
        assert execution.job_id and not execution.synchronous
        assert execution.job_url == f"{proxy.url}/jobs/{execution.job_id}", "links stay on the proxy"
        submitted.append(execution.job_id)
        if forced:  # on the first status poll of this job
            proxy.force("GET", forced, path=f"^/jobs/{execution.job_id}$")
        trigger = OGCJobTrigger(
            job_id=execution.job_id,
            ogc_conn_id=conn_id,
            min_poll_interval=0.2,
            max_poll_interval=0.5,
            max_transient_errors=20,
        )
        event = run_trigger(trigger, timeout=120)
        assert (event["status"], event["job_id"]) == ("successful", execution.job_id), event
        _check_results(process_id, inputs, hook.get_job_results(execution.job_id))
    return submitted


def test_every_job_completes_once_through_a_faulty_network(
    pygeoapi_server: RunningServer,
    wraptile_server: RunningServer,
    make_conn: Any,
    hook_for: Any,
    proxy_for: Callable[..., FaultProxy],
) -> None:
    """Ten jobs per server, ~30% of requests faulty, both servers at once (each one job at a time)."""
    servers = {"pygeoapi": pygeoapi_server, "wraptile": wraptile_server}
    # Stalls cost a whole timeout each: drawn half as often as the other kinds (all are forced too).
    weights = [2 if kind in ("error", "reset", "lost_reset") else 1 for kind in FAULT_KINDS]
    proxies = {
        name: proxy_for(server, seed=seed, share=0.3, weights=weights)
        for (name, server), seed in zip(servers.items(), (7, 11), strict=True)
    }
    upstreams = {name: hook_for(server.url) for name, server in servers.items()}  # counts on the server
    before = {name: _job_ids(upstream) for name, upstream in upstreams.items()}
    with ThreadPoolExecutor(len(servers)) as pool:
        running = {
            name: pool.submit(
                _run_jobs,
                proxy,
                hook_for(proxy.url, extra=FAULTY_NETWORK),
                make_conn(proxy.url, extra=FAULTY_NETWORK),
            )
            for name, proxy in proxies.items()
        }
        submitted = {name: future.result() for name, future in running.items()}

    every_kind = set(FAULT_KINDS) | {"error:500", "error:502", "error:503"}
    for name, proxy in proxies.items():
        jobs = submitted[name]
        created = _job_ids(upstreams[name]) - before[name]
        assert len(created) == len(jobs) == len(set(jobs)) == 10, f"{name}: exactly one job per submission"
        assert created == set(jobs), f"{name}: each submission's job is the one the hook returned"
        posts = proxy.records("POST", EXECUTE)
        assert sum(r.forwarded for r in posts) == len(jobs), f"{name}: every POST that reached it was used"
        assert len(posts) > len(jobs), f"{name}: some submissions were sent again"
        lost = [r for r in posts if r.fault is not None and r.fault.kind in FORWARDING_FAULTS]
        assert lost and {_created_job_id(r.upstream_response) for r in lost} <= set(jobs), (
            f"{name}: the job of each lost response was adopted"
        )
        post_kinds, get_kinds = proxy.fault_kinds("POST", EXECUTE), proxy.fault_kinds("GET")
        assert post_kinds >= every_kind, f"{name}: not injected on POST: {every_kind - post_kinds}"
        assert get_kinds >= every_kind, f"{name}: not injected on GET: {every_kind - get_kinds}"
        stalls = [
            r for r in proxy.records() if r.fault is not None and r.fault.kind in ("stall", "lost_stall")
        ]
        assert stalls and all(r.client_gave_up for r in stalls), f"{name}: the client gave up on every stall"
        assert proxy.records("GET", "^/jobs$"), f"{name}: the job list was consulted"


# What each fault on the execute request leads to: (POSTs the proxy sees, job-list reads).
POST_OUTCOMES = {
    Fault("error", 500): (2, True),  # ambiguous: nothing found in the job list, sent again
    Fault("error", 502, html=True): (2, True),
    Fault("error", 503): (2, False),  # the server did not act: sent again at once
    Fault("throttle"): (2, False),
    Fault("reset"): (2, True),
    Fault("stall"): (2, True),
    Fault("lost_reset"): (1, True),  # the job exists: adopted, not sent again
    Fault("lost_stall"): (1, True),
}


@pytest.mark.parametrize("fault", list(POST_OUTCOMES), ids=lambda f: f"{f.kind}{f.status or ''}")
def test_each_fault_on_the_execute_request(
    server: RunningServer, hook_for: Any, proxy_for: Callable[..., FaultProxy], fault: Fault
) -> None:
    upstream = hook_for(server.url)
    before = _job_ids(upstream)
    proxy = proxy_for(server, share=0.0)
    proxy.force("POST", fault, path=EXECUTE)
    hook = hook_for(proxy.url, extra=FAULTY_NETWORK)
    execution = hook.execute_process("echo", {"message": f"one {fault.kind}", "count": 1})

    assert _job_ids(upstream) - before == {execution.job_id}, "one job, the one returned"
    posts, listed = POST_OUTCOMES[fault]
    sent = proxy.records("POST", EXECUTE)
    assert len(sent) == posts and sum(r.forwarded for r in sent) == 1
    assert bool(proxy.records("GET", "^/jobs$")) is listed
    if fault.kind in FORWARDING_FAULTS:
        assert _created_job_id(sent[0].upstream_response) == execution.job_id, "the lost job was adopted"
    wait_for_job(hook, execution.job_id)  # the job may not have started yet (wraptile: 403 result-not-ready)
    assert hook.get_job_results(execution.job_id) == {"echo": f"one {fault.kind}"}


def test_concurrent_submission_in_the_window_is_ambiguous_not_duplicated(
    server: RunningServer, hook_for: Any, proxy_for: Callable[..., FaultProxy]
) -> None:
    """Another client creates a job of the same process while our response is lost: no guessing."""
    upstream = hook_for(server.url)
    before = _job_ids(upstream)
    others: list[str] = []
    lock = threading.Lock()

    def another_client_submits(record: ProxiedRequest, response: httpx.Response) -> None:
        reply = httpx.post(
            f"{server.url}/processes/echo/execution",
            json={"inputs": {"message": "another client"}},
            headers={"Prefer": "respond-async"},
            trust_env=False,
        )
        location = reply.headers.get("location")
        with lock:
            others.append(location.rsplit("/", 1)[-1] if location else reply.json()["jobID"])

    proxy = proxy_for(server, share=0.0, on_forwarded=another_client_submits)
    proxy.force("POST", Fault("lost_reset"), path=EXECUTE)
    hook = hook_for(proxy.url, extra=FAULTY_NETWORK)
    with pytest.raises(OGCAmbiguousSubmissionError) as caught:
        hook.execute_process("echo", {"message": "mine"})
    posts = proxy.records("POST")

    created = _job_ids(upstream) - before
    assert len(created) == 2 and len(others) == 1 and others[0] in created, "ours and the other client's"
    assert sorted(caught.value.candidates) == sorted(f"{proxy.url}/jobs/{job_id}" for job_id in created)
    assert "nothing was resubmitted" in str(caught.value)
    assert len(posts) == 1, "never sent again"
