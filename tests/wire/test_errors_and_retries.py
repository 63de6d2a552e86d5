"""Error shapes, retry rules and credential boundaries, over real HTTP on loopback."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_ogc.exceptions import (
    OGCAmbiguousSubmissionError,
    OGCInvalidResponseError,
    OGCProcessesAPIError,
    OGCSubmissionUncertainError,
)
from airflow_provider_ogc.models import JobStatus
from airflow_provider_ogc.retry import is_transient
from tests.support.replay_server import ReplayServer, Reply

JOB = "/ogc/jobs/j1"
RUNNING = {"jobID": "j1", "status": "running"}
EXEC = "/ogc/processes/p/execution"
JOBS = "/ogc/jobs"

OGC_404 = {
    "type": "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job",
    "title": "No such job",
    "status": 404,
    "detail": "Job j1 does not exist",
}
HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
)


def test_ogc_exception_becomes_one_error_with_its_fields(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("GET", JOB, Reply(404, OGC_404))
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook_for(f"{replay.url}/ogc").get_job_status("j1")
    err = caught.value
    assert (err.http_status, err.type, err.title, err.detail) == (
        404,
        OGC_404["type"],
        "No such job",
        OGC_404["detail"],
    )
    assert err.method == "GET" and err.url == f"{replay.url}{JOB}"
    assert "HTTP 404" in str(err) and "Job j1 does not exist" in str(err) and not is_transient(err)
    assert len(replay.hits("GET", JOB)) == 1, "a 4xx is permanent: no retry"


def test_zoo_style_code_and_description(replay: ReplayServer, hook_for: Any) -> None:
    replay.route(
        "GET", "/ogc/processes/nope", Reply(404, {"code": "NoSuchProcess", "description": "nope unknown"})
    )
    with pytest.raises(OGCProcessesAPIError, match=r"\[NoSuchProcess\].*nope unknown") as caught:
        hook_for(f"{replay.url}/ogc").get_process("nope")
    assert caught.value.type == "NoSuchProcess"


def test_html_error_page_gives_status_and_short_excerpt(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("GET", JOB, Reply(502, HTML_502, content_type="text/html"))
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook_for(f"{replay.url}/ogc", extra={"max_retries": 1}).get_job_status("j1")
    message = str(caught.value)
    assert "HTTP 502" in message and "text/html" in message and "502 Bad Gateway" in message
    assert "<h1>" not in message and is_transient(caught.value)
    assert len(replay.hits("GET", JOB)) == 2, "5xx on GET is retried max_retries times"


def test_invalid_json_in_a_success_is_a_clear_error(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("GET", JOB, Reply(200, "{'jobID': oops", content_type="application/json"))
    with pytest.raises(OGCInvalidResponseError, match=r"Expected JSON from GET .*/ogc/jobs/j1 \(HTTP 200\)"):
        hook_for(f"{replay.url}/ogc").get_job_status("j1")


def test_html_instead_of_json_names_the_content_type(replay: ReplayServer, hook_for: Any) -> None:
    replay.route(
        "GET",
        "/ogc/jobs/j1/results",
        Reply(200, "<html><body>Results</body></html>", content_type="text/html"),
    )
    with pytest.raises(OGCInvalidResponseError, match="got text/html: Results"):
        hook_for(f"{replay.url}/ogc").get_job_results("j1")


def test_get_retries_5xx_then_succeeds(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("GET", JOB, Reply(503, {"title": "busy"}), Reply(500, None), Reply(200, RUNNING))
    assert hook_for(f"{replay.url}/ogc").get_job_status("j1").job_id == "j1"
    assert len(replay.hits("GET", JOB)) == 3


def test_retry_after_is_honoured(replay: ReplayServer, hook_for: Any) -> None:
    replay.route(
        "GET", JOB, Reply(429, {"title": "slow down"}, headers={"Retry-After": "1"}), Reply(200, RUNNING)
    )
    started = time.monotonic()
    hook_for(f"{replay.url}/ogc").get_job_status("j1")
    assert time.monotonic() - started >= 0.95, "waited the server's Retry-After, not the 0.05 s backoff"
    assert len(replay.hits("GET", JOB)) == 2


def test_delete_retries_connection_resets(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("DELETE", JOB, Reply(reset=True), Reply(200, {"jobID": "j1", "status": "dismissed"}))
    info = hook_for(f"{replay.url}/ogc").dismiss_job("j1")
    assert info is not None and info.status.value == "dismissed"
    assert len(replay.hits("DELETE", JOB)) == 2


def test_get_gives_up_after_max_retries(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("GET", JOB, Reply(503, {"title": "down"}))
    with pytest.raises(OGCProcessesAPIError, match="HTTP 503"):
        hook_for(f"{replay.url}/ogc", extra={"max_retries": 2}).get_job_status("j1")
    assert len(replay.hits("GET", JOB)) == 3


@pytest.mark.parametrize("reply", [Reply(500, {"title": "boom"}), Reply(502, HTML_502), Reply(reset=True)])
def test_ambiguous_execute_failure_without_a_job_list_is_never_resent(
    replay: ReplayServer, hook_for: Any, reply: Reply
) -> None:
    # The replay server has no GET /ogc/jobs (404): whether a job was created cannot be checked.
    replay.route("POST", EXEC, reply, Reply(201, None, headers={"Location": "{base}/ogc/jobs/dup"}))
    with pytest.raises(OGCSubmissionUncertainError) as caught:
        hook_for(f"{replay.url}/ogc").execute_process("p", {})
    message = str(caught.value)
    assert "may or may not have created a job" in message and "not sent again" in message
    assert f"HTTP 404 from GET {replay.url}/ogc/jobs" in message, "the cause: no job list"
    assert caught.value.http_status is None and not is_transient(caught.value)
    assert caught.value.cause is not None and caught.value.process_id == "p"
    assert len(replay.hits("POST", EXEC)) == 1, "a second POST could create a duplicate job"
    assert len(replay.hits("GET", JOBS)) == 1, "the job list was consulted before giving up"


def test_ambiguous_execute_failure_with_reconcile_off_is_raised_as_it_is(
    replay: ReplayServer, hook_for: Any
) -> None:
    replay.route(
        "POST", EXEC, Reply(502, HTML_502), Reply(201, None, headers={"Location": "{base}/ogc/jobs/dup"})
    )
    with pytest.raises(OGCProcessesAPIError, match="HTTP 502") as caught:
        hook_for(f"{replay.url}/ogc").execute_process("p", {}, reconcile=False)
    assert not isinstance(caught.value, OGCSubmissionUncertainError)
    assert len(replay.hits("POST", EXEC)) == 1 and not replay.hits("GET", JOBS)


def _job(job_id: str, process_id: str | None, created: float | None, **more: Any) -> dict[str, Any]:
    """A job as pygeoapi lists it (§6 of WIRE.md), created at ``created`` (epoch seconds)."""
    job: dict[str, Any] = {"type": "process", "jobID": job_id, "status": "accepted", "progress": 5, **more}
    if process_id is not None:
        job["processID"] = process_id
    if created is not None:
        job["created"] = _iso(created)
    return job


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _pages(*pages: list[dict[str, Any]]) -> list[Reply]:
    """pygeoapi's paging: ``next`` links with an offset, 10 per page."""
    replies = []
    for number, jobs in enumerate(pages):
        links = [{"href": "{base}/ogc/jobs?f=json", "rel": "self", "type": "application/json"}]
        if number + 1 < len(pages):
            links.append(
                {
                    "href": f"{{base}}/ogc/jobs?offset={10 * (number + 1)}",
                    "rel": "next",
                    "type": "application/json",
                }
            )
        replies.append(Reply(200, {"jobs": jobs, "links": links}))
    return replies


