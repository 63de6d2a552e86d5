"""Operators that run OGC API - Processes jobs from DAGs."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_ogc._compat import AirflowFailException
from airflow_provider_ogc.exceptions import (
    OGCJobFailedError,
    OGCJobFailedPermanentlyError,
    describe_failure,
    fail_permanent_errors,
)
from airflow_provider_ogc.links.ogc_processes import XCOM_JOB_ID, XCOM_JOB_URL, OGCJobLink, OGCJobResultsLink
from airflow_provider_ogc.polling import DEFAULT_MAX_POLL_INTERVAL, task_poll_intervals

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

__all__ = ["ExecuteProcessOperator"]

XCOM_ASSET_HREFS = "asset_hrefs"
# {"process_id", "ogc_conn_id", "aws_conn_id"} (the sensor: {"job_id", "process_id", "ogc_conn_id"}), read
# by the OGC jobs page (airflow_provider_ogc.plugins.jobs) on the api-server.
XCOM_OGC_JOB = "ogc_job"
DEFAULT_MAX_RESULT_BYTES = 512 * 1024


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


class ExecuteProcessOperator(BaseOperator):
    """
    Execute an OGC API - Processes process and wait for its job without holding a worker slot.

    The job is submitted on the worker; XCom ``job_id`` and ``job_url`` are pushed at once, then the
    task defers to :class:`~airflow_provider_ogc.triggers.OGCJobTrigger` while the job runs. When it
    succeeds, its results are fetched. Results holding STAC items (a FeatureCollection, an
    ItemCollection, an Item, or a link to a Catalog/Collection) make the return value the list of
    item hrefs, and XCom ``asset_hrefs`` maps item id to {asset key: href}; other results are
    returned as they are. A retried task reattaches to its job if that job is still running or has
    succeeded, and submits a new one only if it failed or is gone.

    :param process_id: the process to execute (templated).
    :param inputs: the execute request's inputs (templated).
    :param ogc_conn_id: the ``ogc_processes`` connection.
    :param outputs: the execute request's ``outputs`` selection (templated).
    :param response: ``document`` or ``raw``, for servers that take it.
    :param deferrable: wait in the triggerer (default) instead of polling on the worker.
    :param wait_for_completion: wait for the job; ``False`` returns the job id right after submission.
    :param poll_interval: the shortest wait between status polls, in seconds.
    :param max_poll_interval: the longest wait between status polls, in seconds.
    :param timeout: how long the job may run (seconds or timedelta) before it is dismissed and the
        task fails; ``execution_timeout`` is honoured the same way.
    :param validate_inputs: check the inputs against the process description before submitting.
    :param stac_output: the output holding the STAC results; by default every output is searched.
    :param aws_conn_id: the ``aws`` connection used to read linked STAC catalogs on ``s3://``.
    :param reattach_on_retry: on retry, reattach to the job of an earlier try instead of resubmitting.
    :param dismiss_on_kill: dismiss the job when the task is killed, marked failed or times out.
    :param max_transient_errors: consecutive polling errors (network, 5xx, 429) tolerated.
    :param max_result_bytes: the largest non-STAC results document returned through XCom.
    """

    template_fields: Sequence[str] = ("process_id", "inputs", "outputs", "stac_output")
    template_fields_renderers = {"inputs": "json", "outputs": "json"}
    ui_color = "#d6ecf3"
    operator_extra_links = (OGCJobLink(), OGCJobResultsLink())

    def __init__(
        self,
        *,
        process_id: str,
        inputs: dict[str, Any] | None = None,
        ogc_conn_id: str = "ogc_processes_default",
        outputs: dict[str, Any] | None = None,
        response: str | None = None,
        deferrable: bool = True,
        wait_for_completion: bool = True,
        poll_interval: float = 1.0,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        timeout: float | timedelta | None = None,
        validate_inputs: bool = True,
        stac_output: str | None = None,
        aws_conn_id: str | None = None,
        reattach_on_retry: bool = True,
        dismiss_on_kill: bool = True,
        max_transient_errors: int = 10,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poll_interval, self.max_poll_interval = task_poll_intervals(poll_interval, max_poll_interval)
        self.process_id = process_id
        self.inputs = inputs
        self.ogc_conn_id = ogc_conn_id
        self.outputs = outputs
        self.response = response
        self.deferrable = deferrable
        self.wait_for_completion = wait_for_completion
        self.timeout = _seconds(timeout)
        self.validate_inputs = validate_inputs
        self.stac_output = stac_output
        self.aws_conn_id = aws_conn_id
        self.reattach_on_retry = reattach_on_retry
        self.dismiss_on_kill = dismiss_on_kill
        self.max_transient_errors = max_transient_errors
        self.max_result_bytes = max_result_bytes
        self._job_id: str | None = None
        self._finished = False
        self._stac_items: list[dict[str, Any]] | None = None  # for OpenLineage, set with the results

    @cached_property
    def hook(self) -> OGCProcessesHook:
        from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

        return OGCProcessesHook(ogc_conn_id=self.ogc_conn_id)

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> Any:
        from airflow_provider_ogc.inputs import json_inputs
        from airflow_provider_ogc.operators._job_memo import JobMemo

        if not isinstance(self.process_id, str) or not self.process_id.strip():
            raise AirflowFailException(
                f"process_id must be a non-empty string, got {self.process_id!r} (did its template render "
                "nothing?)"
            )
        memo = JobMemo(context) if self.reattach_on_retry else None
        with fail_permanent_errors(self.hook):
            # Python objects from templating (a set, NaN, a dict rendered as text) are named here,
            # before anything is sent.
            inputs = json_inputs(self.process_id, self.inputs)
            job = self._reattach(memo) if memo else None
            if job is None:
                if self.validate_inputs:
                    self._check_inputs(inputs)
                execution = self.hook.execute_process(
                    self.process_id, inputs, outputs=self.outputs, response=self.response
                )
                if execution.synchronous:
                    self.log.info(
                        "The server ran %s synchronously and answered with its results", self.process_id
                    )
                    if execution.job_id:
                        self._push_job(context, {"job_id": execution.job_id, "job_url": execution.job_url})
                    return self._results_to_xcom(context, execution.results)
                job = {"job_id": execution.job_id, "job_url": execution.job_url, "submitted_at": time.time()}
                if memo:
                    memo.set(job)
        self._push_job(context, job)
        self.log.info("Job %s of process %s: %s", job["job_id"], self.process_id, job["job_url"])
        if job.get("status") == "successful":
            return self._finish(context, job["job_id"], memo)
        if not self.wait_for_completion:
            return job["job_id"]
        trigger = self._trigger(context, job)
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete")
        return self.execute_complete(context, self._poll_on_worker(trigger))

    def _reattach(self, memo: Any) -> dict[str, Any] | None:
        """The earlier try's job if it is still running or succeeded; else ``None`` (submit anew)."""
        from airflow_provider_ogc.exceptions import OGCProcessesAPIError
        from airflow_provider_ogc.models import JobStatus

        job = memo.get()
        if not job:
            return None
        try:
            info = self.hook.get_job_status(job["job_id"])
        except OGCProcessesAPIError as err:
            if err.http_status == 404:
                self.log.warning(
                    "The job of an earlier try (%s) is gone; submitting a new one", job["job_id"]
                )
                return None
            raise
        if info.status in (JobStatus.FAILED, JobStatus.DISMISSED):
            self.log.warning(
                "The job of an earlier try (%s) ended %s; submitting a new one",
                info.job_id,
                info.status.value,
            )
            return None
        self.log.info("Reattaching to job %s of an earlier try (%s)", info.job_id, info.status.value)
        return {**job, "status": info.status.value}

    def _check_inputs(self, inputs: dict[str, Any] | None) -> None:
        from airflow_provider_ogc.exceptions import OGCProcessesAPIError
        from airflow_provider_ogc.inputs import validate_inputs

        try:
            description = self.hook.get_process(self.process_id)
        except OGCProcessesAPIError as err:
            if err.http_status == 404:
                raise AirflowFailException(
                    f"Process {self.process_id!r} does not exist on {self.hook.base_url} ({err})"
                ) from err
            raise
        validate_inputs(description, inputs)

    def _push_job(self, context: Context, job: dict[str, Any]) -> None:
        self._job_id = job["job_id"]
        ti = context["ti"]
        ti.xcom_push(key=XCOM_JOB_ID, value=job["job_id"])
        ti.xcom_push(key=XCOM_JOB_URL, value=job["job_url"])
        # For the OGC jobs page (airflow_provider_ogc.plugins): the connection ids are not in the
        # serialized DAG, and the api-server reads the job's status and results through them.
        ti.xcom_push(
            key=XCOM_OGC_JOB,
            value={
                "process_id": self.process_id,
                "ogc_conn_id": self.ogc_conn_id,
                "aws_conn_id": self.aws_conn_id,
            },
        )

    def _trigger(self, context: Context, job: dict[str, Any]) -> Any:
        from airflow_provider_ogc.triggers.ogc_processes import OGCJobTrigger

        submitted_at = float(job.get("submitted_at") or time.time())
        deadline = submitted_at + self.timeout if self.timeout else None
        if self.execution_timeout:
            # Stop (and dismiss) a little before Airflow's own timeout, which would not dismiss the job.
            started = context["ti"].start_date
            budget = self.execution_timeout.total_seconds()
            started_at = started.timestamp() if started else time.time()
            task_deadline = started_at + budget - min(5.0, budget * 0.1)
            deadline = min(deadline, task_deadline) if deadline else task_deadline
        return OGCJobTrigger(
            job_id=job["job_id"],
            ogc_conn_id=self.ogc_conn_id,
            submitted_at=submitted_at,
            deadline=deadline,
            min_poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            max_transient_errors=self.max_transient_errors,
            dismiss_on_timeout=self.dismiss_on_kill,
            dismiss_on_kill=self.dismiss_on_kill,
        )

    def _poll_on_worker(self, trigger: Any) -> dict[str, Any]:
        """Run the trigger's loop in this process (``deferrable=False``): same schedule, same events."""
        import asyncio

        from airflow_provider_ogc.hooks.ogc_processes import aclose_shared_clients

        async def first_event() -> dict[str, Any]:
            try:
                async for event in trigger.run():
                    return dict(event.payload)
            finally:
                await aclose_shared_clients()
            raise OGCJobFailedError(f"Watching job {trigger.job_id} ended without an outcome")

        return asyncio.run(first_event())

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: fetch the results, or fail with the server's message."""
        from airflow_provider_ogc.events import JobEvent, JobOutcome
        from airflow_provider_ogc.operators._job_memo import JobMemo

        outcome = JobEvent.from_payload(event)
        self._job_id = outcome.job_id
        memo = JobMemo(context) if self.reattach_on_retry else None
        if outcome.succeeded:
            return self._finish(context, outcome.job_id, memo)
        self._finished = True  # nothing left to dismiss
        if memo and outcome.outcome in (JobOutcome.FAILED, JobOutcome.DISMISSED):
            memo.clear()
        message = describe_failure(outcome, self.process_id)
        if outcome.outcome is JobOutcome.TIMEOUT:
            limits = [f"timeout {self.timeout:g}s"] if self.timeout else []
            if self.execution_timeout:
                limits.append(f"execution_timeout {self.execution_timeout.total_seconds():g}s")
            if limits:
                message = f"{message} ({'; '.join(limits)})"
        if outcome.fails_permanently:
            raise OGCJobFailedPermanentlyError(message)
        raise OGCJobFailedError(message)

    def _finish(self, context: Context, job_id: str, memo: Any) -> Any:
        with fail_permanent_errors(self.hook):
            results = self.hook.get_job_results(job_id)
        value = self._results_to_xcom(context, results)
        self._finished = True
        if memo:
            memo.clear()
        return value

    def _results_to_xcom(self, context: Context, results: Any) -> Any:
        import json

        from airflow_provider_ogc.stac import extract_stac

        with fail_permanent_errors(self.hook):
            stac = extract_stac(results, output=self.stac_output, read_json=self._read_json)
        if stac is not None:
            context["ti"].xcom_push(key=XCOM_ASSET_HREFS, value=stac.asset_hrefs)
            self._stac_items = stac.items
            self.log.info(stac.summary())
            self._emit_asset_events(context, stac.items)
            return stac.item_hrefs
        size = len(json.dumps(results, default=str))
        if size > self.max_result_bytes:
            raise AirflowFailException(
                f"The results of process {self.process_id!r} are {size} bytes, more than max_result_bytes "
                f"({self.max_result_bytes}); XCom is for references, so select fewer outputs, ask for "
                "references (outputs transmissionMode), or raise max_result_bytes"
            )
        self.log.info("Results (%d bytes) hold no STAC items; returning them as they are", size)
        return results

    def _emit_asset_events(self, context: Context, items: list[dict[str, Any]]) -> None:
        """
        Results as Airflow Assets: an event per result item on each ``AssetAlias`` outlet (the
        asset's URI is the item's href), and the items in the ``extra`` of each ``Asset`` outlet's
        event. Each item's ``extra``: its id, href, collection, datetime, bbox and data asset hrefs,
        and the job's ``job_id``, ``process_id`` and ``server`` (on Airflow 3.1, through an alias,
        the bbox and the asset hrefs are JSON text: 3.1 needs hashable extras there).
        """
        if not self.outlets:
            return
        import json

        from airflow.sdk import Asset, AssetAlias

        from airflow_provider_ogc._compat import FLAT_ALIAS_EXTRAS

        job = {"job_id": self._job_id, "process_id": self.process_id, "server": self.hook.base_url}
        extras: list[Any] = [{**item, **job} for item in items]
        events = context["outlet_events"]
        for outlet in self.outlets:
            if isinstance(outlet, AssetAlias):
                for extra in extras:
                    if FLAT_ALIAS_EXTRAS:
                        extra = {
                            k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in extra.items()
                        }
                    events[outlet].add(Asset(uri=extra["href"]), extra=extra)
                self.log.info("%d asset event(s) through alias %s", len(extras), outlet.name)
            elif isinstance(outlet, Asset):
                summary: Any = {"items": extras, **job}
                events[outlet].extra = summary

    def _read_json(self, href: str) -> Any:
        """Read a linked STAC document: s3:// with boto3, http(s) with the hook (credentials per origin)."""
        from airflow_provider_ogc.hooks._http import decode_json

        if href.startswith("s3://"):
            from airflow_provider_ogc.s3 import S3Reader

            return S3Reader(self.aws_conn_id).read_json(href)
        return decode_json(self.hook.request("GET", href))

    # ------------------------------------------------------------------ OpenLineage

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """The input STAC items, for the START event (nothing is fetched: no job exists yet)."""
        from airflow_provider_ogc.lineage import operator_lineage

        return operator_lineage(self.inputs, process_id=self.process_id)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """
        Inputs, result items and their data assets, and the remote job: read from this operator,
        on which the listener calls this right after ``execute``/``execute_complete``.
        """
        from airflow_provider_ogc.lineage import operator_lineage

        return operator_lineage(
            self.inputs,
            process_id=self.process_id,
            items=self._stac_items,
            job_id=self._job_id,
            # The hook has read its connection once a job exists; before that, do not look it up.
            server=self.hook.base_url if self._job_id else None,
        )

    def on_kill(self) -> None:
        """The task was killed on the worker: dismiss its job, best effort, never raising."""
        if not (self.dismiss_on_kill and self._job_id) or self._finished:
            return
        try:
            self.hook.dismiss_job(self._job_id)
            self.log.info("Dismissed job %s", self._job_id)
        except Exception as err:
            self.log.warning("Could not dismiss job %s: %s", self._job_id, err)
