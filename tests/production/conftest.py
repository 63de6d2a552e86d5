"""Fixtures for the production-shaped Airflow: PostgreSQL, Redis, the timed-jobs server and the stack.

One stack per test module (start-up about 30 s): api-server, scheduler, dag-processor, two
triggerers and two Celery workers, each its own process, CeleryExecutor on PostgreSQL 15 with a
Redis 7 broker, all on 127.0.0.1 with free ports, stopped by PID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ci import unavailable
from tests.system import services
from tests.system.airflow_stack import AirflowStack

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
DAGS = Path(__file__).parent / "dags"
# The worker-crash test: a try whose worker died is failed after this long without heartbeat.
HEARTBEAT_TIMEOUT = 20


class TimedJobsServer:
    """``tests/servers/timed_jobs.py`` in its own process, stopped by PID."""

    def __init__(self, workdir: Path) -> None:
        self.log_path = workdir / "timed_jobs.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.timed_jobs", "--port", "0"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"timed_jobs did not start: {line!r} {self.log_path.read_text()}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=30) as resp:
            stats: dict[str, Any] = json.loads(resp.read())
            return stats

    def jobs_tagged(self, prefix: str) -> dict[str, dict[str, Any]]:
        """The server's jobs whose tag starts with ``prefix``: job id -> record."""
        return {
            job_id: job
            for job_id, job in self.stats()["jobs"].items()
            if str(job.get("tag") or "").startswith(prefix)
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def timed_jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimedJobsServer]:
    server = TimedJobsServer(tmp_path_factory.mktemp("timed-jobs"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def prod_stack(
    tmp_path_factory: pytest.TempPathFactory, timed_jobs: TimedJobsServer
) -> Iterator[AirflowStack]:
    if not (BIN_DIR / "airflow").exists():
        unavailable(f"no airflow executable beside {sys.executable}")
    if missing := services.missing():
        unavailable(f"PostgreSQL 15 and Redis are needed (make system-packages): missing {missing}")
    try:
        import airflow.providers.celery  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as err:
        unavailable(f"the venv lacks the production extras (make .venv/.stamp): {err}")
    work = tmp_path_factory.mktemp("production")
    conn = {"conn_type": "ogc_processes", "host": timed_jobs.url, "extra": {"timeout": 10}}
    env = {
        "AIRFLOW_CONN_OGC_PROCESSES_DEFAULT": json.dumps(conn),
        "OGC_PROD_SCALE_JOBS": os.environ.get("OGC_PROD_SCALE_JOBS", "200"),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        # A triggerer silent for 10 s loses its triggers (the harness sets heartbeats to 1 s).
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
    }
    with (
        services.PostgresServer(work / "postgres").start() as pg,
        services.RedisServer(work / "redis").start() as redis,
        AirflowStack(
            work / "airflow-home",
            DAGS,
            BIN_DIR,
            env=env,
            parallelism=16,
            database_url=pg.sqlalchemy_url,
            broker_url=redis.url,
            triggerers=2,
            celery_workers=2,
            worker_concurrency=4,
        ).start() as stack,
    ):
        yield stack


@pytest.fixture
def stack(prod_stack: AirflowStack) -> Iterator[AirflowStack]:
    """The module's stack with every component running (a test may have killed or paused one)."""
    for name in prod_stack.component_names:
        if prod_stack.component_pid(name) is None:
            prod_stack.restart_component(name)
    yield prod_stack
    for name in prod_stack.component_names:
        if prod_stack.component_pid(name) is not None:
            prod_stack.resume_component(name)


def now() -> float:
    return time.time()
