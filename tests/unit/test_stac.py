"""Finding STAC items in results: every shape servers use, and the errors that name the problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ogc.exceptions import StacResultsError
from airflow_provider_ogc.stac import extract_stac
from tests.support.seed import SEED_JOB_ID, seed_feature_collection


@pytest.fixture
def seed_fc(shared_dir: Path) -> dict[str, Any]:
    return seed_feature_collection(shared_dir)


def test_seed_results_as_zoo_returns_them(seed_fc: dict[str, Any]) -> None:
    # ZOO-Project-DRU wraps the FeatureCollection as a qualified value of output stac_catalog.
    stac = extract_stac({"stac_catalog": {"value": seed_fc}})
    assert stac is not None and stac.outputs == ["stac_catalog"]
    assert stac.item_hrefs == [
        f"s3://results/{SEED_JOB_ID}/{SEED_JOB_ID}/LC08_L2SP_044032_20231208_02_T1/LC08_L2SP_044032_20231208_02_T1.json",
        f"s3://results/{SEED_JOB_ID}/{SEED_JOB_ID}/LC08_L2SP_043033_20231201_02_T1/LC08_L2SP_043033_20231201_02_T1.json",
    ]
    assert stac.asset_hrefs["LC08_L2SP_044032_20231208_02_T1"]["data"].endswith(
        "/LC08_L2SP_044032_20231208_02_T1/otsu.tif"
    )
    assert "2 STAC item(s) from output(s) stac_catalog" in stac.summary()


def test_unwrapped_feature_collection_and_json_string(seed_fc: dict[str, Any]) -> None:
    import json

    assert (
        extract_stac({"stac_catalog": seed_fc}).item_hrefs
        == extract_stac(  # type: ignore[union-attr]
            {"stac_catalog": json.dumps(seed_fc)}
        ).item_hrefs
    )  # type: ignore[union-attr]


def test_raw_document_and_single_item(seed_fc: dict[str, Any]) -> None:
    assert len(extract_stac(seed_fc).item_hrefs) == 2  # type: ignore[union-attr]
    item = seed_fc["features"][0]
    single = extract_stac({"result": item})
    assert single is not None and single.item_hrefs == [
        next(link["href"] for link in item["links"] if link["rel"] == "self")
    ]


def test_link_to_a_catalog_is_walked(seed_fc: dict[str, Any]) -> None:
    items = seed_fc["features"]
    docs = {
        "s3://results/j/catalog.json": {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": "j",
            "description": "d",
            "links": [{"rel": "child", "href": "./col/collection.json"}],
        },
        "s3://results/j/col/collection.json": {
            "type": "Collection",
            "stac_version": "1.0.0",
            "id": "col",
            "description": "d",
            "license": "x",
            "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[None, None]]}},
            "links": [{"rel": "item", "href": f"./{it['id']}/{it['id']}.json"} for it in items],
        },
    }
    for it in items:
        body = copy.deepcopy(it)
        body["links"] = [link for link in body["links"] if link["rel"] != "self"]
        docs[f"s3://results/j/col/{it['id']}/{it['id']}.json"] = body
    read: list[str] = []

    def read_json(href: str) -> Any:
        read.append(href)
        return copy.deepcopy(docs[href])

    stac = extract_stac(
        {"catalog": {"href": "s3://results/j/catalog.json", "type": "application/json"}}, read_json=read_json
    )
    assert stac is not None
    assert stac.item_hrefs == [f"s3://results/j/col/{it['id']}/{it['id']}.json" for it in items]
    assert read[0] == "s3://results/j/catalog.json" and len(read) == 4


def test_results_without_stac_give_none(shared_dir: Path) -> None:
    assert extract_stac({"echo": "hello"}) is None
    assert extract_stac({"a": {"value": 3}, "b": [1, 2]}) is None
    assert extract_stac("text") is None


def test_items_without_self_links_are_a_clear_error(seed_fc: dict[str, Any]) -> None:
    for feature in seed_fc["features"]:
        feature["links"] = [link for link in feature["links"] if link["rel"] != "self"]
    with pytest.raises(StacResultsError, match="has no 'self' link"):
        extract_stac({"stac_catalog": seed_fc})


def test_named_output_must_exist_and_hold_stac(seed_fc: dict[str, Any]) -> None:
    with pytest.raises(StacResultsError, match=r"no output 'stac' \(outputs: echo, stac_catalog\)"):
        extract_stac({"stac_catalog": seed_fc, "echo": "x"}, output="stac")
    with pytest.raises(StacResultsError, match="Output 'echo' holds no STAC items"):
        extract_stac({"stac_catalog": seed_fc, "echo": "x"}, output="echo")


def test_invalid_item_names_it() -> None:
    broken = {"type": "Feature", "stac_version": "1.0.0", "id": "bad", "links": []}
    with pytest.raises(StacResultsError, match="'bad'"):
        extract_stac({"out": broken})
