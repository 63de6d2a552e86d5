"""Parsing of statusInfo and friends: OGC examples, the seed's ZOO-Project-DRU output, bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_ogc.exceptions import OGCInvalidResponseError
from airflow_provider_ogc.models import JobStatus, StatusInfo, looks_like_status_info
from tests.support.openapi import validate
from tests.support.seed import SEED_JOB_ID, seed_feature_collection, zoo_status_info


def _example(shared: Path, name: str) -> dict:
    return json.loads((shared / "ogc-api-processes" / "examples" / name).read_text())


def test_ogc_example_status_info_parses(shared_dir: Path) -> None:
    doc = _example(shared_dir, "StatusInfo.json")
    validate(shared_dir, "statusCode", doc["status"])
    info = StatusInfo.from_dict(doc, job_url="http://x/jobs/1")
    assert info.job_id == "81574318-1eb1-4d7c-af61-4b3fbcf33c4f"
    assert info.status is JobStatus.ACCEPTED and not info.is_terminal
    assert info.progress == 0 and info.created == "2021-05-04T10:13:00+05:00"
    assert info.link("self") is not None


def test_processes_2_status_info_parses(shared_dir: Path) -> None:
    # The bundled OpenAPI document is the 2.0 draft: ``id`` and ``processingEntityType`` replace ``jobID``.
    doc = {"id": "j-2", "status": "running", "processingEntityType": "ogc-api-processes", "progress": 10}
    validate(shared_dir, "statusInfo", doc)
    assert looks_like_status_info(doc)
    info = StatusInfo.from_dict(doc)
    assert (info.job_id, info.status, info.progress) == ("j-2", JobStatus.RUNNING, 10)


def test_ogc_example_dismissed_is_terminal(shared_dir: Path) -> None:
    info = StatusInfo.from_dict(_example(shared_dir, "StatusInfo-dismissed.json"))
    assert info.status is JobStatus.DISMISSED and info.is_terminal and info.progress == 56


def test_ogc_example_job_list_parses(shared_dir: Path) -> None:
    doc = _example(shared_dir, "JobList.json")
    jobs = [StatusInfo.from_dict(raw) for raw in doc["jobs"]]
    assert [j.status for j in jobs][:3] == [JobStatus.RUNNING, JobStatus.SUCCESSFUL, JobStatus.FAILED]
    assert jobs[0].process_id == "Voronoi" and jobs[0].message == "Perform step 1/2"


def test_zoo_status_info_from_seed_shape(shared_dir: Path) -> None:
    doc = zoo_status_info("http://zoo-project-dru-service/acme/ogc-api")
    validate(shared_dir, "statusCode", doc["status"])
    info = StatusInfo.from_dict(doc)
    assert info.job_id == SEED_JOB_ID and info.status is JobStatus.RUNNING
    monitor = info.link("monitor")
    assert monitor and monitor.href.endswith(f"/acme/ogc-api/jobs/{SEED_JOB_ID}")


def test_seed_results_feature_collection_is_readable(shared_dir: Path) -> None:
    fc = seed_feature_collection(shared_dir)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 2
    self_links = [ln["href"] for f in fc["features"] for ln in f["links"] if ln["rel"] == "self"]
    assert self_links[0].startswith(f"s3://results/{SEED_JOB_ID}/")


@pytest.mark.parametrize("value", ["RUNNING", " successful ", "Failed"])
def test_status_parse_is_case_insensitive(value: str) -> None:
    assert JobStatus.parse(value).value == value.strip().lower()


@pytest.mark.parametrize("value", ["inProgress", "done", 3, None])
def test_unknown_status_is_a_clear_error(value: object) -> None:
    with pytest.raises(OGCInvalidResponseError, match="Unknown job status"):
        JobStatus.parse(value)


def test_accepted_and_running_are_not_terminal() -> None:
    assert not JobStatus.ACCEPTED.is_terminal and not JobStatus.RUNNING.is_terminal
    assert all(s.is_terminal for s in (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.DISMISSED))


def test_status_info_tolerates_other_spellings() -> None:
    info = StatusInfo.from_dict({"jobId": 7, "status": "running", "processId": "p", "progress": "42.5"})
    assert (info.job_id, info.process_id, info.progress) == ("7", "p", 42)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"status": "running"}, "no job id"),
        ({"jobID": "a"}, "has no status"),
        (["not", "an", "object"], "Expected a statusInfo JSON object"),
        ({"jobID": "a", "status": "paused"}, "Unknown job status 'paused'"),
    ],
)
def test_status_info_errors_name_the_problem(doc: object, message: str) -> None:
    with pytest.raises(OGCInvalidResponseError, match=message):
        StatusInfo.from_dict(doc)


def test_status_info_round_trips_through_plain_json() -> None:
    info = StatusInfo.from_dict(zoo_status_info("http://h/ogc"), job_url="http://h/ogc/jobs/1")
    plain = json.loads(json.dumps(info.to_dict()))
    assert StatusInfo.from_plain(plain) == info


def test_results_documents_are_not_mistaken_for_status_info(shared_dir: Path) -> None:
    assert not looks_like_status_info(_example(shared_dir, "Result.json"))
    assert not looks_like_status_info({"status": "ok", "value": 1})
    assert looks_like_status_info(zoo_status_info("http://h"))
    assert looks_like_status_info({"id": "1", "type": "process", "status": "accepted"})


def test_the_openapi_validator_accepts_the_ogc_example(shared_dir: Path) -> None:
    # Execute2.json uses Part 3 workflow members this bundle does not define.
    validate(shared_dir, "execute-workflow", _example(shared_dir, "Execute.json"))


def test_the_openapi_validator_rejects_a_wrong_document(shared_dir: Path) -> None:
    from jsonschema import ValidationError

    with pytest.raises(ValidationError):
        validate(shared_dir, "statusCode", "paused")
    with pytest.raises(ValidationError):
        validate(shared_dir, "execute-workflow", {"inputs": {}, "subscriber": {"successUri": 5}})
