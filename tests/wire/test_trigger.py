"""OGCJobTrigger over real HTTP: transient faults ridden out, permanent ones reported, deadlines kept."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_ogc.triggers import OGCJobTrigger
from tests.support.context import run_trigger
from tests.support.replay_server import ReplayServer, Reply

JOB = "/ogc/jobs/j1"


def status(value: str, progress: int | None = None, message: str | None = None) -> Reply:
    return Reply(200, {"jobID": "j1", "status": value, "progress": progress, "message": message})


def trigger(conn_id: str, **kwargs: Any) -> OGCJobTrigger:
    kwargs.setdefault("min_poll_interval", 0.05)
    kwargs.setdefault("max_poll_interval", 0.1)
    return OGCJobTrigger(job_id="j1", ogc_conn_id=conn_id, **kwargs)


def test_serializes_to_plain_json_without_secrets(make_conn: Any) -> None:
    conn_id = make_conn("http://127.0.0.1:1/ogc", password="s3cr3t")
    classpath, kwargs = trigger(conn_id, deadline=123.0).serialize()
    assert classpath == "airflow_provider_ogc.triggers.ogc_processes.OGCJobTrigger"
    assert kwargs["ogc_conn_id"] == conn_id and kwargs["deadline"] == 123.0
    import json

    assert "s3cr3t" not in json.dumps(kwargs)
    assert OGCJobTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_logs_each_status_change_and_ends_on_success(
    replay: ReplayServer, make_conn: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    replay.route(
        "GET",
        JOB,
        status("accepted", 0),
        status("running", 40, "step 1/2"),
        status("running", 40, "step 1/2"),
        status("running", 80, "step 2/2"),
        status("successful", 100, "done"),
    )
    event = run_trigger(trigger(make_conn(f"{replay.url}/ogc")))
    assert event["status"] == "successful" and event["job"]["progress"] == 100
    logs = capsys.readouterr().out + caplog.text
    for line in (
        "Job j1: accepted, progress 0%",
        "Job j1: running, progress 40%, step 1/2",
        "Job j1: running, progress 80%, step 2/2",
        "Job j1: successful, progress 100%, done",
    ):
        assert line in logs
    assert logs.count("step 1/2") == 1, "an unchanged status is not logged again"


def test_rides_out_transient_errors(replay: ReplayServer, make_conn: Any) -> None:
    replay.route(
        "GET",
        JOB,
        status("running"),
        Reply(503),
        Reply(reset=True),
        Reply(502, "<html>bad gateway</html>", content_type="text/html"),
        Reply(429, None, headers={"Retry-After": "0"}),
        status("successful"),
    )
    conn = make_conn(f"{replay.url}/ogc", extra={"max_retries": 0})
    event = run_trigger(trigger(conn, max_transient_errors=5))
    assert event["status"] == "successful"
    assert len(replay.hits("GET", JOB)) == 6


def test_gives_up_after_a_bounded_run_of_transient_errors(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("GET", JOB, Reply(503, {"title": "maintenance"}))
    conn = make_conn(f"{replay.url}/ogc", extra={"max_retries": 0})
    event = run_trigger(trigger(conn, max_transient_errors=3))
    assert event["status"] == "error" and "4 consecutive transient errors" in event["message"]
    assert "maintenance" in event["message"] and len(replay.hits("GET", JOB)) == 4


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(404, {"type": "no-such-job", "title": "No such job"}), "permanent error"),
        (Reply(401, {"title": "Unauthorized"}), "HTTP 401"),
        (Reply(200, {"jobID": "j1", "status": "paused"}), "Unknown job status 'paused'"),
        (Reply(200, "not json", content_type="application/json"), "Expected JSON"),
    ],
)
def test_permanent_errors_end_at_once(
    replay: ReplayServer, make_conn: Any, reply: Reply, expected: str
) -> None:
    replay.route("GET", JOB, reply)
    event = run_trigger(trigger(make_conn(f"{replay.url}/ogc")))
    assert event["status"] == "error" and expected in event["message"]
    assert len(replay.hits("GET", JOB)) == 1, "no retry of a permanent error"


def test_deadline_dismisses_and_reports_timeout(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("GET", JOB, status("running"))
    replay.route("DELETE", JOB, Reply(200, {"jobID": "j1", "status": "dismissed"}))
    started = time.monotonic()
    event = run_trigger(trigger(make_conn(f"{replay.url}/ogc"), deadline=time.time() + 0.5))
    assert event["status"] == "timeout" and "dismissed" in event["message"]
    assert time.monotonic() - started < 3
    assert len(replay.hits("DELETE", JOB)) == 1


def test_deadline_without_dismissal(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("GET", JOB, status("running"))
    event = run_trigger(
        trigger(make_conn(f"{replay.url}/ogc"), deadline=time.time() + 0.3, dismiss_on_timeout=False)
    )
    assert event["status"] == "timeout" and not replay.hits("DELETE", JOB)


def test_polls_adaptively(replay: ReplayServer, make_conn: Any) -> None:
    # A job submitted 100 s ago is polled every ratio*100 s (capped), not every min_poll_interval.
    replay.route("GET", JOB, status("running"))
    trig = trigger(
        make_conn(f"{replay.url}/ogc"),
        submitted_at=time.time() - 100,
        min_poll_interval=0.05,
        max_poll_interval=1.0,
        poll_ratio=0.15,
        deadline=time.time() + 2.5,
    )
    run_trigger(trig)
    polls = len(replay.hits("GET", JOB))
    assert 2 <= polls <= 4, f"{polls} polls in 2.5 s at a 1 s ceiling"


TASK = SimpleNamespace(dag_id="d", task_id="run", run_id="manual__1", map_index=-1, try_number=1)


@pytest.mark.parametrize(
    ("state", "dismissed"),
    [
        ("failed", True),  # marked failed
        ("success", True),  # marked success
        (None, True),  # cleared
        ("restarting", True),
        ("deferred", False),  # reassigned to another triggerer, which watches the job now
        ("scheduled", False),  # the trigger fired elsewhere and the task is resuming
        ("queued", False),
        ("running", False),
    ],
)
async def test_on_kill_dismisses_only_a_task_a_person_stopped(
    replay: ReplayServer, make_conn: Any, monkeypatch: pytest.MonkeyPatch, state: str | None, dismissed: bool
) -> None:
    replay.route("DELETE", JOB, Reply(200, {"jobID": "j1", "status": "dismissed"}))
    trig = trigger(make_conn(f"{replay.url}/ogc"))
    trig.task_instance = TASK

    async def task_state(ti: Any) -> str | None:
        assert ti is TASK
        return state

    monkeypatch.setattr(trig, "_task_state", task_state)
    await trig.on_kill()
    assert len(replay.hits("DELETE", JOB)) == int(dismissed)


async def test_on_kill_keeps_the_job_when_the_task_state_cannot_be_read(
    replay: ReplayServer, make_conn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Outside a triggerer there is no supervisor to ask: the lookup really fails.
    trig = trigger(make_conn(f"{replay.url}/ogc"))
    trig.task_instance = TASK
    await trig.on_kill()
    assert not replay.hits("DELETE", JOB)
    assert "Not dismissing job j1: the task instance's state cannot be read" in capsys.readouterr().out
