"""Execute answers no server here gives on demand (ZOO-Project-DRU's, the edge cases), over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ogc.exceptions import OGCInvalidResponseError
from airflow_provider_ogc.models import JobStatus
from tests.support.openapi import validate
from tests.support.replay_server import ReplayServer, Reply
from tests.support.seed import SEED_JOB_ID, zoo_status_info

SEED_INPUTS = {
    "stac_items": [
        "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items/LC08_L2SP_044032_20231208_02_T1",
        "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items/LC08_L2SP_043033_20231201_02_T1",
    ],
    "aoi": "-121.399,39.834,-120.74,40.472",
    "epsg": "EPSG:4326",
    "bands": ["green", "nir08"],
}
EXEC = "/acme/ogc-api/processes/water-bodies/execution"


def test_zoo_answer_201_status_info_with_monitor_link(
    replay: ReplayServer, hook_for: Any, shared_dir: Path
) -> None:
    replay.route("POST", EXEC, Reply(201, zoo_status_info("{base}/acme/ogc-api", "running")))
    hook = hook_for(f"{replay.url}/acme/ogc-api")

    execution = hook.execute_process("water-bodies", SEED_INPUTS)

    assert execution.job_id == SEED_JOB_ID and not execution.synchronous
    assert execution.job_url == f"{replay.url}/acme/ogc-api/jobs/{SEED_JOB_ID}"
    assert execution.status is not None and execution.status.status is JobStatus.RUNNING
    sent = replay.hits("POST", EXEC)[0]
    assert sent.headers["Prefer"] == "respond-async"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    assert sent.json() == {"inputs": SEED_INPUTS}
    validate(shared_dir, "execute-workflow", sent.json())


def test_monitor_link_on_another_host_is_not_trusted(replay: ReplayServer, hook_for: Any) -> None:
    # The seed's server advertises its cluster-internal name; we keep polling the connection's host.
    replay.route("POST", EXEC, Reply(201, zoo_status_info("http://zoo-project-dru-service/acme/ogc-api")))
    execution = hook_for(f"{replay.url}/acme/ogc-api").execute_process("water-bodies", SEED_INPUTS)
    assert execution.job_url == f"{replay.url}/acme/ogc-api/jobs/{SEED_JOB_ID}"


@pytest.mark.parametrize("body", [None, "null"])
def test_201_with_location_and_empty_or_null_body(replay: ReplayServer, hook_for: Any, body: Any) -> None:
    replay.route("POST", EXEC, Reply(201, body, headers={"Location": "{base}/acme/ogc-api/jobs/abc-1"}))
    execution = hook_for(f"{replay.url}/acme/ogc-api").execute_process("water-bodies", {})
    assert (execution.job_id, execution.job_url) == ("abc-1", f"{replay.url}/acme/ogc-api/jobs/abc-1")
    assert execution.status is not None and execution.status.status is JobStatus.ACCEPTED


def test_relative_location_is_resolved(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("POST", EXEC, Reply(201, None, headers={"Location": "/acme/ogc-api/jobs/rel-7"}))
    execution = hook_for(f"{replay.url}/acme/ogc-api").execute_process("water-bodies", {})
    assert execution.job_url == f"{replay.url}/acme/ogc-api/jobs/rel-7"


def test_200_with_results_is_a_synchronous_execution(replay: ReplayServer, hook_for: Any) -> None:
    results = {"stac_catalog": {"value": {"type": "FeatureCollection", "features": []}}}
    replay.route("POST", EXEC, Reply(200, results))
    execution = hook_for(f"{replay.url}/acme/ogc-api").execute_process("water-bodies", {})
    assert execution.synchronous and execution.results == results and execution.job_id is None


def test_201_without_job_id_anywhere_is_a_clear_error(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("POST", EXEC, Reply(201, {"message": "ok"}))
    with pytest.raises(OGCInvalidResponseError, match="neither a Location header nor a statusInfo"):
        hook_for(f"{replay.url}/acme/ogc-api").execute_process("water-bodies", {})


@pytest.mark.parametrize(("mode", "prefer"), [("async", "respond-async"), ("sync", "wait"), ("auto", None)])
def test_execution_modes_set_prefer(
    replay: ReplayServer, hook_for: Any, mode: str, prefer: str | None
) -> None:
    replay.route("POST", EXEC, Reply(200, {"out": 1}))
    hook_for(f"{replay.url}/acme/ogc-api").execute_process(
        "water-bodies", {"a": 1}, outputs={"out": {}}, response="document", mode=mode
    )
    sent = replay.hits("POST", EXEC)[0]
    assert sent.headers.get("Prefer") == prefer
    assert sent.json() == {"inputs": {"a": 1}, "outputs": {"out": {}}, "response": "document"}


def test_bad_mode_and_empty_process_id_fail_before_sending(replay: ReplayServer, hook_for: Any) -> None:
    hook = hook_for(f"{replay.url}/acme/ogc-api")
    with pytest.raises(ValueError, match="mode must be one of"):
        hook.execute_process("water-bodies", {}, mode="later")
    with pytest.raises(ValueError, match="process_id must be a non-empty string"):
        hook.execute_process(" ", {})
    assert replay.requests == []


def test_ids_are_path_escaped(replay: ReplayServer, hook_for: Any) -> None:
    replay.route("GET", "/ogc/jobs/a%2Fb%20c", Reply(200, {"jobID": "a/b c", "status": "running"}))
    info = hook_for(f"{replay.url}/ogc").get_job_status("a/b c")
    assert info.job_id == "a/b c" and replay.hits("GET", "/ogc/jobs/a%2Fb%20c")
