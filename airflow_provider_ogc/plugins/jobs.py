"""What the "OGC jobs" page shows, read on the api-server: task instances, their jobs and results.

The task instances of :class:`~airflow_provider_ogc.operators.ExecuteProcessOperator` and
:class:`~airflow_provider_ogc.sensors.JobStatusSensor` come from the metadata database with the
XComs they pushed (``job_id``, ``job_url``, ``ogc_job`` = the task's process and connection ids,
``return_value`` = the result item hrefs). A job's live status is read through the task's own
``ogc_processes`` connection with :class:`~airflow_provider_ogc.hooks.OGCProcessesHook` (which sends
credentials to the connection's origin only), with bounded concurrency and a timeout; statuses of
finished jobs are cached. Nothing here returns a credential.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_ogc.operators.ogc_processes import XCOM_OGC_JOB

if TYPE_CHECKING:
    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook
    from airflow_provider_ogc.s3 import S3Reader

log = logging.getLogger(__name__)

OPERATORS = ("ExecuteProcessOperator", "JobStatusSensor")
XCOM_KEYS = ("job_id", "job_url", XCOM_OGC_JOB, "return_value")
DEFAULT_OGC_CONN_ID = "ogc_processes_default"
DEFAULT_AWS_CONN_ID = "aws_default"
MAX_JOBS = 200
MAX_ITEMS = 50
STATUS_TIMEOUT = 8.0  # seconds for one job's status, retries included
STATUS_CONCURRENCY = 8  # status requests in flight from one api-server worker
TERMINAL = ("successful", "failed", "dismissed")
# What a task instance's state says when the server cannot be asked (no job yet, server down).
TI_STATUS = {
    "success": "successful",
    "failed": "failed",
    "upstream_failed": "failed",
    "running": "running",
    "deferred": "running",
    "up_for_reschedule": "running",
    "up_for_retry": "failed",
    "queued": "queued",
    "scheduled": "queued",
    "skipped": "skipped",
    "removed": "removed",
    "restarting": "queued",
}


@dataclass
class JobRow:
    """One task instance of the provider's operators, with the XComs it pushed."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    operator: str
    ti_state: str | None
    start_date: datetime | None
    end_date: datetime | None
    logical_date: datetime | None
    xcoms: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.dag_id, self.run_id, self.task_id, self.map_index)

    @property
    def job_id(self) -> str | None:
        ogc = self.ogc
        value = ogc.get("job_id") or self.xcoms.get("job_id")
        if not value and isinstance(self.xcoms.get("job_url"), str):
            from airflow_provider_ogc.hooks.ogc_processes import job_id_from_url

            try:
                value = job_id_from_url(self.xcoms["job_url"])
            except Exception:  # not a job URL
                value = None
        return value if isinstance(value, str) and value else None

    @property
    def ogc(self) -> dict[str, Any]:
        value = self.xcoms.get(XCOM_OGC_JOB)
        return value if isinstance(value, dict) else {}

    @property
    def ogc_conn_id(self) -> str:
        return str(self.ogc.get("ogc_conn_id") or DEFAULT_OGC_CONN_ID)

    @property
    def aws_conn_id(self) -> str | None:
        if XCOM_OGC_JOB in self.xcoms and "aws_conn_id" in self.ogc:
            value = self.ogc["aws_conn_id"]
            return str(value) if value else None  # None: the task used boto3's own credential chain
        return DEFAULT_AWS_CONN_ID  # a run from before the ogc_job XCom

    @property
    def item_hrefs(self) -> list[str]:
        value = self.xcoms.get("return_value")
        if self.operator != "ExecuteProcessOperator" or not isinstance(value, list):
            return []
        return [h for h in value if isinstance(h, str) and h][:MAX_ITEMS]


# ---------------------------------------------------------------------- metadata database (sync)


