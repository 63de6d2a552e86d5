"""``NewStacItemsTrigger`` under a real scheduler, dag-processor, triggerer and api-server, against a
real STAC API (stac-fastapi-pgstac over PostgreSQL + pgstac) whose items the test adds with pypgstac.

The promise: one DAG run per batch of new items, naming exactly those items; none for the items there
before; none twice, and none lost, across a triggerer killed (SIGKILL) and started again.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.ci import unavailable
from tests.system.airflow_stack import AirflowStack

pytestmark = pytest.mark.system
REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
DAG_FILE = Path(__file__).parent / "dags" / "stac_watch_dags.py"
DAG_ID = "stac_watch_consumer"
CONN_ID = "stac_watch_test"
COLLECTION = "landsat-c2-l2"
# Inside the DAG's bbox (-121.5, 39.8, -120.6, 40.5), and one far away.
HERE = [[-121.3, 39.9], [-120.8, 39.9], [-120.8, 40.4], [-121.3, 40.4], [-121.3, 39.9]]
ELSEWHERE = [[10.0, 45.0], [10.5, 45.0], [10.5, 45.5], [10.0, 45.5], [10.0, 45.0]]
STORED = "Stored the watermark"


def item(item_id: str, stamp: str, cloud: float, ring: list[list[float]] = HERE) -> dict[str, Any]:
    """A minimal Landsat-like STAC item of the collection."""
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {"datetime": stamp, "eo:cloud_cover": cloud, "platform": "landsat-8"},
        "links": [],
        "assets": {},
    }


def collection() -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": COLLECTION,
        "description": "Synthetic Landsat scenes for the STAC watcher test",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["2023-01-01T00:00:00Z", None]]},
        },
        "links": [],
    }


@dataclass
class StacApi:
    url: str
    workdir: Path
    stac_bin: Path
    postgres: Any

    def add(self, items: list[dict[str, Any]]) -> None:
        """Upsert items into pgstac, as a catalog's ingestion does (pypgstac, in the STAC API's venv)."""
        from dev import stac_api

        stamp = time.monotonic_ns()
        coll, lines = self.workdir / f"collection-{stamp}.json", self.workdir / f"items-{stamp}.ndjson"
        coll.write_text(json.dumps(collection()))
        lines.write_text("".join(json.dumps(i) + "\n" for i in items))
        stac_api.load_pgstac(self.workdir, self.stac_bin, self.postgres, coll, lines, 60)


@pytest.fixture(scope="module")
def stac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StacApi]:
    """PostgreSQL + pgstac + stac-fastapi-pgstac with the dev stack's 12 scenes (ids, datetimes, cloud cover)."""
    from dev import scenes, stac_api

    stac_bin = Path(os.environ.get("OGC_TEST_STAC_BIN") or REPO / ".venv-stac" / "bin")
    problem = stac_api.missing_requirements(stac_bin)
    if problem:
        unavailable(problem)
    workdir = tmp_path_factory.mktemp("stac-watch")
    postgres = stac_api.start_postgres(workdir)
    api = None
    try:
        stac_api.migrate_pgstac(workdir, stac_bin, postgres, 120)
        api = stac_api.start_api(workdir, stac_bin, postgres, 60)
        server = StacApi(api.url, workdir, stac_bin, postgres)
        server.add([item(s.id, s.datetime, s.cloud_cover) for s in scenes.SCENES.values()])
        yield server
    finally:
        if api is not None:
            api.stop()
        postgres.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, stac: StacApi) -> Iterator[AirflowStack]:
    if not (BIN_DIR / "airflow").exists():
        unavailable(f"no airflow executable beside {sys.executable}")
    dags = tmp_path_factory.mktemp("stac-watch-dags")
    (dags / DAG_FILE.name).write_text(DAG_FILE.read_text())
    with AirflowStack(tmp_path_factory.mktemp("airflow-home"), dags, BIN_DIR, parallelism=4).start() as s:
        # In the metadata database, not the environment: the triggerer reads it through its supervisor.
        s.api("POST", "/connections", {"connection_id": CONN_ID, "conn_type": "stac_api", "host": stac.url})
        yield s


def wait_logged(stack: AirflowStack, text: str) -> None:
    """Wait until the triggerer (any of its starts) has logged ``text``: watcher logs go to its own log."""
    stack.wait_until(f"the triggerer to log {text!r}", 90, lambda: text in stack.component_log("triggerer"))


