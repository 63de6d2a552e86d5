"""Reading job results from S3 in downstream tasks: STAC items, and assets such as ``otsu.tif``.

Credentials come from an Airflow connection of type ``aws`` (the one the Amazon provider uses),
so the same DAG runs against AWS S3, MinIO, LocalStack or a moto server by changing only the
connection: Login/Password hold the access key pair, and the extras ``endpoint_url``,
``region_name`` and ``verify`` say where and how to connect. Without a connection id, boto3's
own credential chain is used.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_ogc.exceptions import OGCConnectionConfigError, S3LocationError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pystac

__all__ = ["S3Reader", "client_options", "split_s3_url"]


def client_options(conn: Any) -> dict[str, Any]:
    """
    boto3 client options from an ``aws`` connection: the access key pair in Login/Password,
    ``aws_session_token``, ``endpoint_url`` (or ``service_config.s3.endpoint_url``), ``region_name``
    and ``verify`` in the extras.
    """
    options: dict[str, Any] = {}
    extra = conn.extra_dejson or {}
    if conn.login:
        options["aws_access_key_id"] = conn.login
        options["aws_secret_access_key"] = conn.password
    if extra.get("aws_session_token"):
        options["aws_session_token"] = extra["aws_session_token"]
    endpoint = extra.get("endpoint_url") or ((extra.get("service_config") or {}).get("s3") or {}).get(
        "endpoint_url"
    )
    if endpoint:
        options["endpoint_url"] = endpoint
    if extra.get("region_name"):
        options["region_name"] = extra["region_name"]
    if "verify" in extra:
        from airflow_provider_ogc.hooks._http import tls_verify_option

        try:
            options["verify"] = tls_verify_option(extra["verify"])
        except ValueError as err:
            raise OGCConnectionConfigError(f"The aws connection's {err}") from None
    return options


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → ``("bucket", "some/key")``."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise S3LocationError(f"Not an s3://bucket/key URL: {url!r}")
    return parts.netloc, parts.path.lstrip("/")


class S3Reader:
    """
    A small boto3 client for what downstream tasks read from job results.

    :param aws_conn_id: an Airflow connection of type ``aws``; ``None`` uses boto3's defaults.
    :param get_connection: how to read the connection; by default the Task SDK's lookup (tasks and
        hooks). The api-server passes the core model's lookup, which reads the metadata database on
        every Airflow version.
    :param max_attempts: boto3's attempts per request (its "standard" retry mode).
    """

    def __init__(
        self,
        aws_conn_id: str | None = "aws_default",
        *,
        get_connection: Callable[[str], Any] | None = None,
        max_attempts: int = 5,
    ) -> None:
        self.aws_conn_id = aws_conn_id
        self._get_connection = get_connection
        self.max_attempts = max_attempts

    @cached_property
    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {}
        if self.aws_conn_id:
            if self._get_connection is None:
                from airflow.sdk import BaseHook

                options = client_options(BaseHook.get_connection(self.aws_conn_id))
            else:
                options = client_options(self._get_connection(self.aws_conn_id))
        retries = {"max_attempts": self.max_attempts, "mode": "standard"}
        return boto3.client("s3", config=Config(retries=retries), **options)

    def read_bytes(self, url: str) -> bytes:
        """The whole object at ``url``."""
        bucket, key = split_s3_url(url)
        try:
            return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            raise S3LocationError(f"No object at {url}") from None

    def read_json(self, url: str) -> Any:
        """The JSON document at ``url``."""
        data = self.read_bytes(url)
        try:
            return json.loads(data)
        except ValueError as err:
            raise S3LocationError(f"{url} is not JSON: {err}") from None

    def read_item(self, url: str) -> pystac.Item:
        """The STAC item at ``url``, with its self href set so relative asset hrefs resolve."""
        import pystac

        item = pystac.Item.from_dict(self.read_json(url), preserve_dict=False)
        item.set_self_href(url)
        return item

    def download(self, url: str, destination: str | Path) -> Path:
        """Copy the object at ``url`` to a local file (parents created)."""
        bucket, key = split_s3_url(url)
        path = Path(destination)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(bucket, key, str(path))
        return path
