"""STAC search from DAGs: ``StacApiHook`` and ``StacSearchOperator`` against the stack's real STAC API."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("numpy")
pytest.importorskip("rasterio")

from airflow_provider_ogc._compat import AirflowFailException, AirflowSkipException
from airflow_provider_ogc.hooks.stac_api import StacApiHook
from airflow_provider_ogc.operators.stac import StacSearchOperator
from dev import scenes
from tests.dev.test_stac_api import AOI, COLLECTION, _expected
from tests.support.context import make_context

pytestmark = pytest.mark.integration

START, END = "2023-11-01T00:00:00Z", "2023-12-31T23:59:59Z"


@pytest.fixture
def stac_conn(dev_stack: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    conn = {"conn_type": "stac_api", "host": dev_stack.stac_api_url, "extra": {"retry_wait_min": 0.05}}
    monkeypatch.setenv("AIRFLOW_CONN_STAC_TEST", json.dumps(conn))
    return "stac_test"


def search(stac_conn: str, **kwargs: Any) -> tuple[list[str], dict[str, Any]]:
    operator = StacSearchOperator(task_id="find_scenes", stac_conn_id=stac_conn, **kwargs)
    context = make_context()
    return operator.execute(context), context["ti"].xcoms


def test_the_hook_searches_with_bbox_interval_and_a_cql2_text_filter(stac_conn: str) -> None:
    hook = StacApiHook(stac_conn_id=stac_conn)
    items = hook.search(
        collections=[COLLECTION], bbox=AOI, datetime=f"{START}/{END}", filter="eo:cloud_cover < 20"
    )
    assert sorted(item["id"] for item in items) == _expected(AOI, START, END, max_cloud=20)
    assert hook.test_connection()[0] is True


def test_the_hook_follows_next_links_to_every_item(stac_conn: str) -> None:
    items = StacApiHook(stac_conn_id=stac_conn).search(collections=COLLECTION, limit=2, max_items=None)
    assert sorted(item["id"] for item in items) == sorted(scenes.SCENES)


def test_the_operator_returns_the_api_item_urls_of_its_interval(stac_conn: str, dev_stack: Any) -> None:
    hrefs, xcoms = search(
        stac_conn,
        collections=COLLECTION,
        bbox=",".join(map(str, AOI)),  # as a template renders it
        datetime="2023-12-03T00:00:00+00:00/2023-12-10T00:00:00+00:00",
        filter={"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
    )
    expected = _expected(AOI, "2023-12-03T00:00:00Z", "2023-12-10T00:00:00Z", max_cloud=20)
    api = dev_stack.stac_api_url
    assert sorted(hrefs) == [f"{api}/collections/{COLLECTION}/items/{item_id}" for item_id in expected]
    assert expected == ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_044033_20231208_02_T1"]
    summaries = {s["id"]: s for s in xcoms["items"]}
    assert set(summaries) == set(expected)
    assert (
        summaries[expected[0]]["eo:cloud_cover"] < 20 and summaries[expected[0]]["collection"] == COLLECTION
    )


def test_an_interval_without_scenes_skips_the_task(stac_conn: str) -> None:
    with pytest.raises(AirflowSkipException, match="No item matches in landsat-c2-l2"):
        search(
            stac_conn, collections=COLLECTION, bbox=AOI, datetime="2023-10-01T00:00:00Z/2023-10-07T00:00:00Z"
        )
    hrefs, _ = search(
        stac_conn,
        collections=COLLECTION,
        datetime="2023-10-01T00:00:00Z/2023-10-07T00:00:00Z",
        skip_if_empty=False,
    )
    assert hrefs == []


def test_max_items_keeps_the_first_ones(stac_conn: str) -> None:
    hrefs, _ = search(stac_conn, collections=COLLECTION, max_items=5)
    assert len(hrefs) == 5


def test_an_unknown_collection_fails_without_retry_and_names_the_known_ones(stac_conn: str) -> None:
    with pytest.raises(
        AirflowFailException,
        match=r"Collection 'landsat-c2-l1' does not exist on .* \(it has: landsat-c2-l2\)",
    ):
        search(stac_conn, collections=["landsat-c2-l1"], bbox=AOI)


def test_a_filter_the_api_refuses_fails_without_retry_with_its_message(stac_conn: str) -> None:
    with pytest.raises(AirflowFailException, match="HTTP 400") as caught:
        search(stac_conn, collections=COLLECTION, filter="eo:cloud_cover <<< 20")
    assert "/search" in str(caught.value)


def test_airflow_connections_test_reads_the_stac_api(stac_conn: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "connections", "test", stac_conn],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"},
    )
    assert result.returncode == 0, result.stderr
    assert "Connection success!" in result.stdout, result.stdout