def finished_runs(stack: AirflowStack) -> list[dict[str, Any]]:
    return [r for r in stack.dag_runs(DAG_ID) if r["state"] in ("success", "failed")]


def wait_runs(stack: AirflowStack, count: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = stack.wait_until(
        f"{count} finished run(s) of {DAG_ID}",
        120,
        lambda: (r := finished_runs(stack)) and len(r) >= count and r,
    )
    return runs


def reported(stack: AirflowStack, run: dict[str, Any]) -> list[list[str]]:
    assert run["state"] == "success", stack.task_log(DAG_ID, run["dag_run_id"], "record")[-3000:]
    ids: list[list[str]] = stack.xcom(DAG_ID, run["dag_run_id"], "record")
    return ids


def test_one_run_per_batch_of_new_items_across_a_triggerer_restart(
    stack: AirflowStack, stac: StacApi
) -> None:
    stack.unpause(DAG_ID)
    # The dag-processor registers the watcher on its next parse of the unpaused DAG; the trigger then
    # takes the 12 items already there as seen and stores that watermark.
    wait_logged(stack, STORED)
    assert "Watching landsat-c2-l2" in stack.component_log("triggerer")
    time.sleep(5)  # a few polls
    assert stack.dag_runs(DAG_ID) == []

    # A batch: two scenes acquired at the same instant, one too cloudy, one outside the AOI.
    stac.add(
        [
            item("LC08_L2SP_044032_20240109_02_T1", "2024-01-09T18:45:20.000000Z", 3.0),
            item("LC08_L2SP_044033_20240109_02_T1", "2024-01-09T18:45:20.000000Z", 7.5),
            item("LC08_L2SP_043033_20240118_02_T1", "2024-01-18T18:39:30.000000Z", 92.0),
            item("LC08_L2SP_193029_20240110_02_T1", "2024-01-10T10:00:00.000000Z", 1.0, ELSEWHERE),
        ]
    )
    runs = wait_runs(stack, 1)
    assert [sorted(ids) for ids in reported(stack, runs[0])] == [
        ["LC08_L2SP_044032_20240109_02_T1", "LC08_L2SP_044033_20240109_02_T1"]
    ]
    # The watermark is stored a few seconds after the event: the restart below comes after that.
    wait_logged(stack, f"{STORED} 2024-01-09T18:45:20.000000Z")

    # The triggerer dies; meanwhile two scenes arrive, one acquired before the first batch's newest
    # (late ingestion, within the DAG's 30-day lookback). The restarted triggerer reports exactly these.
    stack.kill_component("triggerer", signal.SIGKILL)
    stac.add(
        [
            item("LC08_L2SP_043033_20240102_02_T2", "2024-01-02T18:39:33.000000Z", 12.0),
            item("LC08_L2SP_044032_20240125_02_T1", "2024-01-25T18:45:10.000000Z", 4.0),
        ]
    )
    time.sleep(3)
    stack.restart_component("triggerer")
    runs = wait_runs(stack, 2)
    assert reported(stack, runs[1]) == [
        ["LC08_L2SP_043033_20240102_02_T2", "LC08_L2SP_044032_20240125_02_T1"]
    ]
    log = stack.component_log("triggerer")
    assert "from its stored watermark 2024-01-09T18:45:20.000000Z" in log, log[-3000:]

    # Nothing more: no run for old items, none again for reported ones.
    wait_logged(stack, f"{STORED} 2024-01-25T18:45:10.000000Z")
    time.sleep(6)
    assert len(stack.dag_runs(DAG_ID)) == 2


def test_example_dag_watches_new_scenes() -> None:
    """The example DAG parses, and its schedule is an asset watched by the trigger (no network needed)."""
    import importlib.util

    from airflow_provider_ogc.triggers import NewStacItemsTrigger

    spec = importlib.util.spec_from_file_location(
        "water_bodies_on_new_scenes", REPO / "example_dags" / "water_bodies_on_new_scenes.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (watcher,) = module.NEW_SCENES.watchers
    assert isinstance(watcher.trigger, NewStacItemsTrigger)
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "airflow_provider_ogc.triggers.stac.NewStacItemsTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain JSON
    assert kwargs["collections"] == ["landsat-c2-l2"] and kwargs["filter"] == "eo:cloud_cover < 20"
