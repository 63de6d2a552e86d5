"""Extra links shown on a task in the Airflow UI: the job's status and its results.

Airflow 3 resolves links on the worker when the task ends or defers, from the XComs the
operator pushed at submission, and stores the URLs for the UI; nothing here calls the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = ["OGCJobLink", "OGCJobResultsLink"]

XCOM_JOB_ID = "job_id"
XCOM_JOB_URL = "job_url"


def _job_url(operator: BaseOperator, ti_key: TaskInstanceKey) -> str | None:
    if getattr(operator, "_job_id", "") is None:
        return None  # this try failed before submitting: there is no job (and no XCom to look up)
    from airflow.sdk.execution_time.xcom import XCom

    value: Any = XCom.get_value(ti_key=ti_key, key=XCOM_JOB_URL)
    return value if isinstance(value, str) and value else None


class OGCJobLink(BaseOperatorLink):
    """ "OGC job": the job's status document (``/jobs/{jobId}``)."""

    name = "OGC job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return _job_url(operator, ti_key) or ""


class OGCJobResultsLink(BaseOperatorLink):
    """ "OGC results": the job's results document (``/jobs/{jobId}/results``)."""

    name = "OGC results"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = _job_url(operator, ti_key)
        return f"{url.split('?', 1)[0].rstrip('/')}/results" if url else ""
