"""OpenLineage: a real DAG run (``airflow dags test``) writes, through the file transport, events
naming the operator's input STAC items, its result items and their data assets, and the remote job.

Two tasks: a ZOO-Project-DRU water-bodies job (the seed's answers, replayed: the only process here
that takes ``stac_items`` hrefs), deferred to the triggerer; and the real pygeoapi's ``water-stac``
polled on the worker. Needs the ``openlineage`` extra (skipped without it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.servers.launch import RunningServer
from tests.support.replay_server import ReplayServer, Reply
from tests.support.seed import SEED_JOB_ID, seed_feature_collection, zoo_status_info

pytest.importorskip("airflow.providers.openlineage", reason="the openlineage extra is not installed")
pytestmark = pytest.mark.integration
AIRFLOW = str(Path(sys.executable).parent / "airflow")

STAC_ITEMS = [
    "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items/LC08_L2SP_044032_20231208_02_T1",
    "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items/LC08_L2SP_043033_20231201_02_T1",
]
SCENES = ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_043033_20231201_02_T1"]
LOGIN, PASSWORD = "lineage-user", "lineage-s3cr3t-pw"

DAG_FILE = f"""
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_ogc.operators import ExecuteProcessOperator

with DAG("lineage", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    ExecuteProcessOperator(
        task_id="zoo_water_bodies",
        ogc_conn_id="lineage_zoo",
        process_id="water-bodies",
        inputs={{"stac_items": {STAC_ITEMS!r}, "aoi": "-121.399,39.834,-120.74,40.472", "bands": ["green", "nir08"]}},
        validate_inputs=False,
        poll_interval=0.2,
    )
    ExecuteProcessOperator(
        task_id="pygeoapi_water_stac",
        ogc_conn_id="lineage_pygeoapi",
        process_id="water-stac",
        inputs={{"item_ids": {SCENES!r}}},
        deferrable=False,
        poll_interval=0.2,
    )
"""


@pytest.fixture
def zoo(shared_dir: Path) -> Any:
    """The seed's ZOO-Project-DRU water-bodies job: accepted, then successful with its STAC items."""
    with ReplayServer() as replay:
        replay.route(
            "POST",
            "/ogc/processes/water-bodies/execution",
            Reply(201, zoo_status_info("{base}/ogc", "running")),
        )
        replay.route(
            "GET", f"/ogc/jobs/{SEED_JOB_ID}", Reply(200, zoo_status_info("{base}/ogc", "successful"))
        )
        replay.route(
            "GET",
            f"/ogc/jobs/{SEED_JOB_ID}/results",
            Reply(200, {"stac_catalog": {"value": seed_feature_collection(shared_dir)}}),
        )
        yield replay


def run_dag(tmp_path: Path, zoo_url: str, pygeoapi_url: str) -> list[dict[str, Any]]:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "lineage_dag.py").write_text(DAG_FILE)
    events_file = tmp_path / "ol.json"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "OPENLINEAGE"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events_file), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "ogc-lineage-test",
            "AIRFLOW_CONN_LINEAGE_ZOO": json.dumps(
                {"conn_type": "ogc_processes", "host": f"{zoo_url}/ogc", "login": LOGIN, "password": PASSWORD}
            ),
            "AIRFLOW_CONN_LINEAGE_PYGEOAPI": json.dumps({"conn_type": "ogc_processes", "host": pygeoapi_url}),
        }
    )
    (tmp_path / "home").mkdir()
    migrate = subprocess.run([AIRFLOW, "db", "migrate"], capture_output=True, text=True, env=env, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    run = subprocess.run(
        [AIRFLOW, "dags", "test", "lineage"], capture_output=True, text=True, env=env, timeout=300
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "state=success" in output, output[-5000:]
    assert events_file.exists(), "no OpenLineage event was written: " + output[-3000:]
    text = events_file.read_text()
    assert LOGIN not in text and PASSWORD not in text, "credentials reached an OpenLineage event"
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def task_events(events: list[dict[str, Any]], task_id: str, event_type: str) -> list[dict[str, Any]]:
    found = [e for e in events if e["eventType"] == event_type and e["job"]["name"] == f"lineage.{task_id}"]
    assert found, (
        f"no {event_type} event of {task_id}: {[(e['eventType'], e['job']['name']) for e in events]}"
    )
    return found


def task_event(events: list[dict[str, Any]], task_id: str, event_type: str) -> dict[str, Any]:
    (found,) = task_events(events, task_id, event_type)
    return found


def names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def test_lineage_events_name_inputs_outputs_and_the_remote_job(
    tmp_path: Path, zoo: ReplayServer, pygeoapi_server: RunningServer
) -> None:
    events = run_dag(tmp_path, zoo.url, pygeoapi_server.url)
    stac_api = ("https://planetarycomputer.microsoft.com", "/api/stac/v1/collections/landsat-c2-l2/items/")
    results = ("s3://results", f"{SEED_JOB_ID}/{SEED_JOB_ID}/")

    # A START when the task starts, and another when it resumes after deferring: each names the inputs.
    for start in task_events(events, "zoo_water_bodies", "START"):
        assert names(start["inputs"]) == [(stac_api[0], stac_api[1] + scene) for scene in SCENES]

    complete = task_event(events, "zoo_water_bodies", "COMPLETE")
    assert names(complete["inputs"]) == [(stac_api[0], stac_api[1] + scene) for scene in SCENES]
    assert names(complete["outputs"]) == [
        (results[0], results[1] + path)
        for scene in SCENES
        for path in (f"{scene}/{scene}.json", f"{scene}/otsu.tif")
    ]
    facets = complete["run"]["facets"]
    job = facets["ogcApiProcessesJob"]
    assert (job["jobId"], job["processId"]) == (SEED_JOB_ID, "water-bodies")
    assert job["server"] == f"{zoo.url}/ogc" and "@" not in job["server"]
    assert job["jobUrl"] == f"{zoo.url}/ogc/jobs/{SEED_JOB_ID}"
    assert facets["externalQuery"]["externalQueryId"] == SEED_JOB_ID
    assert facets["externalQuery"]["source"] == f"{zoo.url}/ogc"

    # The real pygeoapi: no href inputs (item ids), its items and masks on S3 as outputs.
    complete = task_event(events, "pygeoapi_water_stac", "COMPLETE")
    assert complete["inputs"] == []
    job = complete["run"]["facets"]["ogcApiProcessesJob"]
    assert job["processId"] == "water-stac" and job["server"] == pygeoapi_server.url
    prefix = f"{job['jobId']}/"
    assert names(complete["outputs"]) == [
        ("s3://results", prefix + path)
        for scene in SCENES
        for path in (f"{scene}/{scene}.json", f"{scene}/otsu.tif")
    ]
