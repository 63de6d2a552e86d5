"""The dev stack end to end: water-bodies on two synthetic scenes (STAC API items) through the provider's hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
rasterio = pytest.importorskip("rasterio")

from rasterio.io import MemoryFile  # noqa: E402

from airflow_provider_ogc.models import JobStatus  # noqa: E402
from airflow_provider_ogc.s3 import S3Reader  # noqa: E402
from airflow_provider_ogc.stac import extract_stac  # noqa: E402
from dev import scenes, truth  # noqa: E402
from tests.support.jobs import wait_for_job  # noqa: E402

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEED_IDS = list(scenes.DEFAULT_SCENES)


@pytest.fixture
def hook(dev_stack: Any, hook_for: Any) -> Any:
    return hook_for(dev_stack.ogc_url)


@pytest.fixture
def s3(dev_stack: Any, monkeypatch: pytest.MonkeyPatch) -> S3Reader:
    """The provider's S3 reader, configured by the stack's ready-made `aws` connection."""
    conn = dev_stack.airflow_connections()["aws_default"]
    monkeypatch.setenv("AIRFLOW_CONN_DEV_STACK_AWS", json.dumps(conn))
    return S3Reader("dev_stack_aws")


@pytest.fixture(scope="module")
def job(dev_stack: Any, hook_for_module: Any) -> dict[str, Any]:
    """One water-bodies run on the seed's two scenes; every status polled on the way."""
    hook = hook_for_module(dev_stack.ogc_url)
    inputs = dev_stack.example_inputs()
    execution = hook.execute_process("water-bodies", inputs)
    assert not execution.synchronous and execution.job_id
    statuses = wait_for_job(hook, execution.job_id, timeout=30, interval=0.03)
    return {"id": execution.job_id, "inputs": inputs, "statuses": statuses}


@pytest.fixture(scope="module")
def hook_for_module() -> Any:
    """Like tests/conftest.py's hook_for, for a module-scoped job (no function-scoped monkeypatch)."""
    from airflow_provider_ogc.hooks import OGCProcessesHook

    hooks: list[Any] = []
    added: list[str] = []

    def build(host: str) -> Any:
        conn_id = f"dev_stack_ogc_{len(hooks)}"
        var = f"AIRFLOW_CONN_{conn_id.upper()}"
        extra = {"retry_wait_min": 0.05, "retry_wait_max": 0.2}
        os.environ[var] = json.dumps({"conn_type": "ogc_processes", "host": host, "extra": extra})
        added.append(var)
        hook = OGCProcessesHook(ogc_conn_id=conn_id)
        hooks.append(hook)
        return hook

    yield build
    for hook in hooks:
        hook.close()
    for var in added:
        os.environ.pop(var, None)


def test_the_process_is_described_with_the_seeds_inputs(hook: Any) -> None:
    description = hook.get_process("water-bodies")
    assert set(description["inputs"]) == {"stac_items", "aoi", "epsg", "bands"}
    assert set(description["outputs"]) == {"stac_catalog"}
    assert "async-execute" in description["jobControlOptions"]


def test_inputs_are_stac_api_items_with_cogs_over_http(dev_stack: Any) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    assert set(dev_stack.item_urls) == set(scenes.SCENES)
    for item_id, url in dev_stack.item_urls.items():
        # The seed's URL shape: {STAC API}/collections/landsat-c2-l2/items/{id}
        assert url == f"{dev_stack.stac_api_url}/collections/landsat-c2-l2/items/{item_id}"
        with opener.open(url, timeout=5) as reply:
            item = json.load(reply)
        assert item["id"] == item_id and item["collection"] == "landsat-c2-l2"
        assert {link["rel"]: link["href"] for link in item["links"]}["self"] == url
        props = item["properties"]
        sc = scenes.scene(item_id)
        assert props["datetime"] == sc.datetime and props["eo:cloud_cover"] == sc.cloud_cover
        assert props["proj:epsg"] == 32610 and props["proj:transform"][:6] == list(sc.transform)
        # Read a COG only for the seed's scenes (the others are the same grids; it keeps the test short).
        for band in ("green", "nir08") if item_id in SEED_IDS else ():
            href = item["assets"][band]["href"]
            assert href.startswith(dev_stack.s3_endpoint + "/inputs/")
            with rasterio.open(href) as src:  # a COG read over plain HTTP, as the process does
                assert src.dtypes[0] == "uint16" and src.nodata == 0 and src.scales == (scenes.SR_SCALE,)
                assert src.profile["tiled"] and src.overviews(1) and src.crs.to_epsg() == 32610


def test_job_succeeds_and_reports_progress_per_scene(job: dict[str, Any]) -> None:
    statuses = job["statuses"]
    assert statuses[-1].status is JobStatus.SUCCESSFUL, statuses[-1]
    running = [s for s in statuses if s.status is JobStatus.RUNNING and s.progress is not None]
    assert running, [(s.status, s.progress, s.message) for s in statuses]
    progress = [s.progress for s in running]
    assert progress == sorted(progress) and progress[0] >= 10 and progress[-1] < 100
    messages = " ".join(s.message or "" for s in running)
    for item_id in SEED_IDS:
        assert item_id in messages, messages
    assert "NDWI" in messages or "Otsu" in messages or "otsu.tif" in messages