def query_jobs(
    dag_ids: set[str] | None,
    *,
    dag_id: str | None = None,
    key: tuple[str, str, str, int] | None = None,
    limit: int = MAX_JOBS,
) -> list[JobRow]:
    """The provider's task instances in ``dag_ids`` (``None``: every DAG), newest first."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import and_, exists, or_, select

    if dag_ids is not None and not dag_ids:
        return []
    with create_session() as session:
        has_ogc_xcom = exists().where(
            and_(
                XComModel.dag_id == TI.dag_id,
                XComModel.run_id == TI.run_id,
                XComModel.task_id == TI.task_id,
                XComModel.map_index == TI.map_index,
                XComModel.key == XCOM_OGC_JOB,
            )
        )
        query = (
            select(TI, DagRun.logical_date, DagRun.run_after)
            .join(DagRun, and_(DagRun.dag_id == TI.dag_id, DagRun.run_id == TI.run_id))
            .where(or_(TI.operator.in_(OPERATORS), has_ogc_xcom))
        )
        if dag_ids is not None:
            query = query.where(TI.dag_id.in_(sorted(dag_ids)))
        if dag_id:
            query = query.where(TI.dag_id == dag_id)
        if key:
            query = query.where(
                TI.dag_id == key[0], TI.run_id == key[1], TI.task_id == key[2], TI.map_index == key[3]
            )
        query = query.order_by(DagRun.run_after.desc(), TI.start_date.desc(), TI.task_id, TI.map_index)
        rows: list[JobRow] = []
        for ti, logical_date, run_after in session.execute(query.limit(limit)).all():
            rows.append(
                JobRow(
                    dag_id=ti.dag_id,
                    run_id=ti.run_id,
                    task_id=ti.task_id,
                    map_index=ti.map_index,
                    try_number=ti.try_number or 0,
                    operator=ti.custom_operator_name or ti.operator or "",
                    ti_state=str(ti.state.value if hasattr(ti.state, "value") else ti.state)
                    if ti.state
                    else None,
                    start_date=ti.start_date,
                    end_date=ti.end_date,
                    logical_date=logical_date or run_after,
                )
            )
        if not rows:
            return rows
        by_key = {r.key: r for r in rows}
        xcom_query = select(
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            XComModel.key,
            XComModel,
        ).where(
            XComModel.key.in_(XCOM_KEYS),
            XComModel.dag_id.in_({r.dag_id for r in rows}),
            XComModel.run_id.in_({r.run_id for r in rows}),
            XComModel.task_id.in_({r.task_id for r in rows}),
        )
        for x_dag, x_run, x_task, x_map, x_key, xcom in session.execute(xcom_query).all():
            row = by_key.get((x_dag, x_run, x_task, x_map))
            if row is not None:
                try:
                    row.xcoms[x_key] = XComModel.deserialize_value(xcom)
                except Exception:  # an XCom this page cannot read must not hide the job
                    log.debug("Unreadable XCom %s of %s", x_key, row.key, exc_info=True)
        # Newest first: by the task's start (a task not started yet: its run's date).
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        rows.sort(key=lambda r: r.start_date or r.logical_date or epoch, reverse=True)
        return rows


# ---------------------------------------------------------------------- connections on the api-server


def server_connection(conn_id: str) -> Any:
    """A connection as the api-server sees it (environment, secrets backends, then the database).

    The Task SDK's lookup, which hooks use, reads the metadata database only on Airflow 3.2+ outside a
    task; the core model reads it on every version.
    """
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


async def server_hook(conn_id: str) -> OGCProcessesHook:
    """The provider's hook on the task's connection, its settings read in a thread."""
    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

    conn = await asyncio.to_thread(server_connection, conn_id)
    return OGCProcessesHook.from_connection(conn)


def server_sync_hook(conn_id: str) -> OGCProcessesHook:
    """The provider's hook on the task's connection, for the result reads that run in threads."""
    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

    return OGCProcessesHook.from_connection(server_connection(conn_id))


def server_s3_reader(aws_conn_id: str | None) -> S3Reader:
    """An :class:`~airflow_provider_ogc.s3.S3Reader` on the ``aws`` connection the api-server can read."""
    from airflow_provider_ogc.s3 import S3Reader

    return S3Reader(aws_conn_id, get_connection=server_connection, max_attempts=2)


# ---------------------------------------------------------------------- live status (async)


class _LRU(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


_FINISHED: _LRU = _LRU(5000)  # (conn id, job id) -> status dict of a finished job
_GATES: dict[Any, asyncio.Semaphore] = {}


def _gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _GATES.get(loop)
    if gate is None:
        _GATES.clear()  # one api-server worker runs one loop; drop gates of loops that are gone
        gate = _GATES[loop] = asyncio.Semaphore(STATUS_CONCURRENCY)
    return gate


async def job_status(row: JobRow) -> dict[str, Any]:
    """The job's statusInfo fields from its server, or ``{"error": ...}``; finished jobs are cached."""
    job_id = row.job_id
    if not job_id:
        return {}
    cache_key = (row.ogc_conn_id, job_id)
    cached = _FINISHED.get(cache_key)
    if cached is not None:
        return dict(cached)
    try:
        async with _gate():
            hook = await server_hook(row.ogc_conn_id)
            info = await asyncio.wait_for(hook.aget_job_status(job_id), STATUS_TIMEOUT)
    except asyncio.TimeoutError:
        return {"error": f"The server did not answer within {STATUS_TIMEOUT:.0f} s"}
    except Exception as err:  # the page shows what went wrong instead of failing
        from airflow_provider_ogc.exceptions import explain_error

        return {"error": explain_error(err, row.ogc_conn_id, job_id=job_id)[:500]}
    status = {
        "status": info.status.value,
        "progress": info.progress,
        "message": info.message,
        "process_id": info.process_id,
        "created": info.created,
        "started": info.started,
        "finished": info.finished,
        "updated": info.updated,
        "links": [
            {"href": link.href, "rel": link.rel, "type": link.type, "title": link.title}
            for link in info.links
            if getattr(link, "href", None)
        ],
    }
    if info.status.value in TERMINAL:
        _FINISHED.put(cache_key, status)
    return dict(status)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def ui_paths(row: JobRow) -> dict[str, str]:
    """Airflow UI routes (relative to the UI's base URL) of the DAG, the run and the task instance."""
    dag = f"dags/{quote(row.dag_id, safe='')}"
    run = f"{dag}/runs/{quote(row.run_id, safe='')}"
    task = f"{run}/tasks/{quote(row.task_id, safe='')}"
    if row.map_index >= 0:
        task = f"{task}/mapped/{row.map_index}"
    log_path = f"{task}?try_number={row.try_number}" if row.try_number else task
    return {"dag": dag, "run": run, "task": task, "log": log_path}


