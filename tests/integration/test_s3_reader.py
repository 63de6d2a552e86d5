"""S3Reader against a real S3 API (moto server), with credentials from an Airflow ``aws`` connection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ogc.exceptions import S3LocationError
from airflow_provider_ogc.s3 import S3Reader, split_s3_url
from tests.support.seed import seed_feature_collection

pytestmark = pytest.mark.integration


@pytest.fixture
def aws_conn(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    conn = {
        "conn_type": "aws",
        "login": "testing-key",
        "password": "testing-secret",
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_RESULTS_S3", json.dumps(conn))
    return "results_s3"


@pytest.fixture
def bucket(aws_conn: str) -> Any:
    client = S3Reader(aws_conn).client
    name = "results"
    if name not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=name)
    return client


def test_read_a_stac_item_and_its_asset(bucket: Any, aws_conn: str, shared_dir: Path, tmp_path: Path) -> None:
    item = seed_feature_collection(shared_dir)["features"][0]
    item_href = next(link["href"] for link in item["links"] if link["rel"] == "self")
    asset_href = item["assets"]["data"]["href"]
    bucket.put_object(Bucket="results", Key=split_s3_url(item_href)[1], Body=json.dumps(item).encode())
    bucket.put_object(Bucket="results", Key=split_s3_url(asset_href)[1], Body=b"II*\x00tiff-bytes")

    reader = S3Reader(aws_conn)
    stac_item = reader.read_item(item_href)
    assert stac_item.id == item["id"] and stac_item.get_self_href() == item_href
    assert stac_item.assets["data"].get_absolute_href() == asset_href
    assert reader.read_bytes(asset_href) == b"II*\x00tiff-bytes"
    local = reader.download(asset_href, tmp_path / "deep" / "otsu.tif")
    assert local.read_bytes() == b"II*\x00tiff-bytes"


def test_endpoint_and_keys_come_from_the_connection(bucket: Any, aws_conn: str, moto_server: str) -> None:
    client = S3Reader(aws_conn).client
    assert client.meta.endpoint_url == moto_server and client.meta.region_name == "us-east-1"
    assert client._request_signer._credentials.access_key == "testing-key"


def test_missing_object_and_bad_urls_are_clear_errors(bucket: Any, aws_conn: str) -> None:
    reader = S3Reader(aws_conn)
    with pytest.raises(S3LocationError, match=r"No object at s3://results/nope\.json"):
        reader.read_json("s3://results/nope.json")
    for url in ("https://x/y.json", "s3://bucket-only", "results/key"):
        with pytest.raises(S3LocationError, match="Not an s3://bucket/key URL"):
            split_s3_url(url)
    bucket.put_object(Bucket="results", Key="text.json", Body=b"not json")
    with pytest.raises(S3LocationError, match=r"s3://results/text\.json is not JSON"):
        reader.read_json("s3://results/text.json")
