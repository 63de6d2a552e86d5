"""DAGs for the reliability system tests: components and workers dying, users and timeouts cancelling.

Every job is a pygeoapi ``sleep`` that ends well after its task deferred (Airflow 3.3.2 can fail a
deferred task whose trigger fires within ~5 s of the deferral, apache/airflow#67287).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_ogc.operators import ExecuteProcessOperator

START = datetime(2026, 1, 1)
# Quick polls (poll_interval, max_poll_interval) so every status change shows in the logs within 2 s.
POLL, MAX_POLL = 0.5, 2.0

# The triggerer is killed while it watches this job, and restarted.
with DAG("reliability_triggerer_restart", schedule=None, start_date=START, catchup=False):
    ExecuteProcessOperator(
        task_id="sleep",
        process_id="sleep",
        inputs={"seconds": 30},
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
    )

# The worker is SIGKILLed right after submitting; the retry must reattach.  Killing the whole worker
# (task process and supervisor) leaves the try to the scheduler's heartbeat timeout (20 s in the test
# stack), so that job runs 40 s; a killed task process alone is reported by its supervisor at once.
for dag_id, seconds in (("reliability_worker_crash", 40), ("reliability_task_process_crash", 20)):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        ExecuteProcessOperator(
            task_id="sleep",
            process_id="sleep",
            inputs={"seconds": seconds},
            deferrable=False,
            retries=1,
            retry_delay=timedelta(seconds=1),
            poll_interval=POLL,
            max_poll_interval=MAX_POLL,
        )

# A user marks the running (polling on the worker) task failed: its on_kill dismisses the job.
with DAG("reliability_mark_failed_on_worker", schedule=None, start_date=START, catchup=False):
    ExecuteProcessOperator(
        task_id="sleep",
        process_id="sleep",
        inputs={"seconds": 300},
        deferrable=False,
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
    )

# execution_timeout fires while the job runs, in the triggerer and on the worker.
with DAG("reliability_execution_timeout", schedule=None, start_date=START, catchup=False):
    for deferrable in (True, False):
        ExecuteProcessOperator(
            task_id="deferred" if deferrable else "on_worker",
            process_id="sleep",
            inputs={"seconds": 300},
            deferrable=deferrable,
            execution_timeout=timedelta(seconds=25),
            poll_interval=POLL,
            max_poll_interval=MAX_POLL,
        )