def test_lost_execute_response_adopts_the_job_it_created(
    replay: ReplayServer, hook_for: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    replay.route(
        "POST", EXEC, Reply(reset=True), Reply(201, None, headers={"Location": "{base}/ogc/jobs/dup"})
    )
    # The new job is on the last page, as on pygeoapi; an older job of p and a new one of q are not it.
    old = [_job(f"old{i}", "p", now - 3600 + i) for i in range(10)]
    replay.route("GET", JOBS, *_pages(old, [_job("q1", "q", now + 1), _job("lost", "p", now)]))
    caplog.set_level("INFO")

    execution = hook_for(f"{replay.url}/ogc").execute_process("p", {"x": 1})

    assert execution.job_id == "lost" and execution.job_url == f"{replay.url}/ogc/jobs/lost"
    assert execution.status is not None and execution.status.status is JobStatus.ACCEPTED
    assert not execution.synchronous
    assert len(replay.hits("POST", EXEC)) == 1, "adopted, not resent"
    listed = replay.hits("GET", JOBS)
    assert len(listed) == 2 and listed[0].query["processID"] == ["p"], "both pages read, filter asked for"
    logs = caplog.text + capsys.readouterr().out
    assert "Adopted job lost: the response to the submission was lost" in logs


def test_no_job_created_means_the_execute_request_is_sent_once_more(
    replay: ReplayServer, hook_for: Any
) -> None:
    now = time.time()
    replay.route(
        "POST", EXEC, Reply(502, HTML_502), Reply(201, None, headers={"Location": "{base}/ogc/jobs/j2"})
    )
    replay.route("GET", JOBS, *_pages([_job("old", "p", now - 3600), _job("q1", "q", now + 1)]))

    execution = hook_for(f"{replay.url}/ogc").execute_process("p", {"x": 1})

    assert execution.job_id == "j2"
    posts = replay.hits("POST", EXEC)
    assert len(posts) == 2 and posts[0].body == posts[1].body, "the same request, sent once more"
    assert len(replay.hits("GET", JOBS)) == 1


def test_two_candidate_jobs_raise_the_ambiguous_error_and_nothing_is_resent(
    replay: ReplayServer, hook_for: Any
) -> None:
    now = time.time()
    replay.route(
        "POST",
        EXEC,
        Reply(504, {"title": "Gateway Timeout"}),
        Reply(201, None, headers={"Location": "{base}/ogc/jobs/dup"}),
    )
    replay.route("GET", JOBS, *_pages([_job("a", "p", now), _job("b", "p", now), _job("old", "p", now - 60)]))

    with pytest.raises(OGCAmbiguousSubmissionError) as caught:
        hook_for(f"{replay.url}/ogc").execute_process("p", {})

    err = caught.value
    assert err.candidates == [f"{replay.url}/ogc/jobs/a", f"{replay.url}/ogc/jobs/b"]
    assert all(url in str(err) for url in err.candidates) and "/ogc/jobs/old" not in str(err)
    assert "nothing was resubmitted" in str(err) and "HTTP 504" in str(err)
    assert isinstance(err, OGCSubmissionUncertainError) and not is_transient(err)
    assert len(replay.hits("POST", EXEC)) == 1


def test_a_job_created_after_the_failure_is_not_adopted_and_nothing_is_resent(
    replay: ReplayServer, hook_for: Any
) -> None:
    # Ours would have been created before the server answered; a later one may be another client's.
    now = time.time()
    replay.route(
        "POST", EXEC, Reply(502, HTML_502), Reply(201, None, headers={"Location": "{base}/ogc/jobs/x"})
    )
    replay.route("GET", JOBS, *_pages([_job("late", "p", now + 30)]))
    with pytest.raises(OGCAmbiguousSubmissionError, match="1 of them after the request failed") as caught:
        hook_for(f"{replay.url}/ogc").execute_process("p", {})
    assert caught.value.candidates == [f"{replay.url}/ogc/jobs/late"]
    assert len(replay.hits("POST", EXEC)) == 1


def test_jobs_without_process_or_creation_time_are_never_adopted(replay: ReplayServer, hook_for: Any) -> None:
    now = time.time()
    replay.route("POST", EXEC, Reply(reset=True))
    # One job of p, and one the list says nothing about: it might be ours just as well.
    replay.route("GET", JOBS, *_pages([_job("mine?", "p", now), _job("anon", None, None)]))
    with pytest.raises(
        OGCAmbiguousSubmissionError, match="does not give the process or the creation time"
    ) as caught:
        hook_for(f"{replay.url}/ogc").execute_process("p", {})
    assert [url.rsplit("/", 1)[-1] for url in caught.value.candidates] == ["mine%3F", "anon"]
    assert len(replay.hits("POST", EXEC)) == 1


def test_jobs_this_process_submitted_are_not_adopted(replay: ReplayServer, hook_for: Any) -> None:
    now = time.time()
    replay.route(
        "POST",
        EXEC,
        Reply(201, None, headers={"Location": "{base}/ogc/jobs/first"}),
        Reply(reset=True),
    )
    replay.route("GET", JOBS, *_pages([_job("first", "p", now), _job("second", "p", now)]))
    hook = hook_for(f"{replay.url}/ogc")
    assert hook.execute_process("p", {"n": 1}).job_id == "first"
    # "first" is in the window too, but it belongs to the submission above.
    assert hook_for(f"{replay.url}/ogc").execute_process("p", {"n": 2}).job_id == "second"
    assert len(replay.hits("POST", EXEC)) == 2


class _SkewedReplay(ReplayServer):
    """A replay server whose clock (``Date`` and the jobs it lists) runs ``skew`` seconds off ours."""

    def __init__(self, skew: float) -> None:
        self.skew = skew
        super().__init__()

    def _handler_class(self) -> Any:
        handler = super()._handler_class()
        skew = self.skew

        class Skewed(handler):  # type: ignore[misc, valid-type]
            def date_time_string(self, timestamp: float | None = None) -> str:
                return str(super().date_time_string((timestamp or time.time()) + skew))

        return Skewed


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_the_window_is_taken_in_the_servers_time(hook_for: Any, skew: float) -> None:
    server = _SkewedReplay(skew).start()
    try:
        now = time.time() + skew  # the server's clock
        server.route(
            "POST", EXEC, Reply(502, HTML_502), Reply(201, None, headers={"Location": "{base}/ogc/jobs/j2"})
        )
        # In our time the lost job looks an hour old (or an hour ahead), and the old one recent.
        server.route("GET", JOBS, *_pages([_job("lost", "p", now), _job("old", "p", now - 600)]))
        assert hook_for(f"{server.url}/ogc").execute_process("p", {}).job_id == "lost"
        assert len(server.hits("POST", EXEC)) == 1
    finally:
        server.stop()


def test_503_and_retry_after_resend_without_reconciling(replay: ReplayServer, hook_for: Any) -> None:
    replay.route(
        "POST",
        EXEC,
        Reply(503, {"title": "Service Unavailable"}),
        Reply(500, {"title": "busy"}, headers={"Retry-After": "0"}),
        Reply(201, None, headers={"Location": "{base}/ogc/jobs/j3"}),
    )
    assert hook_for(f"{replay.url}/ogc").execute_process("p", {}).job_id == "j3"
    assert len(replay.hits("POST", EXEC)) == 3 and not replay.hits("GET", JOBS)


def test_execute_attempts_are_bounded_by_max_retries(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("POST", EXEC, Reply(502, HTML_502))
    replay.route("GET", JOBS, *_pages([]))
    with pytest.raises(OGCProcessesAPIError, match="HTTP 502"):
        hook_for(f"{replay.url}/ogc", extra={"max_retries": 2}).execute_process("p", {})
    assert len(replay.hits("POST", EXEC)) == 3
    assert len(replay.hits("GET", JOBS)) == 3, "checked after each attempt, the last one too"


def test_execute_is_retried_after_429(replay: ReplayServer, hook_for: Any) -> None:
    replay.route(
        "POST",
        EXEC,
        Reply(429, None, headers={"Retry-After": "0"}),
        Reply(201, None, headers={"Location": "{base}/ogc/jobs/j9"}),
    )
    assert hook_for(f"{replay.url}/ogc").execute_process("p", {}).job_id == "j9"
    assert len(replay.hits("POST", EXEC)) == 2


def test_execute_is_retried_when_the_connection_is_refused(hook_for: Any) -> None:
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    hook = hook_for(f"http://127.0.0.1:{port}/ogc", extra={"max_retries": 2})
    started = time.monotonic()
    with pytest.raises(httpx.ConnectError):
        hook.execute_process("p", {})
    assert time.monotonic() - started < 5


def test_credentials_never_go_to_another_origin(hook_for: Any) -> None:
    own, other = ReplayServer().start(), ReplayServer().start()
    try:
        # A paginated list whose next page, and a redirect, point to another host.
        own.route(
            "GET",
            "/ogc/processes",
            Reply(
                200,
                {
                    "processes": [{"id": "a"}],
                    "links": [
                        {
                            "rel": "next",
                            "href": f"{other.url}/ogc/processes?page=2",
                            "type": "application/json",
                        }
                    ],
                },
            ),
        )
        other.route("GET", "/ogc/processes", Reply(200, {"processes": [{"id": "b"}], "links": []}))
        own.route("GET", "/ogc/jobs/j1", Reply(302, None, headers={"Location": f"{other.url}/ogc/jobs/j1"}))
        other.route("GET", "/ogc/jobs/j1", Reply(200, RUNNING))
        hook = hook_for(
            f"{own.url}/ogc",
            password="s3cr3t-token",
            extra={
                "auth_type": "api_key",
                "api_key_header": "X-API-Key",
                "extra_headers": {"X-Tenant": "acme"},
            },
        )

        assert [p["id"] for p in hook.list_processes()] == ["a", "b"]
        assert hook.get_job_status("j1").job_id == "j1"

        assert all(r.headers.get("X-API-Key") == "s3cr3t-token" for r in own.requests)
        assert all(r.headers.get("X-Tenant") == "acme" for r in own.requests)
        assert len(other.requests) == 2
        for r in other.requests:
            assert (
                "X-API-Key" not in r.headers
                and "X-Tenant" not in r.headers
                and "Authorization" not in r.headers
            )
    finally:
        own.stop()
        other.stop()


def test_same_origin_redirect_keeps_credentials(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("GET", "/ogc/jobs/j1", Reply(301, None, headers={"Location": "/ogc/v2/jobs/j1"}))
    replay.route("GET", "/ogc/v2/jobs/j1", Reply(200, RUNNING))
    hook_for(f"{replay.url}/ogc", password="tok", extra={"auth_type": "bearer"}).get_job_status("j1")
    assert replay.hits("GET", "/ogc/v2/jobs/j1")[0].headers["Authorization"] == "Bearer tok"


def test_tokens_do_not_appear_in_hook_logs(
    replay: ReplayServer, hook_for: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.route("GET", JOB, Reply(503, None), Reply(200, RUNNING))
    replay.route("POST", EXEC, Reply(201, RUNNING))
    caplog.set_level("DEBUG")
    hook = hook_for(f"{replay.url}/ogc", password="tok-XYZ-123", extra={"auth_type": "bearer"})
    hook.get_job_status("j1")
    hook.execute_process("p", {})
    logs = caplog.text + capsys.readouterr().out  # Airflow 3 hooks log through structlog to stdout
    assert "Attempt 1 failed" in logs and "Submitted p: job j1" in logs  # the logs are captured
    assert "tok-XYZ-123" not in logs
