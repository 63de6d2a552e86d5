"""The OGC jobs page (airflow_provider_ogc.plugins) in a real api-server, against the dev stack.

A real api-server, scheduler, dag-processor and triggerer (``AirflowStack``) run two DAGs whose
``ExecuteProcessOperator`` submits the dev stack's ``water-bodies`` job (pygeoapi, real COGs on a moto
S3). The plugin is loaded through its ``airflow.plugins`` entry point; its JSON API is checked with
JWTs of two users of a test-only auth manager (``tests/support/ui_auth_manager.py``) that hides
``ogc_ui_secret`` from ``restricted``. ``simple_auth_manager_all_admins`` is off: with it on, Airflow
3.3 adds an admin token to every request and nothing could answer 401.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dev.conftest import dev_stack, moto_bin, pygeoapi_bin, stac_bin  # noqa: F401 (fixtures)
from tests.support.ci import unavailable
from tests.system.airflow_stack import AirflowStack

pytestmark = pytest.mark.system
REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
DAGS = Path(__file__).parent / "ui_dags"
WATER, SECRET, FAILING, TASK = "ogc_ui_water", "ogc_ui_secret", "ogc_ui_failing", "detect_water_bodies"
EXPECTED = {WATER: "success", SECRET: "success", FAILING: "failed"}


class Airflow:
    """The stack, its users' tokens, and a small HTTP client for ``/ogc``."""

    def __init__(self, stack: AirflowStack, tokens: dict[str, str]) -> None:
        self.stack = stack
        self.tokens = tokens

    def get(self, path: str, user: str | None = "admin", **params: Any) -> tuple[int, dict[str, str], bytes]:
        url = self.stack.api_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def json(self, path: str, user: str | None = "admin", **params: Any) -> Any:
        status, _, body = self.get(path, user, **params)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)


