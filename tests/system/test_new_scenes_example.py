"""The example DAG ``water_bodies_on_new_scenes`` end to end, under a real scheduler, dag-processor,
triggerer and api-server, against the local dev stack (moto S3 with the synthetic Landsat COGs,
stac-fastapi-pgstac with the 12 scenes, pygeoapi with the real ``water-bodies`` process).

The promise: the scenes already in the catalog start no run; one new scene ingested into pgstac starts
exactly one run, which submits ``water-bodies`` on exactly that scene and gets its water mask back as
one result STAC item; nothing runs twice.

The example is copied as it is into a temporary DAG folder, its ``poll_interval=600`` only shortened.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ci import unavailable
from tests.system.airflow_stack import AirflowStack

pytestmark = pytest.mark.system
REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
EXAMPLE = REPO / "example_dags" / "water_bodies_on_new_scenes.py"
DAG_ID = "water_bodies_on_new_scenes"
POLL_EXAMPLE = "poll_interval=600,"
POLL_TEST = "poll_interval=2,"
STORED = "Stored the watermark"
# The example's filter: the watcher's first watermark is the newest of these scenes (all in its AOI).
CLOUD_LIMIT = 20.0
# The new scene: the seed's first scene acquired again 32 days later (same footprint and COGs on S3).
BASE_ID = "LC08_L2SP_044032_20231208_02_T1"
NEW_ID = "LC08_L2SP_044032_20240109_02_T1"
NEW_DATETIME = "2024-01-09T18:45:20.000000Z"
# Seconds water-bodies pauses after each of its 5 progress steps for one scene: the job runs ~13 s,
# so the job's trigger fires well after the deferral (Airflow 3.3.2 fails a deferred task whose
# trigger fires within ~5 s of the deferral, apache/airflow#67287).
STEP_DELAY = 2.6


@pytest.fixture(scope="module")
def stac_bin() -> Path:
    """The STAC API's virtualenv (pypgstac), once PostgreSQL 15 + PostGIS 3 are installed."""
    from dev import stac_api

    path = Path(os.environ.get("OGC_TEST_STAC_BIN") or REPO / ".venv-stac" / "bin")
    problem = stac_api.missing_requirements(path)
    if problem:
        unavailable(problem)
    return path


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory, stac_bin: Path) -> Iterator[Any]:
    """The dev stack (as ``tests/dev/conftest.py``'s ``dev_stack``), its job slowed by ``STEP_DELAY``."""
    from dev.stack import start_stack

    if not (BIN_DIR / "airflow").exists():
        unavailable(f"no airflow executable beside {sys.executable}")
    pygeoapi_bin = Path(os.environ.get("OGC_TEST_PYGEOAPI_BIN") or REPO / ".venv-pygeoapi" / "bin")
    if not pygeoapi_bin.is_dir():
        unavailable(f"pygeoapi is not installed ({pygeoapi_bin} missing); run the README's test command")
    stack = start_stack(
        tmp_path_factory.mktemp("dev-stack"),
        pygeoapi_bin=pygeoapi_bin,
        moto_bin=BIN_DIR,
        stac_bin=stac_bin,
        step_delay=STEP_DELAY,
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, dev_stack: Any) -> Iterator[AirflowStack]:
    source = EXAMPLE.read_text()
    # Fails when the example changes its poll interval: then this test must be looked at again.
    assert source.count(POLL_EXAMPLE) == 1, f"{EXAMPLE.name} no longer has exactly one {POLL_EXAMPLE!r}"
    dags = tmp_path_factory.mktemp("new-scenes-dags")
    (dags / EXAMPLE.name).write_text(source.replace(POLL_EXAMPLE, POLL_TEST))
    # The stack's connections (stac_api_default, ogc_processes_default, aws_default) and AWS_*.
    env = {**dev_stack.env(), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    home = tmp_path_factory.mktemp("airflow-home")
    with AirflowStack(home, dags, BIN_DIR, env=env, parallelism=4).start() as stack:
        yield stack


def add_scene(dev_stack: Any, stac_bin: Path, item: dict[str, Any]) -> None:
    """Upsert one item into the stack's pgstac with pypgstac, as the stack loaded its own scenes."""
    from dev import stac_api

    inputs = dev_stack.workdir / "inputs"
    items = inputs / f"new-{item['id']}.ndjson"
    items.write_text(json.dumps(item) + "\n")
    stac_api.load_pgstac(
        dev_stack.workdir,
        stac_bin,
        dev_stack.servers["postgres"],
        inputs / "collection.json",
        items,
        60,
    )


def new_scene(dev_stack: Any) -> dict[str, Any]:
    """A copy of ``BASE_ID``'s item (as loaded into pgstac) with a new id and date, few clouds."""
    loaded = (dev_stack.workdir / "inputs" / "items.ndjson").read_text().splitlines()
    (base,) = [i for i in map(json.loads, loaded) if i["id"] == BASE_ID]
    item = copy.deepcopy(base)
    item["id"] = NEW_ID
    item["properties"].update({"datetime": NEW_DATETIME, "eo:cloud_cover": 3.0})
    # Same footprint and same COGs: the process reads real pixels.
    assert {a["href"] for a in item["assets"].values()} == {a["href"] for a in base["assets"].values()}
    return item


def wait_logged(stack: AirflowStack, text: str, timeout: float = 90) -> None:
    """Wait until the triggerer has logged ``text`` (the watcher logs to the triggerer's own log)."""
    stack.wait_until(
        f"the triggerer to log {text!r}", timeout, lambda: text in stack.component_log("triggerer")
    )


def explain(stack: AirflowStack, run_id: str) -> str:
    parts = [json.dumps(stack.task_states(DAG_ID, run_id))]
    for ti in stack.task_instances(DAG_ID, run_id):
        if ti["try_number"] > 0:
            log = stack.task_log(DAG_ID, run_id, ti["task_id"], ti["try_number"])
            parts.append(f"--- {ti['task_id']} ---\n{log[-3000:]}")
    return "\n".join(parts)


def read_s3_json(dev_stack: Any, href: str) -> dict[str, Any]:

    bucket, key = href.removeprefix("s3://").split("/", 1)
    s3 = dev_stack.s3_client()
    body: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return body


def test_one_new_scene_runs_water_bodies_once_on_that_scene(
    airflow: AirflowStack, dev_stack: Any, stac_bin: Path
) -> None:
    from dev import scenes

    t0 = time.monotonic()
    airflow.unpause(DAG_ID)
    # The watcher's first search takes the 12 scenes there as seen: its first watermark is the newest
    # one the example's filter lets through, and no run follows.
    newest = max(s.datetime for s in scenes.SCENES.values() if s.cloud_cover < CLOUD_LIMIT)
    wait_logged(airflow, f"{STORED} {newest}")
    log = airflow.component_log("triggerer")
    assert "Watching landsat-c2-l2" in log and "for items after" in log, log[-3000:]
    time.sleep(5)  # a few polls
    assert airflow.dag_runs(DAG_ID) == []

    # One new scene is ingested: exactly one run, on exactly that scene.
    add_scene(dev_stack, stac_bin, new_scene(dev_stack))
    ingested = time.monotonic()
    runs = airflow.wait_until(
        f"a finished run of {DAG_ID}",
        150,
        lambda: [r for r in airflow.dag_runs(DAG_ID) if r["state"] in ("success", "failed")],
    )
    (run,) = runs
    run_id = run["dag_run_id"]
    assert run["state"] == "success", explain(airflow, run_id)
    assert run["run_type"] == "asset_triggered"
    assert airflow.task_states(DAG_ID, run_id) == {"new_scenes": "success", "detect_water_bodies": "success"}
    new_href = scenes.item_url(dev_stack.stac_api_url, NEW_ID)
    assert airflow.xcom(DAG_ID, run_id, "new_scenes") == [new_href]

    # The job ran on the new scene and its one result item is that scene's water mask.
    hrefs = airflow.xcom(DAG_ID, run_id, "detect_water_bodies")
    assert len(hrefs) == 1 and hrefs[0].startswith("s3://results/"), hrefs
    assert list(airflow.xcom(DAG_ID, run_id, "detect_water_bodies", key="asset_hrefs")) == [NEW_ID]
    result = read_s3_json(dev_stack, hrefs[0])
    assert result["id"] == NEW_ID
    assert result["properties"]["datetime"].startswith("2024-01-09T18:45:20")
    job_id = airflow.xcom(DAG_ID, run_id, "detect_water_bodies", key="job_id")
    assert hrefs[0].startswith(f"s3://results/{job_id}/")
    trigger_logs = "\n".join(airflow.trigger_logs(DAG_ID, run_id, "detect_water_bodies").values())
    assert f"[1/1] {NEW_ID}" in trigger_logs, trigger_logs[-3000:]
    assert f"Job {job_id}: successful" in trigger_logs, trigger_logs[-3000:]

    # The watermark moves past the new scene; later polls start nothing more.
    wait_logged(airflow, f"{STORED} {NEW_DATETIME}", 30)
    time.sleep(6)
    assert len(airflow.dag_runs(DAG_ID)) == 1
    log = airflow.component_log("triggerer")
    assert log.count(" new item(s) in landsat-c2-l2") == 1, log[-3000:]
    print(
        f"watcher ready and quiet in {ingested - t0:.1f}s; scene to successful run in "
        f"{time.monotonic() - ingested:.1f}s (grace included)"
    )
