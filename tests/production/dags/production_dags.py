"""DAGs for tests/production: CeleryExecutor on PostgreSQL, two Celery workers, two triggerers.

Every job runs on the ``timed_jobs`` server (``tests/servers/timed_jobs.py``): ``sleep`` jobs that
end after ``seconds`` and return ``{"slept": seconds, "tag": tag}``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_ogc.operators import ExecuteProcessOperator

START = datetime(2026, 1, 1)
POLL, MAX_POLL = 1.0, 5.0
SCALE_JOBS = int(os.environ.get("OGC_PROD_SCALE_JOBS", "200"))


def scale_seconds(i: int) -> int:
    """Job i's duration: 30 to 120 s, spread evenly (53 and 91 are coprime: every value occurs)."""
    return 30 + (i * 53) % 91


def sleep_job(task_id: str, seconds: int, tag: str, **kwargs) -> ExecuteProcessOperator:
    return ExecuteProcessOperator(
        task_id=task_id,
        process_id="sleep",
        inputs={"seconds": seconds, "tag": tag},
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
        **kwargs,
    )


# Item 2: the trigger moves from a paused triggerer to the other; the job must live on.
with DAG("prod_reassign", schedule=None, start_date=START, catchup=False):
    sleep_job("sleep", 60, "reassign")

# A user marks the deferred task failed: its job is dismissed (3.3).
with DAG("prod_mark_failed", schedule=None, start_date=START, catchup=False):
    sleep_job("sleep", 300, "mark-failed")

# Item 4: the Celery worker running the task is SIGKILLed after submission; the retry reattaches.
with DAG("prod_worker_crash", schedule=None, start_date=START, catchup=False):
    sleep_job("sleep", 40, "worker-crash", deferrable=False, retries=1, retry_delay=timedelta(seconds=1))

# Item 3: many jobs of 30-120 s; a triggerer is SIGKILLed midway.
with DAG("prod_scale", schedule=None, start_date=START, catchup=False, max_active_tasks=64):
    ExecuteProcessOperator.partial(
        task_id="sleep", process_id="sleep", poll_interval=POLL, max_poll_interval=MAX_POLL
    ).expand(inputs=[{"seconds": scale_seconds(i), "tag": f"scale-{i}"} for i in range(SCALE_JOBS)])
