"""OpenLineage for :class:`~airflow_provider_ogc.operators.ExecuteProcessOperator`.

With ``apache-airflow-providers-openlineage`` installed (``airflow-provider-ogc[openlineage]``), the
operator reports its inputs (the STAC items it submitted), its outputs (the result STAC items and
their data assets) and the remote job (id, server, process, job URL) to OpenLineage.

Dataset names follow the OpenLineage naming spec (namespace ``scheme://authority``, name the
path): object stores as the spec names them (``s3://bucket`` + the object key), web resources as
``https://host[:port]`` + the path. Credentials never reach an event: user info, query and fragment
are dropped (a query often holds a signature or token, and does not name a different dataset).

OpenLineage is imported only inside the functions that build its objects, so the provider imports
and DAGs parse without the extra, and as cheaply as before.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = [
    "RUN_FACET_NAME",
    "STAC_INPUT_NAMES",
    "dataset_name",
    "input_hrefs",
    "operator_lineage",
    "output_hrefs",
    "safe_url",
]

# Inputs that name STAC items (the EO application convention, e.g. water-bodies' ``stac_items``).
STAC_INPUT_NAMES = ("stac_items", "stac_item")
RUN_FACET_NAME = "ogcApiProcessesJob"
# The naming spec's object stores: the bucket (or container) is the namespace, the key the name.
_OBJECT_STORES = {
    "s3": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "gs": "gs",
    "gcs": "gs",
    "abfss": "abfss",
    "wasbs": "wasbs",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(scheme: str, host: str, port: int | None) -> str:
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{port}" if port is not None and port != _DEFAULT_PORTS.get(scheme) else host


def dataset_name(href: str) -> tuple[str, str]:
    """
    The OpenLineage ``(namespace, name)`` of a URL.

    :param href: an absolute URL (``https://``, ``s3://``, ``file://``, ...) or a local path.
    :return: ``("s3://bucket", "key")`` for object stores, ``("file", "/path")`` for local files,
        ``("scheme://host[:port]", "/path")`` otherwise; without user info, query or fragment.
    """
    parts = urlsplit(href.strip())
    scheme = parts.scheme.lower()
    if not scheme or len(scheme) == 1:  # a bare path (or a Windows drive letter)
        return "file", href.strip()
    if scheme == "file":
        return "file", parts.path
    try:
        port = parts.port
    except ValueError:  # not a number: keep none rather than fail the whole event
        port = None
    host = parts.hostname or ""
    if scheme in _OBJECT_STORES:
        # Bucket names are case-sensitive on some stores: keep them as written (minus user info).
        bucket = parts.netloc.rsplit("@", 1)[-1]
        return f"{_OBJECT_STORES[scheme]}://{bucket}", parts.path.lstrip("/")
    return f"{scheme}://{_authority(scheme, host, port)}", parts.path or "/"


def safe_url(url: str) -> str:
    """``url`` without user info, query and fragment: fit for an event or a log line."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.scheme or not parts.hostname:
        return parts.path
    scheme = parts.scheme.lower()
    return f"{scheme}://{_authority(scheme, parts.hostname, port)}{parts.path}"


def _hrefs_in(value: Any) -> Iterable[str]:
    """Hrefs in an input value: a string, an ``{"href": ...}`` reference, or a list of either."""
    if isinstance(value, str) and value.strip():
        yield value.strip()
    elif isinstance(value, dict) and isinstance(value.get("href"), str) and "value" not in value:
        yield value["href"].strip()
    elif isinstance(value, (list, tuple)):
        for element in value:
            yield from _hrefs_in(element)


def input_hrefs(inputs: Mapping[str, Any] | None) -> list[str]:
    """
    The datasets an execute request reads: the hrefs of its STAC item inputs (``stac_items``,
    ``stac_item``), and every input given by reference (``{"href": ...}``, OGC's way to pass data).

    :param inputs: the execute request's inputs, as rendered.
    :return: the hrefs, in order, without duplicates.
    """
    if not isinstance(inputs, dict):
        return []
    found: list[str] = []
    for name, value in inputs.items():
        if name in STAC_INPUT_NAMES:
            found.extend(_hrefs_in(value))
        else:
            by_reference = [value] if isinstance(value, dict) else value if isinstance(value, list) else []
            found.extend(href for v in by_reference if isinstance(v, dict) for href in _hrefs_in(v))
    return list(dict.fromkeys(found))


def output_hrefs(items: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """
    The datasets a job wrote: each result STAC item's href, followed by its data assets' hrefs.

    :param items: :attr:`~airflow_provider_ogc.stac.StacResults.items`.
    :return: the hrefs, in order, without duplicates.
    """
    found: list[str] = []
    for item in items or []:
        if isinstance(item.get("href"), str):
            found.append(item["href"])
        found.extend(h for h in (item.get("data_assets") or {}).values() if isinstance(h, str))
    return list(dict.fromkeys(found))


@cache
def _run_facet_class() -> type:
    """The run facet naming the remote job; built on first use, as it subclasses OpenLineage's."""
    from attrs import define
    from openlineage.client.facet_v2 import RunFacet

    @define
    class OGCApiProcessesJobRunFacet(RunFacet):
        """
        The OGC API - Processes job a task ran.

        :param jobId: the job's id on the server.
        :param processId: the process it executed.
        :param server: the API root (no credentials).
        :param jobUrl: the job's status URL.
        """

        jobId: str
        processId: str
        server: str | None = None
        jobUrl: str | None = None

    return OGCApiProcessesJobRunFacet


def operator_lineage(
    inputs: Mapping[str, Any] | None,
    *,
    process_id: str | None = None,
    items: Iterable[Mapping[str, Any]] | None = None,
    job_id: str | None = None,
    server: str | None = None,
) -> OperatorLineage:
    """
    The lineage of one ``ExecuteProcessOperator`` run.

    :param inputs: the execute request's inputs (input datasets, see :func:`input_hrefs`).
    :param process_id: the process executed.
    :param items: the result STAC items (output datasets, see :func:`output_hrefs`).
    :param job_id: the remote job, once submitted: adds the ``externalQuery`` run facet and ours.
    :param server: the API root the job ran on.
    :return: what the OpenLineage provider sends on the task's event.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import external_query_run

    run_facets: dict[str, Any] = {}
    if job_id:
        root = safe_url(server).rstrip("/") if server else None
        job_url = f"{root}/jobs/{quote(job_id.strip(), safe='')}" if root else None
        if root:
            run_facets["externalQuery"] = external_query_run.ExternalQueryRunFacet(
                externalQueryId=job_id, source=root
            )
        run_facets[RUN_FACET_NAME] = _run_facet_class()(
            jobId=job_id, processId=process_id or "", server=root, jobUrl=job_url
        )
    return OperatorLineage(
        inputs=[InputDataset(namespace=n, name=m) for n, m in map(dataset_name, input_hrefs(inputs))],
        outputs=[OutputDataset(namespace=n, name=m) for n, m in map(dataset_name, output_hrefs(items))],
        run_facets=run_facets,
    )
