"""A task whose first try dies right after submitting its job: the retry must reattach, not resubmit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_ogc.operators import ExecuteProcessOperator


class CrashAfterSubmit(ExecuteProcessOperator):
    """Fails its first try between submission and waiting, as a worker killed at that moment would."""

    def _trigger(self, context: Any, job: dict[str, Any]) -> Any:
        if context["ti"].try_number == 1:
            raise RuntimeError(f"simulated worker crash after submitting job {job['job_id']}")
        return super()._trigger(context, job)


with DAG("ogc_retry_reattach", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    CrashAfterSubmit(
        task_id="submit",
        process_id="sleep",
        # Long enough that the trigger fires well after the executor reports the deferral (an Airflow
        # race, apache/airflow#67287, fails a task whose trigger fires before that report is processed).
        inputs={"seconds": 15},
        retries=1,
        retry_delay=timedelta(seconds=1),
        poll_interval=0.5,
        max_poll_interval=2,
    )
