"""The dev stack's STAC API (stac-fastapi-pgstac over pgstac): the searches a recurring DAG makes.

Every expectation is computed from :func:`dev.synth.plan` (ids, datetimes, cloud cover and the
footprint polygons the items are loaded with), never written out by hand.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import urllib.parse
import urllib.request
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("rasterio")

from airflow_provider_ogc.models import JobStatus  # noqa: E402
from dev import scenes, synth, truth  # noqa: E402
from tests.support.jobs import wait_for_job  # noqa: E402

pytestmark = pytest.mark.integration

COLLECTION = "landsat-c2-l2"
AOI = [float(v) for v in scenes.DEFAULT_AOI.split(",")]  # the seed's request's AOI: all three footprints
EAST = [-121.0, 40.05, -120.9, 40.2]  # east of path 44's footprints: path 43 only
CLOUDLESS = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> Any:
    with _OPENER.open(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=30) as r:
        return json.load(r)


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/geo+json"},
    )
    with _OPENER.open(request, timeout=30) as r:
        return json.load(r)


def _search_all(api: str, body: dict[str, Any]) -> tuple[list[str], int]:
    """POST /search and follow every ``next`` link; the item ids in order and the number of pages."""
    page = _post(f"{api}/search", body)
    ids = [f["id"] for f in page["features"]]
    pages = 1
    while nxt := next((link for link in page["links"] if link["rel"] == "next"), None):
        assert nxt.get("method", "GET") == "POST" and nxt["href"] == f"{api}/search"
        page = _post(nxt["href"], nxt["body"])
        ids += [f["id"] for f in page["features"]]
        pages += 1
        assert pages <= 20
    return ids, pages


# --- what the plan says a search finds ---------------------------------------------------------


def _segments_cross(p: Any, q: Any, r: Any, s: Any) -> bool:
    def orient(a: Any, b: Any, c: Any) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return orient(p, q, r) * orient(p, q, s) < 0 and orient(r, s, p) * orient(r, s, q) < 0


def _intersects(ring: list[list[float]], bbox: list[float]) -> bool:
    """Whether the closed lon/lat polygon `ring` and the box intersect (what pgstac's bbox test does)."""
    minx, miny, maxx, maxy = bbox
    box = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    if any(minx <= x <= maxx and miny <= y <= maxy for x, y in ring):
        return True
    xs, ys = np.array([p[0] for p in box]), np.array([p[1] for p in box])
    if truth.in_polygon(xs, ys, [tuple(p) for p in ring[:-1]]).any():
        return True
    return any(
        _segments_cross(ring[i], ring[i + 1], box[j], box[j + 1])
        for i in range(len(ring) - 1)
        for j in range(len(box) - 1)
    )


def _expected(bbox: list[float], start: str, end: str, max_cloud: float | None = None) -> list[str]:
    lo, hi = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (start, end))
    return sorted(
        p["id"]
        for p in synth.plan()
        if _intersects(p["footprint"], bbox)
        and lo <= dt.datetime.fromisoformat(p["datetime"].replace("Z", "+00:00")) <= hi
        and (max_cloud is None or p["eo:cloud_cover"] < max_cloud)
    )


# --- the API ---------------------------------------------------------------------------------------


def test_the_collection_is_served_with_the_seeds_id(dev_stack: Any) -> None:
    api = dev_stack.stac_api_url
    landing = _get(f"{api}/")
    conforms = set(landing["conformsTo"])
    assert {
        "https://api.stacspec.org/v1.0.0/item-search",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
        "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
    } <= conforms, sorted(conforms)
    collection = _get(f"{api}/collections/{COLLECTION}")
    assert collection["id"] == COLLECTION and collection["type"] == "Collection"
    assert set(collection["item_assets"]) == {"green", "nir08"}
    plan = synth.plan()
    (interval,) = collection["extent"]["temporal"]["interval"]
    assert interval == [min(p["datetime"] for p in plan), max(p["datetime"] for p in plan)]
    assert {link["rel"] for link in collection["links"]} >= {"self", "items", "root"}
    assert [c["id"] for c in _get(f"{api}/collections")["collections"]] == [COLLECTION]


def test_the_plan_has_four_dates_per_footprint_with_varied_cloud_cover() -> None:
    plan = synth.plan()
    by_footprint: dict[str, list[dict[str, Any]]] = {}
    for p in plan:
        by_footprint.setdefault(p["wrs_path_row"], []).append(p)
    assert sorted(by_footprint) == ["043/033", "044/032", "044/033"]
    for items in by_footprint.values():
        days = [dt.date.fromisoformat(p["datetime"][:10]) for p in items]
        assert [(b - a).days for a, b in itertools.pairwise(days)] == [16, 16, 16]
        clouds = [p["eo:cloud_cover"] for p in items]
        assert min(clouds) < 20 <= max(clouds)
    assert set(scenes.DEFAULT_SCENES) <= {p["id"] for p in plan}


