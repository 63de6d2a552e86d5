"""The real-triggerer benchmark's DAG (``benchmarks/real_triggerer.py``): N deferred ``sleep`` jobs.

One run of one mapped ``ExecuteProcessOperator(deferrable=True)`` over N inputs, against the
timed-jobs server (``tests/servers/timed_jobs.py``, connection ``ogc_processes_default``): each
task submits a ``sleep`` job long enough (1 h) to stay ``running`` through the measurement, then
defers to ``OGCJobTrigger``. The benchmark copies this file into a dags folder of its own and sets
the parameters, read when the file is parsed (dag-processor and Celery workers alike), through the
environment of every component:

* ``OGC_BENCH_REAL_TASKS``: N, the number of mapped task instances (jobs, triggers);
* ``OGC_BENCH_REAL_JOB_SECONDS``: each job's duration on the server;
* ``OGC_BENCH_REAL_MIN_POLL`` / ``OGC_BENCH_REAL_MAX_POLL``: the operator's ``poll_interval`` (the
  floor) and ``max_poll_interval`` (the ceiling; 10 s, as the harness's ``--max-interval``).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_ogc.operators import ExecuteProcessOperator

DAG_ID = "bench_real_triggerer"
TASKS = int(os.environ.get("OGC_BENCH_REAL_TASKS", "20"))
JOB_SECONDS = float(os.environ.get("OGC_BENCH_REAL_JOB_SECONDS", "3600"))
MIN_POLL = float(os.environ.get("OGC_BENCH_REAL_MIN_POLL", "1"))
MAX_POLL = float(os.environ.get("OGC_BENCH_REAL_MAX_POLL", "10"))

with DAG(
    DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=max(TASKS, 16),
    max_active_runs=1,
):
    ExecuteProcessOperator.partial(
        task_id="job",
        process_id="sleep",
        deferrable=True,
        poll_interval=MIN_POLL,
        max_poll_interval=MAX_POLL,
    ).expand(inputs=[{"seconds": JOB_SECONDS, "tag": f"realtrig-{i}"} for i in range(TASKS)])
