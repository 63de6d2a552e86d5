"""A sensor for jobs submitted elsewhere: another task, another DAG, another system."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_ogc._compat import AirflowFailException, AirflowSensorTimeout
from airflow_provider_ogc.exceptions import describe_failure, fail_permanent_errors
from airflow_provider_ogc.links.ogc_processes import XCOM_JOB_URL, OGCJobLink, OGCJobResultsLink
from airflow_provider_ogc.operators.ogc_processes import XCOM_OGC_JOB
from airflow_provider_ogc.polling import DEFAULT_MAX_POLL_INTERVAL, task_poll_intervals

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_ogc.events import JobEvent
    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

__all__ = ["JobStatusSensor"]


class JobStatusSensor(BaseSensorOperator):
    """
    Wait until an OGC API - Processes job ends: succeed on ``successful``, fail on ``failed`` or
    ``dismissed`` (without retries: the job's outcome will not change).

    Works in ``poke`` and ``reschedule`` modes and, by default, deferred to the triggerer. The
    sensor does not own the job: it never dismisses it. Its return value (XCom) is the job's
    final statusInfo as plain JSON.

    :param job_id: the job to watch (templated), e.g. ``{{ ti.xcom_pull('submit', key='job_id') }}``.
    :param ogc_conn_id: the ``ogc_processes`` connection.
    :param deferrable: wait in the triggerer instead of poking from a worker.
    :param poll_interval: the shortest wait between polls in deferrable mode, in seconds (the
        trigger backs off from there as the wait grows; ``poke_interval`` paces the other modes).
    :param max_poll_interval: the longest wait between polls in deferrable mode, in seconds.
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#d6ecf3"
    operator_extra_links = (OGCJobLink(), OGCJobResultsLink())

    def __init__(
        self,
        *,
        job_id: str,
        ogc_conn_id: str = "ogc_processes_default",
        deferrable: bool = True,
        poll_interval: float = 1.0,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poll_interval, self.max_poll_interval = task_poll_intervals(poll_interval, max_poll_interval)
        self.job_id = job_id
        self.ogc_conn_id = ogc_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> OGCProcessesHook:
        from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

        return OGCProcessesHook(ogc_conn_id=self.ogc_conn_id)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        from airflow_provider_ogc.events import JobEvent
        from airflow_provider_ogc.models import JobStatus

        if not isinstance(self.job_id, str) or not self.job_id.strip():
            raise AirflowFailException(
                f"job_id must be a non-empty string, got {self.job_id!r} (did its template, e.g. an "
                "xcom_pull, render nothing?)"
            )
        with fail_permanent_errors(self.hook, job_id=self.job_id):
            info = self.hook.get_job_status(self.job_id)
        context["ti"].xcom_push(key=XCOM_JOB_URL, value=info.job_url)
        # For the OGC jobs page (airflow_provider_ogc.plugins): the job and the connection to read it with.
        context["ti"].xcom_push(
            key=XCOM_OGC_JOB,
            value={"job_id": self.job_id, "process_id": info.process_id, "ogc_conn_id": self.ogc_conn_id},
        )
        self.log.info(info.describe())
        if info.status in (JobStatus.FAILED, JobStatus.DISMISSED):
            self._fail(JobEvent.ended(info))
        if info.status is JobStatus.SUCCESSFUL:
            return PokeReturnValue(is_done=True, xcom_value=info.to_dict())
        return False

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)  # a job that has already ended needs no triggerer round trip
        if isinstance(done, PokeReturnValue):
            return done.xcom_value
        from airflow_provider_ogc.triggers.ogc_processes import OGCJobTrigger

        now = time.time()
        timeout = float(self.timeout) if self.timeout else None
        self.defer(
            trigger=OGCJobTrigger(
                job_id=self.job_id,
                ogc_conn_id=self.ogc_conn_id,
                submitted_at=now,
                deadline=now + timeout if timeout else None,
                min_poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                dismiss_on_timeout=False,
                dismiss_on_kill=False,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow_provider_ogc.events import JobEvent, JobOutcome

        outcome = JobEvent.from_payload(event)
        if outcome.succeeded:
            self.log.info("Job %s succeeded", outcome.job_id)
            return outcome.job
        if outcome.outcome is JobOutcome.TIMEOUT:
            raise AirflowSensorTimeout(f"Job {outcome.job_id} was still running when the sensor timed out")
        self._fail(outcome)

    @staticmethod
    def _fail(event: JobEvent) -> None:
        raise AirflowFailException(describe_failure(event, None))
