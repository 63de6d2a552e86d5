"""Judging a job list after a lost execute response, without HTTP: ``match_job_list`` and the window."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_ogc.submission import (
    CLOCK_SLACK,
    STALE_DATE,
    match_job_list,
    parse_timestamp,
    reconciliation_window,
)

SENT, FAILED = 1_000_000.0, 1_000_010.0  # the request was in flight for 10 s
WINDOW = (SENT, FAILED)
PROCESS = "water-bodies"


def at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def job(job_id: str, created: float | None, process: str | None = PROCESS, **times: float) -> dict[str, Any]:
    raw: dict[str, Any] = {"jobID": job_id, "status": "running"}
    if process is not None:
        raw["processID"] = process
    if created is not None:
        raw["created"] = at(created)
    raw.update({k: at(v) for k, v in times.items()})
    return raw


def test_one_job_created_in_flight_is_adopted() -> None:
    jobs = [job("old", SENT - 60), job("mine", SENT + 3), job("other", SENT + 4, process="ndvi")]
    found = match_job_list(jobs, PROCESS, WINDOW)
    assert found.adoptable == jobs[1] and found.ids == ["mine"] and not found.empty


def test_no_job_since_the_request_means_none_was_created() -> None:
    found = match_job_list([job("old", SENT - 60), job("other", SENT + 1, process="ndvi")], PROCESS, WINDOW)
    assert found.empty and found.adoptable is None and found.ids == []


def test_two_jobs_in_flight_are_ambiguous() -> None:
    found = match_job_list([job("a", SENT + 1), job("b", SENT + 2)], PROCESS, WINDOW)
    assert found.adoptable is None and not found.empty and found.ids == ["a", "b"]


def test_a_job_created_after_the_failure_is_not_adopted() -> None:
    found = match_job_list([job("mine", SENT + 1), job("late", FAILED + 5)], PROCESS, WINDOW)
    assert found.adoptable is None and found.after_failure == ["late"]
    assert match_job_list([job("late", FAILED + 5)], PROCESS, WINDOW).after_failure == ["late"]


def test_jobs_without_process_or_creation_time_are_unknown_not_adopted() -> None:
    no_process = job("np", SENT + 1, process=None)
    no_created = job("nc", None)
    found = match_job_list([no_process, no_created], PROCESS, WINDOW)
    assert found.unknown == ["np", "nc"] and found.adoptable is None and found.in_flight == []


def test_a_later_timestamp_before_the_window_rules_out_a_job_without_created() -> None:
    started_before = job("sb", None, started=SENT - 30)
    assert match_job_list([started_before], PROCESS, WINDOW).empty
    started_after = job("sa", None, started=SENT + 1)
    assert match_job_list([started_after], PROCESS, WINDOW).unknown == ["sa"]


def test_claimed_jobs_and_jobs_without_an_id_are_left_out() -> None:
    jobs = [job("owned", SENT + 1), {"status": "running", "created": at(SENT + 2)}, job("mine", SENT + 3)]
    found = match_job_list(jobs, PROCESS, WINDOW, claimed=lambda job_id: job_id == "owned")
    assert found.adoptable == jobs[2]


@pytest.mark.parametrize("key", ["jobID", "jobId", "job_id", "id"])
def test_every_job_id_spelling_is_read(key: str) -> None:
    raw = {key: "j1", "processID": PROCESS, "created": at(SENT + 1)}
    assert match_job_list([raw], PROCESS, WINDOW).ids == ["j1"]


def test_the_window_follows_the_servers_clock() -> None:
    # A server 100 s ahead (offset known within half a second) sees the request at +100 s.
    start, end = reconciliation_window((SENT, FAILED), (100.0, 100.5))
    assert start == SENT + 100 - CLOCK_SLACK
    assert end == FAILED + 100.5 + STALE_DATE + CLOCK_SLACK
    assert match_job_list([job("mine", SENT + 101)], PROCESS, (start, end)).adoptable is not None
    assert match_job_list([job("mine", SENT + 1)], PROCESS, (start, end)).empty
    # Without a Date header the clocks are taken as equal within a second.
    assert reconciliation_window((SENT, FAILED), None) == (
        SENT - 1 - CLOCK_SLACK,
        FAILED + 1 + STALE_DATE + CLOCK_SLACK,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T10:00:00Z", 1_796_032_800.0),
        ("2026-11-30T10:00:00.250000+00:00", 1_796_032_800.25),
        ("2026-11-30 11:00:00+0100", 1_796_032_800.0),
        ("2026-11-30T10:00", 1_796_032_800.0),  # no offset: UTC
        ("yesterday", None),
        (1_796_032_800, None),
    ],
)
def test_timestamps_in_job_lists(text: Any, expected: float | None) -> None:
    assert parse_timestamp(text) == expected