def job_path(row: JobRow) -> str:
    """The job's JSON below ``/ogc``: ``api/jobs/{dag_id}/{run_id}/{task_id}/{map_index}``."""
    parts = (row.dag_id, row.run_id, row.task_id, str(row.map_index))
    return "api/jobs/" + "/".join(quote(p, safe="") for p in parts)


def job_summary(row: JobRow, status: dict[str, Any]) -> dict[str, Any]:
    """One job as the page lists it."""
    server_status = status.get("status")
    ti_state = row.ti_state
    if server_status:
        shown, source = server_status, "server"
    elif row.job_id:
        shown, source = TI_STATUS.get(ti_state or "", ti_state or "unknown"), "task"
    else:
        shown, source = ("not submitted" if ti_state in TI_STATUS else "unknown"), "task"
        if ti_state in ("queued", "scheduled", "running", "deferred", "restarting"):
            shown = "queued"
    progress = status.get("progress")
    if progress is None and shown == "successful":
        progress = 100
    started = _parse_time(status.get("started")) or _parse_time(status.get("created")) or row.start_date
    finished = _parse_time(status.get("finished")) or (row.end_date if shown in TERMINAL else None)
    if finished is None and shown not in ("running", "accepted", "queued") and row.end_date:
        finished = row.end_date
    duration = None
    if started:
        end = finished or (datetime.now(timezone.utc) if shown in ("running", "accepted") else None)
        if end:
            duration = max(0.0, (end - started).total_seconds())
    return {
        "id": "/".join((row.dag_id, row.run_id, row.task_id, str(row.map_index))),
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "task_id": row.task_id,
        "map_index": row.map_index,
        "try_number": row.try_number,
        "operator": row.operator,
        "ti_state": ti_state,
        "process_id": row.ogc.get("process_id") or status.get("process_id"),
        "job_id": row.job_id,
        "job_url": row.xcoms.get("job_url") if isinstance(row.xcoms.get("job_url"), str) else None,
        "status": shown,
        "status_source": source,
        "progress": progress,
        "message": status.get("message"),
        "error": status.get("error"),
        "started": _iso(started),
        "finished": _iso(finished),
        "duration_seconds": round(duration, 1) if duration is not None else None,
        "logical_date": _iso(row.logical_date),
        "ui": ui_paths(row),
        "api": job_path(row),
    }


async def summaries(rows: list[JobRow]) -> list[dict[str, Any]]:
    statuses = await asyncio.gather(*(job_status(r) for r in rows))
    return [job_summary(r, s) for r, s in zip(rows, statuses, strict=True)]


# ---------------------------------------------------------------------- results (sync, in a thread)


