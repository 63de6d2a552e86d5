"""Run real Airflow 3 components on 127.0.0.1 for system tests (stdlib only).

Usage::

    stack = AirflowStack(tmp / "home", dags_folder, Path(sys.executable).parent)
    with stack.start():
        run_id = stack.trigger_dag("my_dag", conf={"n": 1})
        assert stack.wait_for_run("my_dag", run_id, timeout=120) == "success"
        stack.xcom("my_dag", run_id, "my_task")

Each of ``airflow api-server | scheduler | dag-processor | triggerer`` runs as its own
process (own process group, own ``home/logs/<name>.log``), after ``airflow db migrate``,
so one component can be killed (``kill -9`` of the triggerer) and restarted.
``airflow standalone`` would start the same components, but inside one process tree.
Works unchanged with Airflow 3.1.0, 3.1.8 and 3.3.2 (start-up, migrate included: 8.5-10s
on 3.1, 10.5-12s on 3.3, on 2 cores).  REST API v2 for everything, the CLI only for ``db migrate``.

Production shape (``tests/production``): ``database_url`` (PostgreSQL, see ``services.py``),
``broker_url`` (Redis: CeleryExecutor, results in the metadata database), ``celery_workers=N``
(``airflow celery worker`` as ``celery-worker-1..N``, healthy once celery logs "ready."),
``triggerers=N`` (``triggerer-1..N``, started one after the other so each is known by its job id,
the ``trigger`` table's ``triggerer_id``: ``triggerer_job_id()``, ``trigger_assignments()``).
``pause_component``/``resume_component`` send SIGSTOP/SIGCONT to a component's tree; ``sql()``
reads the metadata database.  Needs ``psycopg2-binary`` and ``asyncpg`` (Airflow's async engine)
and the celery provider in the venv (the Makefile installs them).

Configuration (all env vars, see ``_airflow_config``; AIRFLOW__* of the calling process are
dropped, ``env`` is applied last):

* Executor: ``LocalExecutor`` (the default) with SQLite works on 3.1-3.3: Airflow 3 has no
  SQLite/executor check any more (SequentialExecutor is gone; ``airflow standalone``
  itself uses LocalExecutor on SQLite).  ``AIRFLOW__CORE__PARALLELISM`` small (4).
  The database is switched to WAL so readers do not block the writer.
* ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:////abs/home/airflow.db``,
  ``AIRFLOW__CORE__LOAD_EXAMPLES=False``, ``AIRFLOW__CORE__DAGS_FOLDER``, a generated
  ``AIRFLOW__CORE__FERNET_KEY`` and ``AIRFLOW__API_AUTH__JWT_SECRET``: the scheduler signs
  the task JWTs the api-server checks, so every component must share the secret (a
  fresh home also gets one written into airflow.cfg by ``db migrate``; the env var
  makes it explicit).
* api-server: ``AIRFLOW__API__HOST=127.0.0.1``, ``AIRFLOW__API__PORT=<free port>``,
  ``AIRFLOW__API__BASE_URL``, ``AIRFLOW__API__WORKERS=1`` (also passed as CLI flags), and
  ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:<port>/execution/`` so the
  task supervisors reach the Execution API on that port.
* Auth: ``AIRFLOW__CORE__AUTH_MANAGER=...simple.simple_auth_manager.SimpleAuthManager`` with
  ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True``; ``GET /auth/token`` (no
  credentials) then returns an admin JWT on 3.1 and 3.3, sent as ``Authorization: Bearer``.
  (3.3 also injects the header itself via a middleware; 3.1 does not.)
* Speed: ``[scheduler] scheduler_heartbeat_sec=1``, ``scheduler_idle_sleep_time=0.5``;
  ``[dag_processor] refresh_interval=2`` (new files seen in 2s, default 300),
  ``min_file_process_interval=10``, ``parsing_processes=1``; ``[triggerer]
  job_heartbeat_sec=1``, ``triggerer_health_check_threshold=10`` (default 30: how long a
  killed triggerer's triggers wait before another triggerer adopts them);
  ``[scheduler] task_instance_heartbeat_timeout=60`` (default 300).
* Health: ``GET /api/v2/monitor/health`` (no auth) reports the latest scheduler,
  triggerer and dag-processor heartbeats; a component counts as up when its heartbeat is
  newer than its own start (after a kill -9 the old job still looks healthy for a while).

Gotchas:

* ``bin_dir`` must lead PATH (and VIRTUAL_ENV is set): components re-exec ``airflow``/python.
* scheduler and triggerer start with ``--skip-serve-logs`` (else each binds the fixed
  ports 8793/8794; those are set to free ports anyway); the api-server reads task logs
  from the shared ``home/logs``.
* Stopping: SIGTERM to the main process only (signalling the whole group makes
  supervisors wait for children that are already dead), a second SIGTERM after 2s
  ("signal again if you don't want to wait": the scheduler waits for running task
  supervisors; the 3.1 triggerer waits 10s for its runner subprocess), then SIGKILL to
  the group.  3.3 puts each task process in its own process group, so descendants are
  also collected from /proc and killed.
* A task supervisor lingers ~5s after its task finished (observed in the scheduler log's
  "Workload finished ... duration"); it holds a parallelism slot meanwhile.
* ``TimeDeltaSensor(deferrable=True)`` counts from the run's ``run_after``: a task that
  starts after that moment succeeds without deferring.  It defers to
  ``airflow.providers.standard.triggers.temporal.DateTimeTrigger``.
* 3.1.0: set ``[api_auth] jwt_issuer`` (done here), else with current PyJWT every request
  fails with "Issuer (iss) must be a string".  And ``pip install apache-airflow==3.1.0``
  without Airflow's constraints resolves cadwyn 9 / fastapi 0.165 / starlette 1.10, with
  which the Execution API answers 422 to ``PATCH /execution/task-instances/{id}/run``:
  every task fails before it starts.  cadwyn 5.4.6, fastapi 0.117.1, starlette 0.48.0
  (what 3.1.8 resolves) work.
* Trigger logs: the triggerer writes ``<task log>.trigger.<triggerer job id>.log``
  beside the task log (``trigger_logs()``); the REST log endpoint merges them into the
  task log.  The triggerer's own stdout shows nothing per trigger.

Airflow facts for the provider (read in /tmp/v/af = 3.3.2, /tmp/v/af31 = 3.1.8,
site-packages/airflow/...; checked with this harness where noted):

1. Trigger ``on_kill`` (3.3; ``triggers/base.py`` ``BaseTrigger.on_kill``, async, default
   no-op; ``[triggerer] on_kill_timeout`` 30s, version_added 3.3.0).  Called by
   ``TriggerRunner.run_trigger`` (``jobs/triggerer_job_runner.py``) when the trigger's
   asyncio task is cancelled with the ``_USER_ACTION_CANCEL_MSG`` message, i.e. when the
   trigger disappears from the set assigned to this triggerer (``update_triggers`` ->
   ``cancelling_triggers`` -> ``TriggerStateSync.to_cancel`` -> ``cancel_triggers``):
   the user marked the deferred TI failed/success or cleared it (``Trigger.clean_unused``
   deletes triggers no deferred TI uses).  Checked: mark-failed via REST logs "Trigger
   cancelled by user action, invoking on_kill" ~2s later.  Not called on triggerer
   shutdown/SIGTERM (tasks cancelled without the message), kill -9, trigger timeout
   (checked first, raises without on_kill), or when the trigger fires.  Then
   ``cleanup()`` runs (always, as on 3.1).  Exceptions and timeouts are logged only.
   Caveat from the code: a trigger re-assigned away from a still-running triggerer
   (its heartbeat went stale, e.g. blocked event loop) is cancelled through the same
   path, so on_kill can run there although another triggerer now watches the job.
   3.1 has no ``BaseTrigger.on_kill``: the trigger just gets ``CancelledError`` +
   ``cleanup()``, indistinguishable from a triggerer shutdown (3.2 not checked; the
   on_kill_timeout option says 3.3.0).
2. ``task_state_store`` / ``ResumableJobMixin`` (3.3, AIP-103; migration
   ``0112_3_3_0_add_task_state_store_and_asset_state_store_tables``).
   ``context["task_state_store"]`` is a ``TaskStateStoreAccessor``
   (``sdk/execution_time/context.py``) scoped to (dag_id, run_id, task_id, map_index),
   not to the try: ``get(key, default=None)``, ``set(key, json_value, *,
   retention=None|timedelta|NEVER_EXPIRE)`` (``from airflow.sdk.execution_time.context
   import NEVER_EXPIRE``), ``delete(key)``, ``clear()``; values JSON, not None.  Kept
   after success unless ``[state_store] clear_on_success``; expiry
   ``[state_store] default_retention_days`` (30).  ``from airflow.sdk import
   ResumableJobMixin`` (``sdk/bases/resumablejobmixin.py``): ``execute()`` returns
   ``self.execute_resumable(context)``; implement ``submit_job`` (returns the external id,
   stored under ``external_id_key``, default "remote_job_id", before polling),
   ``get_job_status``, ``is_job_active``, ``is_job_succeeded``, ``poll_until_complete``,
   ``get_job_result``; on a retry it reconnects to an active job, returns the result of a
   succeeded one, resubmits after a failed one; ``durable=False`` disables it.  Checked:
   a value ``set`` in try 1 is returned by ``get`` in try 2.  On 3.1/3.2 there is no
   store: the XComs of a TI are deleted when a new try starts (``xcom_keys_to_clear`` in
   ``api_fastapi/execution_api/routes/task_instances.py``; kept only when resuming from a
   deferral) and ``next_kwargs`` are reset on retry (checked: try 2 sees no XCom of try 1).
   ``airflow.providers.common.compat.sdk.ResumableJobMixin`` (common-compat 1.23) gives
   the SDK class on 3.3 and a stand-in that submits a new job every try below 3.3
   (``providers/common/compat/_resumable_job_mixin.py``).  Within one try, an id pushed to
   XCom before ``defer()`` survives until the resume.  Triggers get no task_state_store
   (only event triggers get ``asset_state_store``): a deferrable operator stores the id
   before ``defer()`` and, on a retry, reads it and defers again on the same job.
3. Extra links: ``get_link(operator, *, ti_key)`` of an operator's
   ``operator_extra_links`` runs in the task process, in ``finalize()``
   (``sdk/execution_time/task_runner.py``) after every execution of the task, deferral
   included; the result is pushed as XCom ``_link_<ClassName>`` (``xcom_key``) and the
   api-server only reads that XCom (``XComOperatorLink``: 3.3
   ``serialization/definitions/operatorlink.py``, 3.1 ``serialization/serialized_objects.py``;
   only plugin-registered *global* links run ``get_link`` in the api-server, where the
   XCom import below cannot work).
   ``ti_key`` is the ``RuntimeTaskInstance``.  Read an XCom there with
   ``from airflow.sdk.execution_time.xcom import XCom`` then
   ``XCom.get_value(ti_key=ti_key, key="job_id")`` (a ``BaseXCom`` classmethod, through
   the supervisor; same path and signature in 3.1.8 and 3.3.2; the provider-neutral
   ``from airflow.providers.common.compat.sdk import XCom`` resolves to it).  Base class:
   ``from airflow.sdk import BaseOperatorLink`` (both).  Checked on 3.1.8 and 3.3.2: the
   link is in ``GET .../taskInstances/{task_id}/links`` while the task is deferred, and
   ``get_link`` ran twice (at defer and at success).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
CELERY_WORKER_READY = " ready."  # celery's "celery@<name> ready." line in the worker's log

# name in /api/v2/monitor/health -> component
_HEALTH_KEYS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}

# Seconds between the first SIGTERM and SIGKILL.  Stopping the stack does not wait long: the
# scheduler would wait for running task supervisors, the triggerer for its runner subprocess.
STOP_GRACE = 5.0
RESTART_GRACE = 10.0
SECOND_TERM_AFTER = 2.0  # seconds after the first SIGTERM to send the second one
START_TIMEOUT = 180.0  # seconds for all components to report healthy
HTTP_TIMEOUT = 30.0
TERMINAL_RUN_STATES = ("success", "failed")

# Stacks started by this process, stopped at interpreter exit as a safety net.
_LIVE: set[AirflowStack] = set()


@atexit.register
def _stop_all() -> None:
    for stack in list(_LIVE):
        stack.stop()


class AirflowStackError(RuntimeError):
    """The stack misbehaved; the message carries the tails of the component logs."""


class _Transient(Exception):
    """A REST call failed in a way worth retrying while polling (connection refused, 5xx)."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): guards against PID reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _descendants(root_pids: Iterable[int]) -> dict[int, str]:
    """All live descendants of ``root_pids`` (Linux /proc; empty elsewhere), pid -> start time."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(root_pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and (start := _proc_start_time(child)) is not None:
                found[child] = start
                todo.append(child)
    return found


def _cmdline(pid: int) -> str | None:
    """The process's command line as one string (its ``setproctitle`` title, for Airflow's processes)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class _Component:
    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.started_at = datetime.min.replace(tzinfo=timezone.utc)
        self.expected_down = True  # stopped or killed on purpose
        self.log_offset = 0  # size of the log when this process started (its own lines follow)
        self.job_floor = 0  # a triggerer: highest triggerer job id before this process started
        self.job_id: int | None = None  # a triggerer: its row in the ``job`` table, once seen

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def running_pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