def test_results_mirror_the_seeds_layout(job: dict[str, Any], hook: Any, dev_stack: Any) -> None:
    results = hook.get_job_results(job["id"])
    collection = results["stac_catalog"]
    assert collection["type"] == "FeatureCollection" and collection["id"] == job["id"]
    assert [f["id"] for f in collection["features"]] == SEED_IDS
    root = f"s3://results/{job['id']}"
    for feature in collection["features"]:
        item_id = feature["id"]
        links = {link["rel"]: link["href"] for link in feature["links"]}
        assert links == {
            "collection": f"{root}/{job['id']}/collection.json",
            "root": f"{root}/catalog.json",
            "self": f"{root}/{job['id']}/{item_id}/{item_id}.json",
            "parent": f"{root}/{job['id']}/collection.json",
        }
        assert [link["rel"] for link in feature["links"]] == ["collection", "root", "self", "parent"]
        asset = feature["assets"]["data"]
        assert asset["href"] == f"{root}/{job['id']}/{item_id}/otsu.tif"
        assert asset["type"] == "image/tiff; application=geotiff" and asset["roles"] == ["data", "visual"]
        assert feature["collection"] == job["id"] and feature["stac_version"] == "1.0.0"
        assert set(feature["stac_extensions"]) == {
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        }
        props = feature["properties"]
        assert props["proj:epsg"] == 32610 and props["datetime"] == scenes.scene(item_id).datetime
        assert {"proj:geometry", "proj:bbox", "proj:shape", "proj:transform"} <= set(props)
        (band,) = asset["raster:bands"]
        # (pygeoapi re-dumps async results with sorted keys, so only the item JSON on S3 keeps the order)
        assert set(band) == {"data_type", "scale", "offset", "sampling", "nodata", "statistics", "histogram"}
        assert band["data_type"] == "uint8" and band["nodata"] == 0.0 and band["sampling"] == "area"
        assert set(band["statistics"]) == {"mean", "minimum", "maximum", "stddev", "valid_percent"}
        assert band["statistics"]["minimum"] == band["statistics"]["maximum"] == 1
        assert band["histogram"]["count"] == 11 and len(band["histogram"]["buckets"]) == 10
        assert (band["histogram"]["min"], band["histogram"]["max"]) == (0.5, 1.5)
        assert {k: asset[k] for k in asset if k.startswith("storage:")} == {
            "storage:platform": "eoap",
            "storage:requester_pays": False,
            "storage:tier": "Standard",
            "storage:region": "us-east-1",
            "storage:endpoint": dev_stack.s3_endpoint,
        }
    # The provider finds the items and their assets by href.
    found = extract_stac(results, output="stac_catalog")
    assert found is not None and len(found.item_hrefs) == 2


def test_outputs_on_s3_have_the_seeds_profile_and_match_the_truth(
    job: dict[str, Any], hook: Any, s3: S3Reader, record_property: Any
) -> None:
    collection = hook.get_job_results(job["id"])["stac_catalog"]
    root = f"s3://results/{job['id']}"
    catalog = s3.read_json(f"{root}/catalog.json")
    assert catalog["type"] == "Catalog"
    assert s3.read_json(f"{root}/{job['id']}/collection.json")["id"] == job["id"]
    for feature in collection["features"]:
        item_id = feature["id"]
        self_href = next(link["href"] for link in feature["links"] if link["rel"] == "self")
        stored = s3.read_json(self_href)
        assert stored == feature  # the item JSON on S3 is what the results hold ...
        band = stored["assets"]["data"]["raster:bands"][0]  # ... with the seed's key order
        assert list(band) == ["data_type", "scale", "offset", "sampling", "nodata", "statistics", "histogram"]
        assert list(band["statistics"]) == ["mean", "minimum", "maximum", "stddev", "valid_percent"]
        with MemoryFile(s3.read_bytes(feature["assets"]["data"]["href"])) as mem, mem.open() as src:
            profile = src.profile
            assert (profile["driver"], profile["dtype"], profile["nodata"], profile["count"]) == (
                "GTiff",
                "uint8",
                0,
                1,
            )
            assert (profile["tiled"], profile["blockxsize"], profile["blockysize"]) == (True, 512, 512)
            assert profile["compress"] == "lzw" and profile["interleave"] == "band"
            assert src.crs.to_epsg() == 32610
            mask = src.read(1)
            transform = src.transform
        props = feature["properties"]
        assert props["proj:shape"] == list(mask.shape)
        assert props["proj:transform"] == list(transform)
        # On the scene's own 30 m grid (a crop, not a resampling).
        sc = scenes.scene(item_id)
        assert (transform.a, transform.e) == (30.0, -30.0)
        assert (transform.c - sc.ulx) % 30 == 0 and (sc.uly - transform.f) % 30 == 0
        assert set(np.unique(mask)) <= {0, 1}
        band = feature["assets"]["data"]["raster:bands"][0]
        water = int((mask == 1).sum())
        assert band["statistics"]["valid_percent"] == pytest.approx(100 * water / mask.size)
        assert band["histogram"]["buckets"][5] == water
        # Nodata in either input band is 0 in the output.
        assert not (mask[~truth.valid_mask(item_id, transform, mask.shape)] == 1).any()
        score = truth.iou(mask == 1, truth.water_mask(item_id, transform, mask.shape))
        record_property(f"iou_{item_id}", round(score, 4))
        print(f"IoU {item_id}: {score:.4f}")
        assert score >= truth.IOU_THRESHOLD, (item_id, score)
    # The AOI crops the first scene's north edge (see the science tests), the second's south and east.
    shapes = [f["properties"]["proj:shape"] for f in collection["features"]]
    assert shapes[0][0] < 600 and shapes[1][0] < 560 and shapes[1][1] < 640


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aoi": "1,2,3"}, "aoi"),
        ({"aoi": "10,10,11,11"}, "does not intersect"),
        ({"bands": ["green", "swir16"]}, "swir16"),
    ],
)
def test_bad_requests_fail_the_job_with_a_message(
    dev_stack: Any, hook: Any, change: dict[str, Any], message: str
) -> None:
    inputs = {**dev_stack.example_inputs(SEED_IDS[:1]), **change}
    execution = hook.execute_process("water-bodies", inputs)
    final = wait_for_job(hook, execution.job_id, timeout=30)[-1]
    assert final.status is JobStatus.FAILED and message in (final.message or ""), final


