"""The one event contract between :class:`~airflow_provider_ogc.triggers.OGCJobTrigger` and the tasks.

The trigger yields a :class:`JobEvent` as a plain-JSON payload; the operator and the sensor read it
back with :meth:`JobEvent.from_payload`, which names what is wrong with a payload it cannot use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_provider_ogc.exceptions import OGCInvalidEventError
from airflow_provider_ogc.models import JobStatus, StatusInfo

__all__ = ["JobEvent", "JobOutcome"]


class JobOutcome(str, Enum):
    """How the watch of a job ended: one of the job's final statuses, or the watch's own end."""

    SUCCESSFUL = "successful"
    FAILED = "failed"
    DISMISSED = "dismissed"
    TIMEOUT = "timeout"  # the deadline passed before the job ended
    ERROR = "error"  # the job could not be watched (permanent error, or too many transient ones)


@dataclass(frozen=True)
class JobEvent:
    """
    The outcome of watching one job.

    :param outcome: how the watch ended.
    :param job_id: the job watched.
    :param message: the server's last message about the job, or why the watch ended.
    :param job: the job's final statusInfo as plain JSON, when the job ended.
    :param permanent: for an error: a task retry cannot fix it (a 4xx, an unusable answer).
    """

    outcome: JobOutcome
    job_id: str
    message: str | None = None
    job: dict[str, Any] | None = None
    permanent: bool = False

    @classmethod
    def ended(cls, info: StatusInfo) -> JobEvent:
        """The event of a job that reached a final status."""
        return cls(JobOutcome(info.status.value), info.job_id, info.message, job=info.to_dict())

    @property
    def succeeded(self) -> bool:
        return self.outcome is JobOutcome.SUCCESSFUL

    @property
    def fails_permanently(self) -> bool:
        """A task retry cannot help: someone dismissed the job, or a retry would meet the same error."""
        return self.outcome is JobOutcome.DISMISSED or (self.outcome is JobOutcome.ERROR and self.permanent)

    @property
    def status_info(self) -> StatusInfo | None:
        """The job's final statusInfo, if the event carries one."""
        return StatusInfo.from_plain(self.job) if self.job else None

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON for :class:`~airflow.triggers.base.TriggerEvent`."""
        return {
            "status": self.outcome.value,
            "job_id": self.job_id,
            "message": self.message,
            "job": self.job,
            "permanent": self.permanent,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> JobEvent:
        """
        Read an event back from its payload.

        :raises OGCInvalidEventError: naming what is missing or malformed.
        """
        if not isinstance(payload, dict):
            raise OGCInvalidEventError(
                f"The task resumed with an event of type {type(payload).__name__}, not a job event "
                f"(a JSON object with 'status' and 'job_id'): {payload!r:.200}"
            )
        problems = []
        status = payload.get("status")
        outcomes = ", ".join(o.value for o in JobOutcome)
        if status not in {o.value for o in JobOutcome}:
            problems.append(f"'status' is {status!r}, not one of {outcomes}")
        job_id = payload.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            problems.append(f"'job_id' is {job_id!r}, not a job id")
        message = payload.get("message")
        if message is not None and not isinstance(message, str):
            problems.append(f"'message' is a {type(message).__name__}, not text")
        job = payload.get("job")
        statuses = {s.value for s in JobStatus}
        if job is not None and (
            not isinstance(job, dict) or str(job.get("status", "")).lower() not in statuses
        ):
            problems.append("'job' is not a statusInfo (an object with a job status)")
        if problems:
            raise OGCInvalidEventError(
                f"The task resumed with a malformed job event: {'; '.join(problems)} "
                f"(event: {payload!r:.300})"
            )
        return cls(
            JobOutcome(status),
            str(job_id),
            message,
            job=job,
            permanent=bool(payload.get("permanent", False)),
        )