def test_search_by_bbox_datetime_and_cql2_cloud_cover(dev_stack: Any) -> None:
    start, end = "2023-11-01T00:00:00Z", "2023-12-31T23:59:59Z"
    body = {
        "collections": [COLLECTION],
        "bbox": AOI,
        "datetime": f"{start}/{end}",
        "filter-lang": "cql2-json",
        "filter": CLOUDLESS,
        "limit": 100,
    }
    ids, _ = _search_all(dev_stack.stac_api_url, body)
    expected = _expected(AOI, start, end, max_cloud=20)
    assert sorted(ids) == expected
    assert set(scenes.DEFAULT_SCENES) <= set(ids)
    # The filter and the interval both cut: 20.0 is not < 20, 2024-01-02 is after the end.
    assert "LC08_L2SP_044033_20231224_02_T1" not in ids and 4 <= len(ids) < len(_expected(AOI, start, end))
    # The bbox cuts too: east of path 44, only path 43's scenes.
    body_east = {**body, "bbox": EAST}
    east = sorted(_search_all(dev_stack.stac_api_url, body_east)[0])
    assert east == _expected(EAST, start, end, max_cloud=20)
    assert east and all("_043033_" in i for i in east)
    # The same search by GET, with the filter as CQL2 text.
    query = urllib.parse.urlencode(
        {
            "collections": COLLECTION,
            "bbox": ",".join(map(str, EAST)),
            "datetime": f"{start}/{end}",
            "filter-lang": "cql2-text",
            "filter": "eo:cloud_cover < 20",
        }
    )
    assert sorted(f["id"] for f in _get(f"{dev_stack.stac_api_url}/search?{query}")["features"]) == east


def test_weekly_data_intervals_select_some_scenes_and_not_others(dev_stack: Any) -> None:
    """What a @weekly DAG searches: each week (Sunday to Sunday) finds that week's acquisitions only."""
    week = dt.datetime(2023, 11, 5, tzinfo=dt.timezone.utc)  # a Sunday before the first acquisition
    found: dict[str, list[str]] = {}
    while week < dt.datetime(2024, 1, 8, tzinfo=dt.timezone.utc):
        start = week.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (week + dt.timedelta(days=7) - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"collections": [COLLECTION], "bbox": AOI, "datetime": f"{start}/{end}", "limit": 100}
        ids, _ = _search_all(dev_stack.stac_api_url, body)
        assert sorted(ids) == _expected(AOI, start, end), start
        found[start[:10]] = sorted(ids)
        week += dt.timedelta(days=7)
    counts = [len(v) for v in found.values()]
    assert 0 in counts and 1 in counts and 2 in counts, found  # empty weeks, one path, both path-44 rows
    assert found["2023-12-03"] == ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_044033_20231208_02_T1"]
    assert sum(counts) == len(scenes.SCENES)  # every acquisition in exactly one week


def test_paging_with_limit_2_walks_every_item(dev_stack: Any) -> None:
    api = dev_stack.stac_api_url
    everything = sorted(scenes.SCENES)
    ids, pages = _search_all(api, {"collections": [COLLECTION], "limit": 2})
    assert sorted(ids) == everything and len(ids) == len(set(ids)) and pages == 6
    # GET /collections/{id}/items pages with GET `next` links.
    url: str | None = f"{api}/collections/{COLLECTION}/items?limit=2"
    got: list[str] = []
    while url:
        page = _get(url)
        assert len(page["features"]) <= 2
        got += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        assert len(got) <= len(everything)
    assert sorted(got) == everything and len(got) == len(set(got))


def test_water_bodies_on_an_item_found_by_a_search(dev_stack: Any, hook_for: Any) -> None:
    """Search a week, hand the found item URL to water-bodies, score its mask against the truth."""
    api = dev_stack.stac_api_url
    body = {
        "collections": [COLLECTION],
        "bbox": AOI,
        "datetime": "2023-12-17T00:00:00Z/2023-12-23T23:59:59Z",
        "filter-lang": "cql2-json",
        "filter": CLOUDLESS,
    }
    page = _post(f"{api}/search", body)
    (feature,) = page["features"]  # a revisit, not one of the seed's scenes
    assert feature["id"] == "LC08_L2SP_043033_20231217_02_T1"
    url = next(link["href"] for link in feature["links"] if link["rel"] == "self")
    assert url == dev_stack.item_urls[feature["id"]]
    hook = hook_for(dev_stack.ogc_url)
    execution = hook.execute_process("water-bodies", {**dev_stack.example_inputs(), "stac_items": [url]})
    final = wait_for_job(hook, execution.job_id, timeout=60)[-1]
    assert final.status is JobStatus.SUCCESSFUL, final
    (result,) = hook.get_job_results(execution.job_id)["stac_catalog"]["features"]
    assert (
        result["id"] == feature["id"]
        and result["properties"]["datetime"] == feature["properties"]["datetime"]
    )

    from rasterio.io import MemoryFile

    s3 = dev_stack.s3_client()
    bucket, key = result["assets"]["data"]["href"].removeprefix("s3://").split("/", 1)
    with MemoryFile(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) as mem, mem.open() as src:
        mask, transform = src.read(1), src.transform
    score = truth.iou(mask == 1, truth.water_mask(feature["id"], transform, mask.shape))
    assert score >= truth.IOU_THRESHOLD, score