def data_asset(item: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The item's raster to show: the asset ``data``, else the first GeoTIFF with role ``data``."""
    assets = item.get("assets") or {}
    if not isinstance(assets, dict):
        return None

    def is_tiff(asset: dict[str, Any]) -> bool:
        kind = str(asset.get("type") or "").lower()
        href = str(asset.get("href") or "").lower()
        return "tiff" in kind or href.endswith((".tif", ".tiff"))

    candidates = [(k, a) for k, a in assets.items() if isinstance(a, dict) and a.get("href")]
    for test in (
        lambda k, a: k == "data" and is_tiff(a),
        lambda k, a: "data" in (a.get("roles") or []) and is_tiff(a),
        lambda k, a: is_tiff(a),
    ):
        for key, asset in candidates:
            if test(key, asset):
                return key, asset
    return None


def read_item(row: JobRow, href: str, hook: OGCProcessesHook | None) -> dict[str, Any]:
    """One result STAC item as a dict, its asset hrefs made absolute."""
    import pystac

    if href.startswith("s3://"):
        data = server_s3_reader(row.aws_conn_id).read_json(href)
    elif href.startswith(("http://", "https://")) and hook is not None:
        from airflow_provider_ogc.hooks._http import decode_json

        data = decode_json(hook.request("GET", href, accept="application/geo+json, application/json"))
    else:
        raise ValueError(f"Cannot read {href!r}: neither s3:// nor http(s)://")
    item = pystac.Item.from_dict(data, preserve_dict=False)
    item.set_self_href(href)
    out = item.to_dict(include_self_link=False, transform_hrefs=False)
    for key, asset in item.assets.items():
        out["assets"][key]["href"] = asset.get_absolute_href() or asset.href
    return dict(out)


def load_items(row: JobRow) -> tuple[list[dict[str, Any]], list[str]]:
    """The job's result items (as dicts) and the errors met reading them."""
    hrefs = row.item_hrefs
    if not hrefs:
        return [], []
    hook = None
    if any(h.startswith(("http://", "https://")) for h in hrefs):
        hook = server_sync_hook(row.ogc_conn_id)
    items: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        for index, href in enumerate(hrefs):
            try:
                item = read_item(row, href, hook)
            except Exception as err:
                errors.append(f"{href}: {type(err).__name__}: {err}"[:500])
                items.append({"index": index, "href": href, "error": str(err)[:500]})
                continue
            found = data_asset(item)
            items.append(
                {
                    "index": index,
                    "href": href,
                    "id": item.get("id"),
                    "bbox": item.get("bbox"),
                    "geometry": item.get("geometry"),
                    "properties": item.get("properties") or {},
                    "assets": {
                        k: {f: a.get(f) for f in ("href", "type", "roles", "title")}
                        for k, a in (item.get("assets") or {}).items()
                    },
                    "data_asset": found[0] if found else None,
                    "quicklook": f"quicklook/{index}.png" if found else None,
                }
            )
    finally:
        if hook is not None:
            hook.close()
    return items, errors


def item_data_href(row: JobRow, index: int) -> str:
    """The absolute href of item ``index``'s data asset (raises ``LookupError`` when there is none)."""
    hrefs = row.item_hrefs
    if not 0 <= index < len(hrefs):
        raise LookupError(f"The job has no result item {index}")
    hook = None
    href = hrefs[index]
    if href.startswith(("http://", "https://")):
        hook = server_sync_hook(row.ogc_conn_id)
    try:
        item = read_item(row, href, hook)
    finally:
        if hook is not None:
            hook.close()
    found = data_asset(item)
    if not found:
        raise LookupError(f"Item {item.get('id')} has no GeoTIFF data asset")
    return str(found[1]["href"])


def read_data(row: JobRow, href: str, max_bytes: int) -> bytes:
    """The data asset's bytes (``s3://`` with the task's aws connection, ``http(s)://`` with its ogc one)."""
    if href.startswith("s3://"):
        from airflow_provider_ogc.s3 import split_s3_url

        reader = server_s3_reader(row.aws_conn_id)
        bucket, key = split_s3_url(href)
        size = reader.client.head_object(Bucket=bucket, Key=key).get("ContentLength") or 0
        if size > max_bytes:
            raise ValueError(f"{href} is {size} bytes, more than the quick-look limit of {max_bytes}")
        return reader.read_bytes(href)
    if href.startswith(("http://", "https://")):
        hook = server_sync_hook(row.ogc_conn_id)
        try:
            response = hook.request("GET", href, accept="image/tiff, */*")
        finally:
            hook.close()
        if len(response.content) > max_bytes:
            raise ValueError(f"{href} is more than the quick-look limit of {max_bytes} bytes")
        return bytes(response.content)
    raise ValueError(f"Cannot read {href!r}: neither s3:// nor http(s)://")