def test_cli_up_status_down(tmp_path: Path, pygeoapi_bin: Path, moto_bin: Path, stac_bin: Path) -> None:
    workdir = tmp_path / "stack"
    bins = ["--pygeoapi-bin", str(pygeoapi_bin), "--moto-bin", str(moto_bin), "--stac-bin", str(stac_bin)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dev.stack", *args, "--workdir", str(workdir)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )

    pids: list[int] = []
    up = cli("up", *bins)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        state = json.loads((workdir / "stack.json").read_text())
        pids += [state["supervisor_pid"], *state["pids"].values()]
        assert set(state["pids"]) == {"moto", "pygeoapi", "part2", "postgres", "stac"}
        pg_dir = Path(state["postgres"]["remove_dir"])
        assert (Path(state["postgres"]["data_dir"]) / "PG_VERSION").read_text().strip() == "15"
        stac_conn = json.loads(state["airflow_env"]["AIRFLOW_CONN_STAC_API_DEFAULT"])
        assert stac_conn == {"conn_type": "stac_api", "host": state["stac_api_url"]}
        assert state["scene_item_urls"][0].startswith(
            state["stac_api_url"] + "/collections/landsat-c2-l2/items/"
        )
        part2 = json.loads(state["airflow_env"]["AIRFLOW_CONN_OGC_PART2"])
        assert part2 == {"conn_type": "ogc_processes", "host": state["part2_url"]}
        conn = json.loads(state["airflow_env"]["AIRFLOW_CONN_OGC_PROCESSES_DEFAULT"])
        assert conn == {"conn_type": "ogc_processes", "host": state["ogc_url"]}
        aws = json.loads(state["airflow_env"]["AIRFLOW_CONN_AWS_DEFAULT"])
        assert aws["conn_type"] == "aws" and aws["extra"]["endpoint_url"] == state["s3_endpoint"]
        # The env file can be sourced and gives the same connections.
        env_out = subprocess.run(
            ["bash", "-c", f'source {workdir / "env"} && echo "$AIRFLOW_CONN_AWS_DEFAULT"'],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(env_out) == aws
        env_out = subprocess.run(
            [
                "bash",
                "-c",
                f'source {workdir / "env"} && echo "$OGC_DEV_STAC_API_URL $AIRFLOW_CONN_STAC_API_DEFAULT"',
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        url, conn = env_out.split(" ", 1)
        assert url == state["stac_api_url"] and json.loads(conn) == stac_conn
        status = cli("status")
        assert status.returncode == 0, status.stdout
        assert "accepts connections (pgstac 0.10.0)" in status.stdout
        assert f"{state['stac_api_url']}/collections/landsat-c2-l2 answers" in status.stdout
        second = cli("up", *bins)
        assert second.returncode == 1 and "already up" in second.stderr
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert not _alive(pid), f"pid {pid} still running after down"
    assert not (workdir / "stack.json").exists()
    assert not pg_dir.exists()  # the throwaway cluster is gone
    assert "database system is shut down" in (workdir / "postgres.log").read_text()  # a clean shutdown
    assert cli("status").returncode == 3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