class AirflowStack:
    """Real Airflow 3 components, each its own process group, on a free 127.0.0.1 port.

    ``home`` becomes AIRFLOW_HOME (SQLite database ``home/airflow.db``, logs in
    ``home/logs``, one ``<component>.log`` per component); ``bin_dir`` is the bin
    directory of the virtualenv that has Airflow (put first on PATH).  ``env`` is
    applied last, so it can override any setting (``AIRFLOW__SECTION__KEY``) or add
    connections (``AIRFLOW_CONN_*``) and ``PYTHONPATH`` for the DAG files.
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        bin_dir: Path,
        env: Mapping[str, str] | None = None,
        parallelism: int = 4,
        *,
        database_url: str | None = None,
        broker_url: str | None = None,
        triggerers: int = 1,
        celery_workers: int = 0,
        worker_concurrency: int = 4,
    ) -> None:
        self.home = Path(home).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        self.bin_dir = Path(bin_dir).resolve()
        self.parallelism = parallelism
        self.database_url = database_url or f"sqlite:///{self.home / 'airflow.db'}"
        self.broker_url = broker_url
        if celery_workers and not broker_url:
            raise ValueError("celery_workers need a broker_url (redis://...)")
        if broker_url and database_url is None:
            raise ValueError("the CeleryExecutor needs a database_url other than SQLite")
        self.triggerers = triggerers
        self.celery_workers = celery_workers
        self.worker_concurrency = worker_concurrency
        self._db: Any = None
        self.logs_dir = self.home / "logs"
        self._extra_env = dict(env or {})
        self._fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self._jwt_secret = secrets.token_urlsafe(32)
        self._api_secret = secrets.token_urlsafe(32)
        self.port = free_port()
        self.env = self._build_env()
        self._components: dict[str, _Component] = {}
        self._strays: dict[int, str] = {}  # pid -> start time, signalled but maybe alive: killed by stop()
        self._token: str | None = None
        self.startup_seconds: float | None = None
        self._version: tuple[int, ...] | None = None

    # --- configuration -------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def executor(self) -> str:
        return "CeleryExecutor" if self.broker_url else "LocalExecutor"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def triggerer_names(self) -> list[str]:
        """``["triggerer"]``, or ``["triggerer-1", "triggerer-2", ...]`` with several triggerers."""
        if self.triggerers == 1:
            return ["triggerer"]
        return [f"triggerer-{i}" for i in range(1, self.triggerers + 1)]

    @property
    def worker_names(self) -> list[str]:
        return [f"celery-worker-{i}" for i in range(1, self.celery_workers + 1)]

    @property
    def component_names(self) -> list[str]:
        """Every component this stack starts by default, in start order."""
        return ["api-server", "scheduler", "dag-processor", *self.triggerer_names, *self.worker_names]

    def _airflow_config(self) -> dict[str, str]:
        config = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": self._fernet_key,
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": self._api_secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            # 3.1.0 with PyJWT >= 2.10 fails every token ("Issuer (iss) must be a string") without it.
            "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow-stack",
            # Scheduler: heartbeat every second; notice dead task supervisors in 60s, not 300s.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "5",
            # DAG processor: list the folder every 2s, re-parse a file at most every 10s, one parser.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
            # Triggerer: heartbeat every second; a triggerer silent for 10s is dead and its
            # triggers go to another (or a restarted) triggerer.
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            # Components are started with --skip-serve-logs; the log-server ports are still
            # made unique so nothing can collide with another stack on this machine.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
        }
        if self.broker_url:
            config.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                    # Results (task states) in the metadata database, as most deployments do.
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.database_url,
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                    "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                }
            )
        return config

    def _build_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AIRFLOW__") and k not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG", "PYTHONHOME")
        }
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", os.defpath)])
        env["VIRTUAL_ENV"] = str(self.bin_dir.parent)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self._airflow_config())
        env.update(self._extra_env)
        return env

    def _argv(self, name: str) -> list[str]:
        airflow = str(self.bin_dir / "airflow")
        return {
            "api-server": [
                airflow,
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
        }.get(name) or self._scaled_argv(name)

    def _scaled_argv(self, name: str) -> list[str]:
        airflow = str(self.bin_dir / "airflow")
        if name in self.triggerer_names:
            return [airflow, "triggerer", "--skip-serve-logs"]
        if name in self.worker_names:
            return [
                airflow,
                "celery",
                "worker",
                "--concurrency",
                str(self.worker_concurrency),
                "--celery-hostname",
                f"{name}@%h",
                "--pid",
                str(self.home / f"{name}.pid"),
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
        raise KeyError(name)

    # --- lifecycle -----------------------------------------------------------

    def start(self, components: Iterable[str] | None = None) -> AirflowStack:
        """Migrate the database, start ``components`` (default: all) and wait until all are healthy."""
        names = list(self.component_names if components is None else components)
        unknown = set(names) - set(self.component_names)
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}; choose from {self.component_names}")
        if not (self.bin_dir / "airflow").exists():
            raise FileNotFoundError(
                f"{self.bin_dir / 'airflow'} missing: bin_dir must be a venv with Airflow"
            )
        began = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        _LIVE.add(self)
        try:
            self._start(names)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _start(self, names: list[str]) -> None:
        migrate = self.airflow("db", "migrate", check=False, timeout=300)
        (self.logs_dir / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
        if migrate.returncode != 0:
            raise AirflowStackError(
                f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}"
            )
        if self.is_sqlite:
            self._enable_wal()
        # Several triggerers start one after the other: each is then known by its job id (the
        # ``trigger`` table's ``triggerer_id``), the first new TriggererJob row after its start.
        first = [n for n in names if not (self.triggerers > 1 and n in self.triggerer_names)]
        then = [n for n in names if n not in first]
        for attempt in range(3):
            for name in first:
                self._spawn(name)
            try:
                self._wait_healthy(first, START_TIMEOUT)
                for name in then:
                    self._spawn(name)
                    self._wait_healthy([name], START_TIMEOUT)
                break
            except AirflowStackError:
                api = self._components.get("api-server")
                in_use = api is not None and "address already in use" in _tail(api.log_path, 50).lower()
                if not in_use or attempt == 2:
                    raise
                self.stop()
                _LIVE.add(self)
                self.port = free_port()  # another process took our port: all components need the new one
                self.env = self._build_env()

    def _enable_wal(self) -> None:
        """WAL lets the components read while one of them writes: far fewer 'database is locked'."""
        with contextlib.closing(sqlite3.connect(self.home / "airflow.db")) as db:
            db.execute("PRAGMA journal_mode=WAL")

    def _spawn(self, name: str) -> None:
        comp = self._components.get(name)
        if comp is None:
            comp = self._components[name] = _Component(name, [], self.logs_dir / f"{name}.log")
        if comp.running_pid is not None:
            raise AirflowStackError(f"{name} is already running (pid {comp.running_pid})")
        comp.argv = self._argv(name)
        if comp.log is not None:
            comp.log.close()
        comp.log = open(comp.log_path, "ab")  # noqa: SIM115 - closed in _reap
        comp.log_offset = comp.log.tell()
        if name in self.triggerer_names and self.triggerers > 1:
            comp.job_id = None
            comp.job_floor = max((row[0] for row in self._triggerer_jobs()), default=0)
        comp.log.write(f"\n===== {datetime.now(timezone.utc).isoformat()} starting {comp.argv}\n".encode())
        comp.log.flush()
        comp.started_at = datetime.now(timezone.utc)
        comp.proc = subprocess.Popen(
            comp.argv,
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=comp.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: killpg reaches its children too
        )
        comp.expected_down = False

    @staticmethod
    def _signal_group(comp: _Component, sig: int) -> None:
        """Signal the component's process group, only while its leader is not yet reaped.

        An unreaped leader keeps its PID, hence the group id, from being reused, so this
        never reaches another program's processes.
        """
        if comp.proc is not None and comp.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(comp.proc.pid, sig)

    @staticmethod
    def _signal_strays(strays: Mapping[int, str], sig: int) -> None:
        for pid, start in strays.items():
            if _proc_start_time(pid) == start:  # still the same process, not a reused PID
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def _reap(self, comp: _Component, timeout: float) -> None:
        if comp.proc is not None:
            try:
                comp.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(comp, signal.SIGKILL)
                comp.proc.wait(10)
        if comp.log is not None:
            comp.log.close()
            comp.log = None

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop every component (see :meth:`_shut_down`) and SIGKILL what is left of them. Idempotent."""
        self._shut_down(list(self._components.values()), grace)
        self._signal_strays(self._strays, signal.SIGKILL)
        self._strays.clear()
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        _LIVE.discard(self)

    def _shut_down(self, comps: list[_Component], grace: float) -> None:
        """SIGTERM the main processes, again after SECOND_TERM_AFTER; after ``grace`` SIGKILL the rest.

        SIGTERM goes to the main process only, as a container runtime does: signalling the
        whole group makes the supervisors wait for children that already died.  The second
        SIGTERM is Airflow's "signal again if you don't want to wait": the scheduler stops
        waiting for running tasks, and the 3.1 triggerer stops waiting 10s for its runner
        subprocess, which ignores the first request there.  Whatever of the process trees
        (snapshotted first) is still alive after ``grace`` gets SIGKILL.
        """
        trees = {}
        for comp in comps:
            comp.expected_down = True
            if (pid := comp.running_pid) is not None:
                trees.update(_descendants([pid]))
                self._signal_group(comp, signal.SIGCONT)  # a paused (SIGSTOP) component cannot stop
                self._signal_strays(_descendants([pid]), signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
        began = time.monotonic()
        resent = False
        while any(c.alive for c in comps) and time.monotonic() - began < grace:
            if not resent and time.monotonic() - began > SECOND_TERM_AFTER:
                resent = True
                for comp in comps:
                    if (pid := comp.running_pid) is not None:
                        os.kill(pid, signal.SIGTERM)
            time.sleep(0.05)
        for comp in comps:
            self._signal_group(comp, signal.SIGKILL)
            self._reap(comp, 10)
        self._signal_strays(trees, signal.SIGKILL)

    def kill_component(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the component's whole process tree, as when its container dies.

        The tree is the component's process group plus every descendant (Airflow 3.3
        puts each task process in a group of its own).  Waits for the main process to
        exit when ``sig`` is SIGKILL.
        """
        comp = self._component(name)
        if (pid := comp.running_pid) is None:
            return
        comp.expected_down = True
        tree = _descendants([pid])
        self._signal_group(comp, sig)
        self._signal_strays(tree, sig)
        if sig == signal.SIGKILL:
            self._reap(comp, 10)
        else:
            self._strays.update(tree)  # for stop()

    def pause_component(self, name: str) -> None:
        """SIGSTOP the component's process tree: it stays alive but does nothing (no heartbeat)."""
        comp = self._component(name)
        if (pid := comp.running_pid) is None:
            raise AirflowStackError(f"{name} is not running")
        tree = _descendants([pid])
        self._signal_group(comp, signal.SIGSTOP)
        self._signal_strays(tree, signal.SIGSTOP)

    def resume_component(self, name: str) -> None:
        """SIGCONT the component's process tree after :meth:`pause_component`."""
        comp = self._component(name)
        if (pid := comp.running_pid) is None:
            raise AirflowStackError(f"{name} is not running")
        self._signal_group(comp, signal.SIGCONT)
        self._signal_strays(_descendants([pid]), signal.SIGCONT)

    def component_pid(self, name: str) -> int | None:
        return self._component(name).running_pid

    def task_processes(self, ti_id: str) -> dict[str, int]:
        """The live processes running task instance ``ti_id`` (the ``id`` of the REST task instance).

        Returns ``{"task": pid}`` for the task process, which runs the operator (titled
        ``airflow worker -- <ti id>`` by the task runner, 3.1 and 3.3), plus ``"supervisor": pid``
        for its parent, the LocalExecutor worker that supervises it, heartbeats for it and
        reports its end (titled ``airflow worker -- LocalExecutor: ...``).  Empty while no such
        process runs.  Only descendants of this stack's scheduler are searched.
        """
        return {k: v for k, v in self.task_processes_in(ti_id).items() if k != "component"}

    def task_processes_in(self, ti_id: str) -> dict[str, Any]:
        """:meth:`task_processes` plus ``"component"``: which component runs them (the scheduler
        with the LocalExecutor, ``celery-worker-N`` with Celery, where the supervisor is a
        process of the worker's pool)."""
        for name in ("scheduler", *self.worker_names):
            comp = self._components.get(name)
            if comp is None or (root := comp.running_pid) is None:
                continue
            tree = _descendants([root])
            found: dict[str, Any] = {}
            for pid in tree:
                if _cmdline(pid) == f"airflow worker -- {ti_id}":
                    found["task"] = pid
                    parent = _parent_pid(pid)
                    if parent is not None and parent in tree:
                        found["supervisor"] = parent
            if found:
                found["component"] = name
                return found
        return {}

    def kill_process(self, pid: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one process of this stack (a descendant of a component), e.g. a task process.

        Refuses any other PID, so a test can only ever kill what this stack started.
        """
        roots = [pid_ for c in self._components.values() if (pid_ := c.running_pid) is not None]
        tree = _descendants(roots)
        if pid not in tree:
            raise AirflowStackError(f"pid {pid} is not a process of this stack")
        if _proc_start_time(pid) == tree[pid]:  # still the same process, not a reused PID
            os.kill(pid, sig)

    def restart_component(self, name: str, grace: float = RESTART_GRACE) -> None:
        """Stop the component if it runs (SIGTERM, SIGKILL after ``grace``), start it again, wait until healthy."""
        comp = self._component(name)
        self._shut_down([comp], grace)
        self._spawn(name)
        self._wait_healthy([name], START_TIMEOUT)

    def _component(self, name: str) -> _Component:
        if name not in self._components:
            raise KeyError(f"{name} was never started; started: {sorted(self._components)}")
        return self._components[name]

    def __enter__(self) -> AirflowStack:
        return self if self._components else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- health --------------------------------------------------------------

    def _check_alive(self, names: Iterable[str] | None = None) -> None:
        """Raise if a component we did not stop on purpose has exited."""
        for comp in self._components.values():
            if (names is None or comp.name in names) and not comp.expected_down and not comp.alive:
                code = comp.proc.returncode if comp.proc is not None else None
                raise AirflowStackError(
                    f"{comp.name} exited unexpectedly (code {code})\n{self.logs_tail(names=[comp.name])}"
                )

    def _wait_healthy(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        health: Any = None
        while pending:
            self._check_alive(pending)
            try:
                health = self._request("GET", "/api/v2/monitor/health", auth=False, timeout=5)
            except _Transient:
                health = None
            if health is not None:
                pending = [n for n in pending if not self._healthy(n, health)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise AirflowStackError(
                    f"{pending} not healthy after {timeout:.0f}s; last health {health}\n{self.logs_tail()}"
                )
            time.sleep(0.25)

    def _healthy(self, name: str, health: dict[str, Any]) -> bool:
        if name == "api-server":
            return True  # it answered
        comp = self._components[name]
        if name in self.worker_names:
            with contextlib.suppress(OSError), open(comp.log_path, "rb") as log:
                log.seek(comp.log_offset)
                return CELERY_WORKER_READY in log.read().decode(errors="replace")
            return False
        if self.triggerers > 1 and name in self.triggerer_names:
            for job_id, beat in self._triggerer_jobs():
                if job_id > comp.job_floor and beat is not None and beat > comp.started_at:
                    comp.job_id = job_id
                    return True
            return False
        key = _HEALTH_KEYS[name]
        entry = health.get(key) or {}
        beat = _parse_time(entry.get(f"latest_{key}_heartbeat"))
        # A heartbeat newer than our start: this process, not one we killed earlier.
        return (
            entry.get("status") == "healthy" and beat is not None and beat > self._components[name].started_at
        )

    @property
    def airflow_version(self) -> tuple[int, ...]:
        """Version of apache-airflow in ``bin_dir``'s venv, e.g. ``(3, 3, 2)``."""
        if self._version is None:
            out = subprocess.run(
                [
                    str(self.bin_dir / "python"),
                    "-c",
                    "from importlib.metadata import version as v; print(v('apache-airflow'))",
                ],
                env=self.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            self._version = tuple(int(p) for p in out.split(".")[:3] if p.isdigit())
        return self._version

    # --- metadata database ---------------------------------------------------

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read query on the metadata database (``?`` placeholders); returns the rows."""
        if self.is_sqlite:
            with contextlib.closing(sqlite3.connect(self.database_url.split("sqlite:///", 1)[1])) as db:
                return list(db.execute(query, params).fetchall())
        import psycopg2  # in the Airflow venv with the production extras (Makefile)

        for attempt in (1, 2):
            if self._db is None:
                self._db = psycopg2.connect(self.database_url.replace("+psycopg2", ""))
                self._db.autocommit = True
            try:
                with self._db.cursor() as cur:
                    cur.execute(query.replace("?", "%s"), params)
                    return list(cur.fetchall())
            except psycopg2.OperationalError:
                self._db = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _triggerer_jobs(self) -> list[tuple[int, datetime | None]]:
        rows = self.sql("SELECT id, latest_heartbeat FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
        result = []
        for job_id, beat in rows:
            parsed = _parse_time(beat) if isinstance(beat, str) else beat
            if parsed is not None and parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            result.append((int(job_id), parsed))
        return result

    def triggerer_job_id(self, name: str) -> int | None:
        """The job id (``trigger.triggerer_id``) of triggerer ``name`` (with several triggerers)."""
        return self._component(name).job_id

    def triggerer_by_job_id(self) -> dict[int, str]:
        return {c.job_id: c.name for c in self._components.values() if c.job_id is not None}

    def trigger_assignments(
        self, dag_id: str | None = None, run_id: str | None = None
    ) -> dict[str, str | None]:
        """Deferred task instance (``task_id`` or ``task_id[map_index]``) -> the triggerer running its trigger.

        The triggerer is the component name, ``None`` while unassigned, or ``"job <id>"`` for a
        triggerer job this stack does not know (e.g. one that was killed and restarted).
        """
        query = (
            "SELECT ti.task_id, ti.map_index, t.triggerer_id FROM task_instance ti "
            "JOIN trigger t ON t.id = ti.trigger_id WHERE ti.state = 'deferred'"
        )
        params: list[Any] = []
        if dag_id is not None:
            query += " AND ti.dag_id = ?"
            params.append(dag_id)
        if run_id is not None:
            query += " AND ti.run_id = ?"
            params.append(run_id)
        names = self.triggerer_by_job_id()
        return {
            (task_id if map_index < 0 else f"{task_id}[{map_index}]"): (
                None if triggerer is None else names.get(int(triggerer), f"job {triggerer}")
            )
            for task_id, map_index, triggerer in self.sql(query, tuple(params))
        }

    # --- REST API ------------------------------------------------------------

    def _get_token(self) -> str:
        # simple_auth_manager_all_admins: GET /auth/token hands out an admin JWT without credentials.
        body = self._request("GET", "/auth/token", auth=False)
        token: str = body["access_token"]
        return token

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        timeout: float = HTTP_TIMEOUT,
    ) -> Any:
        url = self.api_url + path
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            if auth:
                if self._token is None:
                    self._token = self._get_token()
                headers["Authorization"] = f"Bearer {self._token}"
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    raw = resp.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as err:
                detail = err.read().decode(errors="replace")
                if err.code == 401 and auth and attempt == 1:
                    self._token = None  # expired, or the api-server restarted: fetch a new one
                    continue
                if err.code >= 500:
                    raise _Transient(f"{method} {path}: HTTP {err.code} {detail}") from err
                raise ApiError(method, path, err.code, detail) from err
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                raise _Transient(f"{method} {path}: {err}") from err
        raise AssertionError("unreachable")

    def api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """Call the REST API (``path`` below ``/api/v2``) with an admin token; returns the JSON body."""
        return self._request(method, "/api/v2" + path, body, params=params)

    def wait_until(self, what: str, timeout: float, probe: Callable[[], Any], interval: float = 0.5) -> Any:
        """Call ``probe()`` until it returns something other than None (or another falsy value); return it.

        Transient API errors are retried; a component that died unexpectedly, or the
        timeout, raises :class:`AirflowStackError` with the tails of the component logs.
        """
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            self._check_alive()
            try:
                result = probe()
                if result:
                    return result
            except _Transient as err:
                last = err
            if time.monotonic() > deadline:
                raise AirflowStackError(
                    f"timed out after {timeout:.0f}s waiting for {what}"
                    + (f" (last error: {last})" if last else "")
                    + f"\n{self.logs_tail()}"
                )
            time.sleep(interval)

    # --- DAGs and runs -------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fail fast on an import error."""

        def probe() -> dict[str, Any] | None:
            try:
                dag: dict[str, Any] = self.api("GET", f"/dags/{_q(dag_id)}")
                return dag
            except ApiError as err:
                if err.status != 404:
                    raise
            errors = self.api("GET", "/importErrors", limit=100).get("import_errors", [])
            if errors:
                text = "\n".join(f"{e.get('filename')}: {e.get('stack_trace')}" for e in errors)
                raise AirflowStackError(f"DAG {dag_id} not loaded; import errors:\n{text}")
            return None

        result: dict[str, Any] = self.wait_until(f"DAG {dag_id} to be parsed", timeout, probe)
        return result

    def trigger_dag(
        self,
        dag_id: str,
        conf: Mapping[str, Any] | None = None,
        logical_date: datetime | str | None = None,
        *,
        parse_timeout: float = 60.0,
    ) -> str:
        """Wait for the DAG to be parsed, unpause it, create a run; returns its run_id."""
        self.unpause(dag_id, parse_timeout)
        if isinstance(logical_date, datetime):
            if logical_date.tzinfo is None:
                logical_date = logical_date.replace(tzinfo=timezone.utc)
            logical_date = logical_date.isoformat()
        run = self.api(
            "POST", f"/dags/{_q(dag_id)}/dagRuns", {"logical_date": logical_date, "conf": dict(conf or {})}
        )
        run_id: str = run["dag_run_id"]
        return run_id

    def unpause(self, dag_id: str, parse_timeout: float = 60.0) -> None:
        """Wait for the DAG to be parsed, then unpause it (so its schedule, e.g. on assets, applies)."""
        self.wait_for_dag(dag_id, parse_timeout)
        self.api("PATCH", f"/dags/{_q(dag_id)}", {"is_paused": False})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs (``dag_run_id``, ``state``, ``run_type``, ...), oldest first."""
        runs: list[dict[str, Any]] = self.api("GET", f"/dags/{_q(dag_id)}/dagRuns", order_by="id")["dag_runs"]
        return runs

    def submitted_job(self, dag_id: str, run_id: str, task_id: str, timeout: float = 120.0) -> str:
        """Wait until the task has pushed XCom ``job_id`` (it does so right after submitting); return it."""

        def probe() -> str | None:
            try:
                value = self.xcom(dag_id, run_id, task_id, key="job_id")
            except ApiError as err:
                if err.status == 404:
                    return None
                raise
            return str(value) if value else None

        job_id: str = self.wait_until(f"{dag_id}/{task_id} to submit its job", timeout, probe)
        return job_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        state: str = self.api("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")["state"]
        return state

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0) -> str:
        """Wait until the run is finished; returns "success" or "failed"."""

        def probe() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in TERMINAL_RUN_STATES else None

        try:
            result: str = self.wait_until(f"run {dag_id}/{run_id} to finish", timeout, probe)
        except AirflowStackError as err:
            with contextlib.suppress(Exception):
                err.args = (f"{err.args[0]}\ntask states: {self.task_states(dag_id, run_id)}",)
            raise
        return result

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        tis: list[dict[str, Any]] = []
        while True:
            page = self.api(
                "GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances", limit=100, offset=len(tis)
            )
            tis.extend(page["task_instances"])
            if not page["task_instances"] or len(tis) >= page["total_entries"]:
                return tis

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance as the REST API shows it (``id``, ``state``, ``try_number``, ...)."""
        path = f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
        if map_index >= 0:
            path += f"/{map_index}"
        ti: dict[str, Any] = self.api("GET", path)
        return ti

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """``task_id`` (``task_id[map_index]`` for mapped tasks) -> state ("none" when unset)."""
        return {
            (ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti["state"]
            or "none"
            for ti in self.task_instances(dag_id, run_id)
        }

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: Iterable[str],
        timeout: float = 60.0,
        map_index: int = -1,
    ) -> str:
        """Wait until a task instance is in one of ``states``; returns the state."""
        wanted = set(states)
        key = task_id if map_index < 0 else f"{task_id}[{map_index}]"

        def probe() -> str | None:
            state = self.task_states(dag_id, run_id).get(key)
            return state if state in wanted else None

        result: str = self.wait_until(f"{dag_id}/{run_id}/{key} to be {sorted(wanted)}", timeout, probe)
        return result

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """The XCom value as JSON (the way the REST API returns it)."""
        entry = self.api(
            "GET",
            f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/xcomEntries/{_q(key)}",
            map_index=map_index,
            deserialize="true",
        )
        return entry["value"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as text (task log plus, in Airflow 3, the trigger's log while deferred)."""
        body = self.api(
            "GET",
            f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/logs/{try_number}",
            map_index=map_index,
            full_content="true",
        )
        return "\n".join(_format_log_entry(e) for e in body.get("content", []))

    def set_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        state: str = "failed",
        map_index: int = -1,
        note: str | None = None,
    ) -> list[dict[str, Any]]:
        """Set a task instance's state as a user does in the UI (``PATCH .../taskInstances/{task_id}``)."""
        path = f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
        if map_index >= 0:
            path += f"/{map_index}"
        body: dict[str, Any] = {"new_state": state}
        if note is not None:
            body["note"] = note
        tis: list[dict[str, Any]] = self.api("PATCH", path, body)["task_instances"]
        return tis

    # --- logs and CLI --------------------------------------------------------

    def trigger_logs(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> dict[int, str]:
        """What triggerers logged for this task instance: triggerer job id -> log text.

        In Airflow 3 the triggerer writes a trigger's log beside the task's log, as
        ``<task log>.trigger.<triggerer job id>.log`` (default ``log_filename_template``);
        a trigger resumed by a restarted triggerer gets a second file.
        """
        folder = self.logs_dir / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        prefix = f"attempt={try_number}.log.trigger."
        return {
            int(path.name[len(prefix) : -len(".log")]): path.read_text(errors="replace")
            for path in sorted(folder.glob(f"{prefix}*.log"))
        }

    def component_log(self, name: str) -> str:
        """Everything the component wrote (all restarts, separated by ``=====`` lines)."""
        path = self.logs_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs_tail(self, lines: int = 40, names: Iterable[str] | None = None) -> str:
        chosen = list(names) if names is not None else list(self._components)
        return "\n".join(
            f"----- {n} (last {lines} lines of {self.logs_dir / f'{n}.log'}) -----\n{_tail(self.logs_dir / f'{n}.log', lines)}"
            for n in chosen
        )

    def airflow(
        self, *args: str, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``airflow`` CLI of ``bin_dir`` with the stack's environment."""
        return subprocess.run(
            [str(self.bin_dir / "airflow"), *args],
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _format_log_entry(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    entry = dict(entry)
    head = " ".join(str(entry.pop(k)) for k in ("timestamp", "level", "event") if entry.get(k) is not None)
    rest = " ".join(f"{k}={v}" for k, v in entry.items() if v is not None)
    return f"{head} {rest}".strip()
