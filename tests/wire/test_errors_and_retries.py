"""Error shapes, retry rules and credential boundaries, over real HTTP on loopback."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from airflow_provider_ogc.exceptions import OGCInvalidResponseError, OGCProcessesAPIError
from tests.support.replay_server import ReplayServer, Reply

JOB = "/ogc/jobs/j1"
RUNNING = {"jobID": "j1", "status": "running"}
EXEC = "/ogc/processes/p/execution"

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
    assert "HTTP 404" in str(err) and "Job j1 does not exist" in str(err) and not err.is_transient
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
    assert "<h1>" not in message and caught.value.is_transient
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
def test_execute_is_never_retried_once_it_may_have_reached_the_server(
    replay: ReplayServer, hook_for: Any, reply: Reply
) -> None:
    replay.route("POST", EXEC, reply, Reply(201, None, headers={"Location": "{base}/ogc/jobs/dup"}))
    with pytest.raises(Exception):  # noqa: B017 - an HTTP error or a transport error, either way no retry
        hook_for(f"{replay.url}/ogc").execute_process("p", {})
    assert len(replay.hits("POST", EXEC)) == 1, "a second POST could create a duplicate job"


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
