"""The OGC jobs page's pure parts (airflow_provider_ogc.plugins): import cost, how a job is summarised,
which asset is drawn, the quick-look renderer. The page in a real api-server: tests/system/test_ui_plugin.py."""

from __future__ import annotations

import ast
import struct
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_ogc.plugins import URL_PREFIX, OGCProcessesPlugin
from airflow_provider_ogc.plugins.jobs import JobRow, data_asset, job_path, job_summary, ui_paths


def row(**kwargs: object) -> JobRow:
    start = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    values: dict[str, object] = {
        "dag_id": "water",
        "run_id": "manual__2026-01-01T12:00:00+00:00",
        "task_id": "detect",
        "map_index": -1,
        "try_number": 1,
        "operator": "ExecuteProcessOperator",
        "ti_state": "success",
        "start_date": start,
        "end_date": start + timedelta(seconds=90),
        "logical_date": start,
    }
    values.update(kwargs)
    return JobRow(**values)  # type: ignore[arg-type]


def test_importing_the_plugin_adds_nothing_but_itself() -> None:
    # Every Airflow component loads plugins (airflow.plugins_manager is loaded there anyway): the
    # FastAPI app, the renderer and the clients are imported on the api-server's first /ogc request.
    code = (
        "import sys, airflow.plugins_manager; before = set(sys.modules); "
        "import airflow_provider_ogc.plugins; print(sorted(set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    added = set(ast.literal_eval(out.strip().splitlines()[-1]))
    assert added <= {"airflow_provider_ogc", "airflow_provider_ogc.plugins"}, added  # the package: 3.1


def test_the_plugin_declares_its_app_and_views() -> None:
    (app,) = OGCProcessesPlugin.fastapi_apps
    assert app["url_prefix"] == URL_PREFIX == "/ogc"
    views = {v["destination"]: v for v in OGCProcessesPlugin.external_views}
    assert views["nav"]["href"] == "/ogc/" and views["nav"]["name"] == "OGC jobs"
    assert views["task_instance"]["href"] == "/ogc/#job/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}"
    assert len({v["url_route"] for v in views.values()}) == 2


def test_ui_paths_are_airflows_own_routes() -> None:
    paths = ui_paths(row())
    assert paths["task"] == "dags/water/runs/manual__2026-01-01T12%3A00%3A00%2B00%3A00/tasks/detect"
    assert paths["log"] == paths["task"] + "?try_number=1"
    assert ui_paths(row(map_index=3))["task"].endswith("/tasks/detect/mapped/3")
    assert job_path(row()) == "api/jobs/water/manual__2026-01-01T12%3A00%3A00%2B00%3A00/detect/-1"


def test_a_summary_prefers_the_servers_status() -> None:
    r = row(
        xcoms={
            "job_id": "j1",
            "ogc_job": {"process_id": "water-bodies", "ogc_conn_id": "c", "aws_conn_id": None},
        }
    )
    s = job_summary(
        r,
        {"status": "running", "progress": 40, "message": "[1/2] NDWI", "started": "2026-01-01T12:00:10Z"},
    )
    assert (s["status"], s["status_source"], s["progress"], s["process_id"]) == (
        "running",
        "server",
        40,
        "water-bodies",
    )
    assert s["finished"] is None and s["duration_seconds"] is not None
    assert r.ogc_conn_id == "c" and r.aws_conn_id is None


def test_without_the_server_the_task_state_speaks() -> None:
    done = job_summary(row(xcoms={"job_id": "j1"}), {"error": "timed out"})
    assert (done["status"], done["status_source"], done["progress"], done["error"]) == (
        "successful",
        "task",
        100,
        "timed out",
    )
    assert done["duration_seconds"] == 90.0
    older = row(xcoms={"job_url": "http://h/api/jobs/abc"})
    assert (
        older.job_id == "abc"
        and older.ogc_conn_id == "ogc_processes_default"
        and older.aws_conn_id == "aws_default"
    )
    assert job_summary(row(ti_state="queued"), {})["status"] == "queued"
    assert job_summary(row(ti_state="failed"), {})["status"] == "not submitted"


def test_item_hrefs_come_from_the_operators_return_value_only() -> None:
    assert row(xcoms={"return_value": ["s3://b/a.json", 3]}).item_hrefs == ["s3://b/a.json"]
    assert row(xcoms={"return_value": {"status": "successful"}}).item_hrefs == []
    assert row(operator="JobStatusSensor", xcoms={"return_value": ["s3://b/a.json"]}).item_hrefs == []


def test_the_data_asset_is_the_items_geotiff() -> None:
    tif = {"href": "s3://b/otsu.tif", "type": "image/tiff; application=geotiff", "roles": ["data"]}
    assert data_asset({"assets": {"thumb": {"href": "t.png", "type": "image/png"}, "data": tif}}) == (
        "data",
        tif,
    )
    assert data_asset({"assets": {"mask": {**tif, "roles": ["data"]}}}) == ("mask", tif)
    assert data_asset({"assets": {"x": {"href": "s3://b/x.tiff"}}}) == ("x", {"href": "s3://b/x.tiff"})
    assert data_asset({"assets": {"meta": {"href": "m.json", "type": "application/json"}}}) is None


def _geotiff(array: object, nodata: float | None) -> bytes:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    height, width = array.shape  # type: ignore[attr-defined]
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": str(array.dtype),  # type: ignore[attr-defined]
        "crs": "EPSG:32610",
        "transform": from_origin(600000, 4500000, 30, 30),
        "nodata": nodata,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(array, 1)
        assert rasterio
        return bytes(mem.read())


def test_a_water_mask_becomes_a_small_png_with_its_legend() -> None:
    np = pytest.importorskip("numpy")
    from airflow_provider_ogc.plugins.quicklook import WATER_RGBA, render_png

    mask = np.zeros((600, 1300), dtype="uint8")
    mask[100:300, 200:900] = 1
    png, legend, size = render_png(_geotiff(mask, 0))
    assert legend == "classes" and size == (512, 236)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == size
    from rasterio.io import MemoryFile

    with MemoryFile(png) as mem, mem.open() as img:
        rgba = img.read()
    assert tuple(rgba[:, 80, 200]) == WATER_RGBA and rgba[3, 5, 5] == 0  # water drawn, nodata transparent


def test_a_continuous_raster_is_stretched_in_greys() -> None:
    np = pytest.importorskip("numpy")
    from airflow_provider_ogc.plugins.quicklook import render_png

    ramp = np.tile(np.linspace(0, 1, 100, dtype="float32"), (50, 1))
    _, legend, size = render_png(_geotiff(ramp, None))
    assert legend == "continuous" and size == (100, 50)


def test_without_rasterio_the_renderer_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_ogc.plugins.quicklook import QuicklookUnavailable, render_png

    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.raises(QuicklookUnavailable, match=r"airflow-provider-ogc\[ui\]"):
        render_png(b"")