def job_path(dag_id: str, run_id: str, map_index: int = -1) -> str:
    parts = (dag_id, run_id, TASK, str(map_index))
    return "/ogc/api/jobs/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, dev_stack: Any) -> Iterator[Airflow]:  # noqa: F811
    if not (BIN_DIR / "airflow").exists():
        unavailable(f"no airflow executable beside {sys.executable}")
    env = {
        **dev_stack.env(),
        "PYTHONPATH": str(REPO),
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.support.ui_auth_manager.OneDagDeniedAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    }
    stack = AirflowStack(tmp_path_factory.mktemp("airflow-home"), DAGS, BIN_DIR, env=env, parallelism=4)
    tokens = {}
    for user, role in (("admin", "admin"), ("restricted", "viewer")):
        minted = subprocess.run(
            [sys.executable, "-m", "tests.support.ui_auth_manager", user, role],
            env=stack.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        tokens[user] = minted.stdout.strip().splitlines()[-1]
    stack._token = tokens["admin"]  # the harness's REST calls run as this admin (no all-admins mode)
    with stack.start():
        yield Airflow(stack, tokens)


@pytest.fixture(scope="module")
def runs(airflow: Airflow) -> dict[str, Any]:
    """Both DAGs run once, one after the other (the dev stack's pygeoapi can fail two concurrent
    water-bodies jobs: "Cannot find proj.db"); records what the jobs list showed while they ran."""
    stack = airflow.stack
    run_ids: dict[str, str] = {}
    seen: list[dict[str, Any]] = []
    for dag_id in (WATER, SECRET, FAILING):
        stack.unpause(dag_id)
        run_ids[dag_id] = run_id = stack.trigger_dag(dag_id)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            seen.extend(
                j for j in airflow.json("/ogc/api/jobs", dag_id=dag_id)["jobs"] if j["run_id"] == run_id
            )
            state = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                break
            time.sleep(0.5)
        assert state == EXPECTED[dag_id], f"{dag_id}: {state}\n{stack.logs_tail()}"
    return {"run_ids": run_ids, "seen": seen}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_api_server_loads_the_plugin_and_serves_the_page(airflow: Airflow) -> None:
    plugins = airflow.stack.api("GET", "/plugins")["plugins"]
    ours = next(p for p in plugins if p["name"] == "ogc_processes")
    assert [a["url_prefix"] for a in ours["fastapi_apps"]] == ["/ogc"]
    views = {v["name"]: v for v in ours["external_views"]}
    assert views["OGC jobs"]["destination"] == "nav" and views["OGC jobs"]["href"] == "/ogc/"
    assert views["OGC job page"]["destination"] == "task_instance"
    assert "{DAG_ID}" in views["OGC job page"]["href"] and "{RUN_ID}" in views["OGC job page"]["href"]

    # The page and its static files hold no data: no session needed.
    status, headers, body = airflow.get("/ogc/", user=None)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'id="ogc-jobs"' in body and b'id="ogc-map"' in body
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    for static in ("ogc.js", "ogc.css", "leaflet/leaflet.js", "leaflet/leaflet.css", "leaflet/LICENSE"):
        status, _, body = airflow.get(f"/ogc/static/{static}", user=None)
        assert status == 200 and body, static


def test_the_api_answers_401_without_a_session(airflow: Airflow) -> None:
    for path in ("/ogc/api/jobs", job_path(WATER, "any"), job_path(WATER, "any") + "/quicklook/0.png"):
        status, _, body = airflow.get(path, user=None)
        assert status == 401, (path, status, body[:300])


def test_the_jobs_list_shows_the_finished_job(airflow: Airflow, runs: dict[str, Any]) -> None:
    data = airflow.json("/ogc/api/jobs")
    run_id = runs["run_ids"][WATER]
    job = next(j for j in data["jobs"] if j["dag_id"] == WATER and j["run_id"] == run_id)
    assert job["task_id"] == TASK and job["map_index"] == -1
    assert job["process_id"] == "water-bodies" and job["operator"] == "ExecuteProcessOperator"
    assert job["status"] == "successful" and job["status_source"] == "server"
    assert job["progress"] == 100
    assert job["job_id"] and job["job_url"].endswith(f"/jobs/{job['job_id']}")
    assert job["duration_seconds"] is not None and job["duration_seconds"] >= 0
    quoted = urllib.parse.quote(run_id, safe="")
    assert job["ui"]["task"] == f"dags/{WATER}/runs/{quoted}/tasks/{TASK}"
    assert job["ui"]["run"] == f"dags/{WATER}/runs/{quoted}" and job["ui"]["dag"] == f"dags/{WATER}"
    assert set(data["dag_ids"]) == {WATER, SECRET, FAILING} and "water-bodies" in data["process_ids"]
    # Filters
    assert {j["dag_id"] for j in airflow.json("/ogc/api/jobs", dag_id=SECRET)["jobs"]} == {SECRET}
    assert [j["dag_id"] for j in airflow.json("/ogc/api/jobs", status="failed")["jobs"]] == [FAILING]
    assert len(airflow.json("/ogc/api/jobs", process_id="water-bodies")["jobs"]) == 3
    assert airflow.json("/ogc/api/jobs", process_id="nope")["jobs"] == []
    # Seen while it ran: its progress, read from pygeoapi through the task's connection.
    progresses = [j["progress"] for j in runs["seen"] if j["status"] in ("running", "accepted")]
    print("progress seen while running:", progresses)
    assert all(p is None or 0 <= p <= 100 for p in progresses)


def test_a_jobs_detail_has_its_items_and_quicklooks(
    airflow: Airflow,
    runs: dict[str, Any],
    dev_stack: Any,  # noqa: F811
) -> None:
    detail = airflow.json(job_path(WATER, runs["run_ids"][WATER]))
    assert detail["status"] == "successful" and detail["failure"] is None
    assert detail["item_errors"] == [] and detail["item_count"] == 2
    items = detail["items"]
    expected_ids = sorted(u.rsplit("/", 1)[1] for u in dev_stack.example_inputs()["stac_items"])
    assert sorted(i["id"] for i in items) == expected_ids
    for item in items:
        assert item["geometry"]["type"] == "Polygon" and len(item["bbox"]) == 4
        west, south, east, north = item["bbox"]
        ring = item["geometry"]["coordinates"][0]
        assert -180 <= west < east <= 180 and -90 <= south < north <= 90
        assert min(p[0] for p in ring) == pytest.approx(west) and max(p[1] for p in ring) == pytest.approx(
            north
        )
        assert item["href"].startswith("s3://results/") and item["data_asset"] == "data"
        assert item["assets"]["data"]["href"].endswith("/otsu.tif")
        assert item["quicklook"] == f"quicklook/{item['index']}.png"
        assert item["properties"]["proj:shape"]
    assert detail["quicklooks"]["available"] is True and detail["quicklooks"]["max_size"] == 512

    import rasterio
    from rasterio.io import MemoryFile

    s3 = dev_stack.s3_client()
    for item in items:
        status, headers, png = airflow.get(job_path(WATER, runs["run_ids"][WATER]) + "/" + item["quicklook"])
        assert status == 200, png[:300]
        assert headers["content-type"] == "image/png" and headers["x-legend"] == "classes"
        bucket, key = item["assets"]["data"]["href"][5:].split("/", 1)
        with MemoryFile(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) as mem, mem.open() as src:
            scale = min(1.0, 512 / max(src.width, src.height))
            expected = (round(src.width * scale), round(src.height * scale))
        assert png_size(png) == expected and max(expected) <= 512
        assert headers["x-image-size"] == f"{expected[0]}x{expected[1]}"
        with MemoryFile(png) as mem, mem.open() as img:
            alpha = img.read(4)
            blue = img.read(3)
        assert rasterio is not None and (alpha > 0).any() and (blue[alpha > 0] == 255).any()  # water drawn
    status, _, _ = airflow.get(job_path(WATER, runs["run_ids"][WATER]) + "/quicklook/9.png")
    assert status == 404


def test_a_dag_the_user_may_not_read_is_hidden_and_403(airflow: Airflow, runs: dict[str, Any]) -> None:
    listed = airflow.json("/ogc/api/jobs", user="restricted")
    assert {j["dag_id"] for j in listed["jobs"]} == {WATER, FAILING} and SECRET not in listed["dag_ids"]
    assert airflow.json("/ogc/api/jobs", user="restricted", dag_id=SECRET)["jobs"] == []
    secret = job_path(SECRET, runs["run_ids"][SECRET])
    for path in (secret, secret + "/quicklook/0.png"):
        status, _, body = airflow.get(path, user="restricted")
        assert status == 403, (path, status, body[:300])
    assert airflow.json(job_path(WATER, runs["run_ids"][WATER]), user="restricted")["status"] == "successful"
    assert airflow.json(secret)["status"] == "successful"  # the admin may read it


def test_a_task_that_is_no_ogc_job_is_404(airflow: Airflow, runs: dict[str, Any]) -> None:
    status, _, _ = airflow.get(job_path(WATER, "no-such-run"))
    assert status == 404


def test_a_failed_job_shows_the_servers_message_and_the_task_log(
    airflow: Airflow, runs: dict[str, Any]
) -> None:
    run_id = runs["run_ids"][FAILING]
    detail = airflow.json(job_path(FAILING, run_id))
    assert detail["status"] == "failed" and detail["status_source"] == "server"
    assert "NO_SUCH_SCENE" in detail["failure"]["message"]
    quoted = urllib.parse.quote(run_id, safe="")
    assert detail["failure"]["log"] == f"dags/{FAILING}/runs/{quoted}/tasks/{TASK}?try_number=1"
    assert detail["items"] == [] and detail["item_count"] == 0
    listed = airflow.json("/ogc/api/jobs", dag_id=FAILING)["jobs"]
    assert listed[0]["status"] == "failed" and "NO_SUCH_SCENE" in listed[0]["message"]
