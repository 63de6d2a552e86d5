"""The event contract between trigger and tasks, and the one exception tree."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from airflow_provider_ogc import exceptions
from airflow_provider_ogc._compat import AirflowFailException
from airflow_provider_ogc.events import JobEvent, JobOutcome
from airflow_provider_ogc.exceptions import (
    OGCInvalidEventError,
    OGCJobFailedError,
    OGCJobFailedPermanentlyError,
    OGCProcessesAPIError,
    OGCProcessesError,
    fail_permanent_errors,
)
from airflow_provider_ogc.models import JobStatus, StatusInfo
from airflow_provider_ogc.operators import ExecuteProcessOperator
from airflow_provider_ogc.sensors import JobStatusSensor

FINAL = StatusInfo(job_id="j1", status=JobStatus.FAILED, job_url="http://h/jobs/j1", message="no pixels")


def test_an_event_survives_its_json_payload() -> None:
    event = JobEvent.ended(FINAL)
    payload = event.to_payload()
    assert payload == {
        "status": "failed",
        "job_id": "j1",
        "message": "no pixels",
        "job": FINAL.to_dict(),
        "permanent": False,
    }
    assert JobEvent.from_payload(payload) == event
    assert event.status_info == FINAL
    error = JobEvent(JobOutcome.ERROR, "j1", "HTTP 404", permanent=True)
    assert JobEvent.from_payload(error.to_payload()) == error and error.fails_permanently


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (None, "of type NoneType, not a job event"),
        ("successful", "of type str, not a job event"),
        ({"job_id": "j1"}, "'status' is None, not one of successful, failed, dismissed, timeout, error"),
        ({"status": "done", "job_id": "j1"}, "'status' is 'done'"),
        ({"status": "successful"}, "'job_id' is None, not a job id"),
        ({"status": "failed", "job_id": ""}, "'job_id' is '', not a job id"),
        ({"status": "failed", "job_id": "j1", "message": {"x": 1}}, "'message' is a dict, not text"),
        ({"status": "failed", "job_id": "j1", "job": {"jobID": "j1"}}, "'job' is not a statusInfo"),
        ({"status": "oops", "job_id": 7}, "'status' is 'oops', not one of .*; 'job_id' is 7"),
    ],
)
def test_a_malformed_event_names_what_is_wrong(payload: Any, named: str) -> None:
    with pytest.raises(OGCInvalidEventError, match=named):
        JobEvent.from_payload(payload)


def test_a_task_resumed_with_a_malformed_event_fails_with_that_message() -> None:
    operator = ExecuteProcessOperator(task_id="run", process_id="p")
    with pytest.raises(OGCInvalidEventError, match="malformed job event: 'status' is 'done'"):
        operator.execute_complete({}, {"status": "done", "job_id": "j1"})
    sensor = JobStatusSensor(task_id="wait", job_id="j1")
    with pytest.raises(OGCInvalidEventError, match="'job_id' is None"):
        sensor.execute_complete({}, {"status": "successful"})


def test_every_provider_error_has_one_root_and_says_whether_a_retry_helps() -> None:
    classes = [
        obj
        for name in exceptions.__all__
        if inspect.isclass(obj := getattr(exceptions, name)) and issubclass(obj, BaseException)
    ]
    assert len(classes) == 12
    for cls in classes:
        assert issubclass(cls, OGCProcessesError), cls
    examples = {
        "InvalidInputsError": exceptions.InvalidInputsError("p", ["bad"]),
        "OGCAmbiguousSubmissionError": exceptions.OGCAmbiguousSubmissionError("x", process_id="p"),
        "OGCSubmissionUncertainError": exceptions.OGCSubmissionUncertainError("x", process_id="p"),
        "OGCInvalidResponseError": exceptions.OGCInvalidResponseError("x", http_status=200),
        "OGCProcessesAPIError": OGCProcessesAPIError("x", http_status=503),
    }
    transient = {"OGCProcessesAPIError", "OGCInvalidEventError", "OGCJobFailedError"}
    for cls in classes:
        error = examples.get(cls.__name__) or cls("x")
        assert error.permanent is (cls.__name__ not in transient), cls
    assert OGCProcessesAPIError("x", http_status=409).permanent
    assert not OGCProcessesAPIError("x", http_status=429).permanent
    assert not OGCProcessesAPIError("x", http_status=502).permanent
    assert issubclass(OGCJobFailedPermanentlyError, AirflowFailException)


@pytest.mark.parametrize(
    ("error", "fails_permanently", "message"),
    [
        (
            OGCProcessesAPIError("HTTP 401 Unauthorized", http_status=401),
            True,
            "The server wants credentials",
        ),
        (OGCProcessesAPIError("HTTP 404 Not Found", http_status=404), True, "Job 'j1' was not found"),
        (OGCProcessesAPIError("HTTP 502 Bad Gateway", http_status=502), False, "HTTP 502"),
        (OGCJobFailedError("ended failed"), False, "ended failed"),
        (exceptions.StacResultsError("no self link"), True, "no self link"),
    ],
)
def test_the_task_side_policy_reads_the_flag(error: Exception, fails_permanently: bool, message: str) -> None:
    with pytest.raises(Exception, match=message) as caught, fail_permanent_errors(job_id="j1"):
        raise error
    assert isinstance(caught.value, AirflowFailException) is fails_permanently
    assert (caught.value is error) is not fails_permanently
