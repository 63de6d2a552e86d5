"""Inputs checked against process descriptions before anything is submitted."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_ogc.exceptions import InvalidInputsError
from airflow_provider_ogc.inputs import validate_inputs

WATER_BODIES = {
    "id": "water-bodies",
    "inputs": {
        "stac_items": {"schema": {"type": "array", "items": {"type": "string", "format": "uri"}}},
        "aoi": {"schema": {"type": "string", "pattern": r"^-?[\d.]+,-?[\d.]+,-?[\d.]+,-?[\d.]+$"}},
        "epsg": {"schema": {"type": "string", "default": "EPSG:4326"}},
        "bands": {"schema": {"type": "string"}, "minOccurs": 2, "maxOccurs": 2},
    },
}
GOOD = {
    "stac_items": ["https://x/items/a"],
    "aoi": "-121.399,39.834,-120.74,40.472",
    "bands": ["green", "nir08"],
}


def problems(description: dict[str, Any], inputs: Any) -> list[str]:
    with pytest.raises(InvalidInputsError) as caught:
        validate_inputs(description, inputs)
    assert caught.value.process_id == description["id"]
    return caught.value.problems


def test_valid_inputs_pass() -> None:
    validate_inputs(WATER_BODIES, GOOD)
    validate_inputs(WATER_BODIES, {**GOOD, "epsg": {"value": "EPSG:32610", "mediaType": "text/plain"}})


def test_missing_required_input_is_named() -> None:
    assert problems(WATER_BODIES, {k: v for k, v in GOOD.items() if k != "aoi"}) == [
        "'aoi' is required but missing"
    ]


def test_defaults_make_inputs_optional() -> None:
    validate_inputs(WATER_BODIES, GOOD)  # epsg has a default


def test_wrong_type_and_pattern_are_named() -> None:
    found = problems(WATER_BODIES, {**GOOD, "aoi": "somewhere", "stac_items": "https://x"})
    assert any(p.startswith("'aoi': 'somewhere' does not match") for p in found)
    assert any(p.startswith("'stac_items': 'https://x' is not of type 'array'") for p in found)


def test_unknown_input_lists_the_known_ones() -> None:
    found = problems(WATER_BODIES, {**GOOD, "aoy": "1,2,3,4"})
    assert found == ["'aoy' is not an input of this process (inputs: aoi, bands, epsg, stac_items)"]


def test_occurrences() -> None:
    assert problems(WATER_BODIES, {**GOOD, "bands": ["green"]}) == [
        "'bands' needs at least 2 value(s), got 1"
    ]
    assert problems(WATER_BODIES, {**GOOD, "bands": ["a", "b", "c"]}) == [
        "'bands' takes at most 2 value(s), got 3"
    ]


def test_references_are_not_checked() -> None:
    validate_inputs(WATER_BODIES, {**GOOD, "aoi": {"href": "https://x/aoi.txt"}})


def test_inputs_must_be_an_object() -> None:
    assert problems(WATER_BODIES, ["a"]) == ["inputs must be an object, got list"]
