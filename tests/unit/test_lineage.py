"""airflow_provider_ogc.lineage: dataset naming (pure), and the OpenLineage objects when the extra is in."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_ogc.lineage import dataset_name, input_hrefs, output_hrefs, safe_url

PC_ITEM = "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items/LC08_X"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        (
            PC_ITEM,
            (
                "https://planetarycomputer.microsoft.com",
                "/api/stac/v1/collections/landsat-c2-l2/items/LC08_X",
            ),
        ),
        # The naming spec's S3: the bucket is the namespace, the object key the name.
        ("s3://results/job-1/LC08_X/otsu.tif", ("s3://results", "job-1/LC08_X/otsu.tif")),
        ("s3a://Results/a.json", ("s3://Results", "a.json")),
        ("gs://bucket/dir/a.tif", ("gs://bucket", "dir/a.tif")),
        ("file:///data/items/a.json", ("file", "/data/items/a.json")),
        ("/data/items/a.json", ("file", "/data/items/a.json")),
        # Default ports dropped, others kept; scheme and host lower-cased.
        ("HTTPS://Stac.Example.org:443/items/a", ("https://stac.example.org", "/items/a")),
        ("http://127.0.0.1:8080/items/a", ("http://127.0.0.1:8080", "/items/a")),
        ("http://[::1]:8080/items/a", ("http://[::1]:8080", "/items/a")),
        ("https://stac.example.org", ("https://stac.example.org", "/")),
    ],
)
def test_dataset_name(href: str, expected: tuple[str, str]) -> None:
    assert dataset_name(href) == expected


@pytest.mark.parametrize(
    "href",
    [
        "https://user:pw-secret@stac.example.org/items/a?token=pw-secret#frag",
        "https://stac.example.org/items/a?sig=pw-secret&se=2030",  # a signed (SAS) URL
        "s3://key:pw-secret@results/items/a.json?X-Amz-Signature=pw-secret",
    ],
)
def test_dataset_name_and_safe_url_drop_credentials(href: str) -> None:
    namespace, name = dataset_name(href)
    assert "pw-secret" not in namespace + name and "user" not in namespace
    assert "pw-secret" not in safe_url(href)


def test_safe_url() -> None:
    assert (
        safe_url("https://u:p@Zoo.example.org:8443/acme/ogc-api?x=1")
        == "https://zoo.example.org:8443/acme/ogc-api"
    )
    assert safe_url("http://127.0.0.1:80/ogc") == "http://127.0.0.1/ogc"


def test_input_hrefs_stac_items_and_inputs_by_reference() -> None:
    inputs: dict[str, Any] = {
        "stac_items": [PC_ITEM, {"href": "s3://in/b.json"}, PC_ITEM],
        "aoi": "-121.399,39.834,-120.74,40.472",  # a plain string input is not a dataset
        "bands": ["green", "nir08"],
        "dem": {"href": "https://data.example.org/dem.tif", "type": "image/tiff"},
        "masks": [{"href": "s3://in/m1.tif"}, {"value": "inline"}],
        "options": {"value": {"href": "not a reference: a qualified value"}},
    }
    assert input_hrefs(inputs) == [
        PC_ITEM,
        "s3://in/b.json",
        "https://data.example.org/dem.tif",
        "s3://in/m1.tif",
    ]
    assert input_hrefs({"stac_item": PC_ITEM}) == [PC_ITEM]
    assert input_hrefs(None) == [] and input_hrefs("{{ not rendered }}") == []  # type: ignore[arg-type]


def test_output_hrefs_items_then_their_data_assets() -> None:
    items = [
        {"item_id": "a", "href": "s3://r/a/a.json", "data_assets": {"data": "s3://r/a/otsu.tif"}},
        {"item_id": "b", "href": "s3://r/b/b.json", "data_assets": {}},
    ]
    assert output_hrefs(items) == ["s3://r/a/a.json", "s3://r/a/otsu.tif", "s3://r/b/b.json"]
    assert output_hrefs(None) == []


def test_lineage_module_imports_nothing_of_openlineage() -> None:
    """Without the extra the provider imports unchanged; with it, nothing is loaded until an event."""
    # Airflow itself loads every provider's get_provider_info: count only what our modules add.
    code = (
        "import sys; import airflow.sdk; before = set(sys.modules); "
        "import airflow_provider_ogc.lineage, airflow_provider_ogc.operators.ogc_processes; "
        "print(sorted(m for m in set(sys.modules) - before if 'openlineage' in m))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


def test_operator_lineage_objects() -> None:
    pytest.importorskip("airflow.providers.openlineage", reason="the openlineage extra is not installed")
    from openlineage.client.serde import Serde

    from airflow_provider_ogc.lineage import RUN_FACET_NAME, operator_lineage

    items = [{"href": "s3://r/a/a.json", "data_assets": {"data": "s3://r/a/otsu.tif"}}]
    lineage = operator_lineage(
        {"stac_items": [PC_ITEM]},
        process_id="water-bodies",
        items=items,
        job_id="j 1",
        server="https://zoo/ogc/",
    )
    assert [(d.namespace, d.name) for d in lineage.inputs] == [dataset_name(PC_ITEM)]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("s3://r", "a/a.json"),
        ("s3://r", "a/otsu.tif"),
    ]
    facet = Serde.to_dict(lineage.run_facets[RUN_FACET_NAME])
    assert {k: facet[k] for k in ("jobId", "processId", "server", "jobUrl")} == {
        "jobId": "j 1",
        "processId": "water-bodies",
        "server": "https://zoo/ogc",
        "jobUrl": "https://zoo/ogc/jobs/j%201",
    }
    assert lineage.run_facets["externalQuery"].externalQueryId == "j 1"
    # Before a job exists (START, or a failure before submission): the inputs, no job facets.
    early = operator_lineage({"stac_items": PC_ITEM}, process_id="water-bodies")
    assert len(early.inputs) == 1 and early.outputs == [] and early.run_facets == {}
