"""The triggerer harness checked against a real ``airflow triggerer`` (issue 15 item 4).

A production-shaped Airflow, as ``tests/production`` runs it (``tests/system/airflow_stack.py`` and
``tests/system/services.py``): PostgreSQL 15, Redis, the CeleryExecutor with Celery workers, an
api-server, scheduler and dag-processor, and ONE ``airflow triggerer``, each its own process on
127.0.0.1, stopped by PID. The triggerer runs with Airflow's defaults (heartbeat every 5 s), its
capacity raised to N. The OGC server is the timed-jobs server (``tests/servers/timed_jobs.py``, one
process, HTTP/1.1 keep-alive; its CPU is not counted), which counts status GETs (``/stats``
``status_requests``).

1. One run of ``benchmarks/dags/real_triggerer_dag.py``: a mapped ``ExecuteProcessOperator``
   (deferrable) over N inputs, each a ``sleep`` job of 1 h, polled from ``min_poll`` (the provider's
   1 s floor in full mode) up to a 10 s ceiling (the harness's ``--max-interval``). The N task
   instances are started by the Celery workers; the time from the trigger to all N ``deferred``
   (checked through the REST API) is reported.
   Before the run, the triggerer's CPU with no trigger at all is measured for ``min(20, window / 2)``
   seconds: its fixed cost, subtracted in the "above idle" figure.
2. Warm-up: every trigger assigned to the triggerer, at least ``warmup`` seconds, and the youngest
   job old enough that its poll interval is at the ceiling (age >= ceiling / ratio + ceiling, 60 s
   with 0.2 and 10 s): from then on the N triggers poll every 10 s, N / 10 polls a second.
3. The window: CPU (utime + stime from ``/proc/<pid>/stat``) of the triggerer's whole process tree
   (the ``airflow triggerer`` supervisor process and its trigger-runner subprocess, which runs the
   triggers' asyncio loop; each also reported alone), the polls the server answered, RSS and PSS of
   the tree (sampled every second), and, for context, the CPU of every other component.
4. The stack is stopped; on the SAME timed-jobs server, N fresh 1 h jobs are submitted and the
   harness (``benchmarks/trigger_load.py``, provider variant, via :func:`benchmarks.triggerer._run_load`)
   watches them with the same schedule, the same N and every job at the ceiling (``--min-age``),
   for the same window. The ratio real / harness of the CPU per poll is the figure asked for.

Every process started here is stopped by PID in ``finally`` blocks (the stack's own stop, the
services' stop, the server's stop), also on errors.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAG_FILE = Path(__file__).resolve().parent / "dags" / "real_triggerer_dag.py"
DAG_ID = "bench_real_triggerer"
TAG = "realtrig-"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def unavailable() -> str | None:
    """Why the benchmark cannot run here (a missing tool or extra), or None."""
    if sys.platform != "linux":
        return "needs Linux (/proc)"
    if not (Path(sys.executable).parent / "airflow").exists():
        return f"no airflow executable beside {sys.executable}"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.system import services

    if missing := services.missing():
        return f"PostgreSQL 15 and Redis are needed (make system-packages): missing {missing}"
    try:
        import airflow.providers.celery  # noqa: F401
        import asyncpg  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as err:
        return f"the venv lacks the production extras (make .venv/.stamp): {err}"
    return None


# --- /proc --------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int, int, str] | None:
    """(ppid, own CPU ticks utime + stime, reaped children's ticks cutime + cstime, start time)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]), fields[19]


def _tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        st = _stat(int(entry.name))
        if st is not None:
            children.setdefault(st[0], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if _stat(pid) is None:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _snapshot(root: int | None) -> Snapshot:
    if root is None:
        return {}
    return {pid: st for pid in _tree(root) if (st := _stat(pid)) is not None}


Snapshot = dict[int, tuple[int, int, int, str]]  # pid -> _stat(pid)


def _cpu_s(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds the processes used between two snapshots of a tree.

    A process alive at both ends counts its own and its reaped children's ticks since the first
    snapshot; one started in between counts all its ticks; one that ended in between is lost
    unless its parent in the tree reaped it (then it is in the parent's children's ticks).
    """
    ticks = 0
    for pid, (_, own, kids, start) in after.items():
        old = before.get(pid)
        if old is not None and old[3] == start:
            ticks += (own - old[1]) + (kids - old[2])
        else:
            ticks += own + kids
    return ticks / CLK_TCK


def _rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6
    except (OSError, IndexError, ValueError):
        return 0.0


def _pss_mb(pid: int) -> float | None:
    """Proportional set size (shared pages split between their users), None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1e3
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _trigger_log_lines(logs_dir: Path) -> int:
    """Lines in every trigger log file (``<task log>.trigger.<triggerer job id>.log``) so far."""
    total = 0
    for path in logs_dir.glob("**/*.log.trigger.*.log"):
        try:
            with path.open("rb") as f:
                total += sum(1 for _ in f)
        except OSError:
            pass
    return total


# --- the timed-jobs server ----------------------------------------------------------------------


def _server_get(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=30) as resp:
        return json.loads(resp.read())


def _submit_jobs(url: str, n: int, seconds: float, tag: str) -> list[str]:
    """Submit ``n`` sleep jobs on one keep-alive connection; their ids."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    ids = []
    try:
        for i in range(n):
            body = json.dumps({"inputs": {"seconds": seconds, "tag": f"{tag}{i}"}})
            conn.request(
                "POST", "/processes/sleep/execution", body=body, headers={"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            info = json.loads(resp.read())
            if resp.status != 201:
                raise RuntimeError(f"submitting a harness job: HTTP {resp.status} {info}")
            ids.append(str(info["jobID"]))
    finally:
        conn.close()
    return ids


# --- the run ------------------------------------------------------------------------------------


def _state_counts(stack: Any) -> dict[str, int]:
    rows = stack.sql("SELECT state, count(*) FROM task_instance WHERE dag_id = ? GROUP BY state", (DAG_ID,))
    return {str(state or "none"): int(count) for state, count in rows}


def _deferred_via_rest(stack: Any, run_id: str) -> int:
    page = stack.api(
        "GET",
        f"/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances",
        state="deferred",
        limit=1,
    )
    return int(page["total_entries"])


def _wait_deferred(stack: Any, run_id: str, n: int, timeout: float, say: Any) -> dict[str, Any]:
    """Wait until all N task instances are deferred (or ``timeout``); the start-up figures."""
    from tests.system.airflow_stack import AirflowStackError

    began = time.monotonic()
    seen: dict[str, Any] = {"first": None, "said": 0.0, "counts": {}}

    def probe() -> bool:
        counts = _state_counts(stack)
        seen["counts"] = counts
        now = time.monotonic() - began
        if counts.get("deferred") and seen["first"] is None:
            seen["first"] = now
        if now - seen["said"] >= 15:
            say(f"  realtrig: {now:.0f} s after the trigger: {json.dumps(counts, sort_keys=True)}")
            seen["said"] = now
        broken = sum(counts.get(s, 0) for s in ("failed", "up_for_retry", "upstream_failed"))
        return counts.get("deferred", 0) >= n or bool(broken and counts.get("deferred", 0) + broken >= n)

    try:
        stack.wait_until(f"{n} task instances to defer", timeout, probe, interval=1.0)
    except AirflowStackError as err:
        if "timed out" not in str(err):
            raise  # a component died
    waited = time.monotonic() - began
    deferred = _deferred_via_rest(stack, run_id)
    return {
        "seconds_to_all_deferred": round(waited, 1) if deferred >= n else None,
        "seconds_waited": round(waited, 1),
        "seconds_to_first_deferred": None if seen["first"] is None else round(seen["first"], 1),
        "deferred": deferred,
        "deferred_per_s": round(deferred / waited, 2) if waited else None,
        "states_at_end_of_start": seen["counts"],
    }


def _processes(root: int) -> dict[str, Any]:
    """The triggerer's tree: the root (supervisor) and the trigger runner (its busiest child)."""
    snap = _snapshot(root)
    kids = [pid for pid, st in snap.items() if st[0] == root]
    runner = max(kids, key=lambda pid: snap[pid][1]) if kids else None
    return {
        "supervisor_pid": root,
        "runner_pid": runner,
        "tree": {str(pid): {"ppid": st[0], "cmdline": _cmdline(pid)[:160]} for pid, st in snap.items()},
    }


def _measure(stack: Any, server_url: str, window: float, n: int, max_interval: float) -> dict[str, Any]:
    root = stack.component_pid("triggerer")
    if root is None:
        raise RuntimeError("the triggerer is not running")
    procs = _processes(root)
    runner = procs["runner_pid"]
    others = {name: stack.component_pid(name) for name in stack.component_names if name != "triggerer"}
    snaps0 = {name: _snapshot(pid) for name, pid in others.items()}
    lines0 = _trigger_log_lines(stack.logs_dir)
    polls0 = _server_get(server_url, "/stats")["status_requests"]
    tree0, t0 = _snapshot(root), time.monotonic()
    rss_samples: list[tuple[float, float, float | None]] = []  # tree RSS, runner RSS, tree PSS
    while (left := t0 + window - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        pids = _tree(root)
        pss = [_pss_mb(p) for p in pids]
        rss_samples.append(
            (
                sum(_rss_mb(p) for p in pids),
                _rss_mb(runner) if runner else 0.0,
                None if any(v is None for v in pss) else sum(v or 0.0 for v in pss),
            )
        )
    tree1, t1 = _snapshot(root), time.monotonic()
    polls1 = _server_get(server_url, "/stats")["status_requests"]
    snaps1 = {name: _snapshot(pid) for name, pid in others.items()}
    lines = _trigger_log_lines(stack.logs_dir) - lines0
    wall = t1 - t0
    polls = int(polls1) - int(polls0)
    cpu = _cpu_s(tree0, tree1)
    due = n * wall / max_interval

    def one(pid: int | None) -> dict[str, Any] | None:
        if pid is None or pid not in tree0 or pid not in tree1:
            return None
        c = _cpu_s({pid: tree0[pid]}, {pid: tree1[pid]})
        return {
            "pid": pid,
            "cpu_s": round(c, 3),
            "cpu_share": round(c / wall, 4),
            "cpu_s_per_1000_polls": round(1000 * c / polls, 4) if polls else None,
            "rss_mb_end": round(_rss_mb(pid), 1),
        }

    pss_values = [s[2] for s in rss_samples if s[2] is not None]
    return {
        "window_s": round(wall, 2),
        "cpu_s": round(cpu, 3),
        "cpu_share": round(cpu / wall, 4),
        "polls": polls,
        "polls_due": round(due),
        "polls_per_s": round(polls / wall, 2),
        "cpu_s_per_1000_polls": round(1000 * cpu / polls, 4) if polls else None,
        "trigger_log_lines": lines,
        "peak_rss_mb": round(max((s[0] for s in rss_samples), default=0.0), 1),
        "rss_mb_end": round(rss_samples[-1][0], 1) if rss_samples else None,
        "peak_pss_mb": round(max(pss_values), 1) if pss_values else None,
        "runner": {
            **(one(runner) or {}),
            "peak_rss_mb": round(max((s[1] for s in rss_samples), default=0.0), 1),
        },
        "supervisor": one(root),
        "processes": procs,
        "other_components_cpu_share": {
            name: round(_cpu_s(snaps0[name], snaps1[name]) / wall, 4) for name in others if snaps1.get(name)
        },
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _idle(stack: Any, seconds: float) -> dict[str, Any]:
    """The triggerer's CPU with no trigger at all (before the run): its fixed cost per second."""
    root = stack.component_pid("triggerer")
    if root is None:
        raise RuntimeError("the triggerer is not running")
    procs = _processes(root)
    runner = procs["runner_pid"]
    tree0, t0 = _snapshot(root), time.monotonic()
    time.sleep(seconds)
    tree1, t1 = _snapshot(root), time.monotonic()
    wall = t1 - t0

    def share(pids: list[int]) -> float | None:
        if any(p not in tree0 or p not in tree1 for p in pids):
            return None
        return round(_cpu_s({p: tree0[p] for p in pids}, {p: tree1[p] for p in pids}) / wall, 4)

    return {
        "window_s": round(wall, 2),
        "cpu_share": round(_cpu_s(tree0, tree1) / wall, 4),
        "runner_cpu_share": share([runner]) if runner else None,
        "supervisor_cpu_share": share([root]),
        "rss_mb": round(sum(_rss_mb(p) for p in tree1), 1),
    }


def run(
    n: int,
    window: float,
    warmup: float,
    max_interval: float = 10.0,
    min_poll: float | None = None,
    job_seconds: float = 3600.0,
    workers: int = 2,
    worker_concurrency: int = 8,
    start_timeout: float = 900.0,
    harness: bool = True,
    log: Any = None,
) -> dict[str, Any]:
    """Start the stack, defer N tasks, measure the triggerer, then the harness; the figures (or raise)."""
    say = log or (lambda *a: None)
    why = unavailable()
    if why:
        return {"skipped": why}
    from airflow_provider_ogc.polling import DEFAULT_MIN_POLL_INTERVAL, DEFAULT_POLL_RATIO
    from benchmarks import triggerer
    from tests.system import services
    from tests.system.airflow_stack import AirflowStack

    min_poll = DEFAULT_MIN_POLL_INTERVAL if min_poll is None else min_poll
    # From this age on, every interval is the ceiling (and the last shorter one has passed).
    ceiling_age = 0.0 if min_poll >= max_interval else max_interval / DEFAULT_POLL_RATIO + max_interval
    python = sys.executable
    bin_dir = Path(python).parent
    began = time.monotonic()
    result: dict[str, Any] = {
        "n": n,
        "window_s": window,
        "warmup_min_s": warmup,
        "schedule": {
            "min_poll_interval_s": min_poll,
            "max_poll_interval_s": max_interval,
            "poll_ratio": DEFAULT_POLL_RATIO,
            "job_seconds": job_seconds,
            "at_ceiling_from_age_s": ceiling_age,
        },
        "server": "tests/servers/timed_jobs.py (one process, ThreadingHTTPServer, HTTP/1.1 keep-alive), "
        "shared by the real triggerer and the harness; its CPU is not counted",
    }
    with tempfile.TemporaryDirectory(prefix="ogc-bench-realtrig-") as tmp:
        work = Path(tmp)
        dags = work / "dags"
        dags.mkdir()
        shutil.copy(DAG_FILE, dags / DAG_FILE.name)
        server = triggerer.JobServer(python, work / "timed-jobs.log", module="tests.servers.timed_jobs")
        try:
            conn = {"conn_type": "ogc_processes", "host": server.url, "extra": {"timeout": 10}}
            slots = workers * worker_concurrency
            env = {
                "AIRFLOW_CONN_OGC_PROCESSES_DEFAULT": json.dumps(conn),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                "OGC_BENCH_REAL_TASKS": str(n),
                "OGC_BENCH_REAL_JOB_SECONDS": str(job_seconds),
                "OGC_BENCH_REAL_MIN_POLL": str(min_poll),
                "OGC_BENCH_REAL_MAX_POLL": str(max_interval),
                # The triggerer as deployed: Airflow's defaults (the harness beats every 1 s and
                # declares a triggerer dead after 10 s), its capacity raised to N.
                "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, n)),
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "5",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "30",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(max(n, 16)),
                "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, n)),
                "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": str(max(16, slots)),
            }
            result["stack"] = {
                "executor": "CeleryExecutor",
                "database": "PostgreSQL 15",
                "broker": "Redis",
                "triggerers": 1,
                "celery_workers": workers,
                "worker_concurrency": worker_concurrency,
                "parallelism": 2 * slots,
                "triggerer_capacity": max(1000, n),
                "triggerer_job_heartbeat_s": 5,
            }
            pg, redis = services.PostgresServer(work / "postgres"), services.RedisServer(work / "redis")
            with pg.start(), redis.start():
                stack = AirflowStack(
                    work / "airflow-home",
                    dags,
                    bin_dir,
                    env=env,
                    parallelism=2 * slots,
                    database_url=pg.sqlalchemy_url,
                    broker_url=redis.url,
                    triggerers=1,
                    celery_workers=workers,
                    worker_concurrency=worker_concurrency,
                )
                say(f"  realtrig: starting Airflow ({workers} x {worker_concurrency} Celery slots)")
                with stack.start():
                    result["stack"]["airflow_startup_s"] = round(stack.startup_seconds or 0.0, 1)
                    idle_s = min(20.0, window / 2)
                    say(f"  realtrig: the triggerer idle (no trigger) for {idle_s:g} s")
                    result["idle"] = _idle(stack, idle_s)
                    say(f"  realtrig: triggering {n} deferrable tasks")
                    run_id = stack.trigger_dag(DAG_ID, parse_timeout=120)
                    start = _wait_deferred(stack, run_id, n, start_timeout, say)
                    result["start"] = start
                    m = start["deferred"]
                    if m == 0:
                        raise RuntimeError(f"no task deferred: {start}\n{stack.logs_tail(30)}")
                    stack.wait_until(
                        "every trigger to be assigned to the triggerer",
                        120,
                        lambda: (
                            stack.sql("SELECT count(*) FROM trigger WHERE triggerer_id IS NOT NULL")[0][0]
                            >= m
                        ),
                        interval=1.0,
                    )
                    assigned = time.monotonic()
                    jobs = [
                        j
                        for j in _server_get(server.url, "/stats")["jobs"].values()
                        if str(j.get("tag") or "").startswith(TAG)
                    ]
                    youngest = max(j["created"] for j in jobs)
                    oldest = min(j["created"] for j in jobs)
                    wait = max(warmup - (time.monotonic() - assigned), ceiling_age - (time.time() - youngest))
                    say(f"  realtrig: {m} deferred; warm-up {max(wait, 0):.0f} s, then a {window:g} s window")
                    if wait > 0:
                        time.sleep(wait)
                    result["warmup_s"] = round(time.monotonic() - assigned, 1)
                    result["job_ages_at_window_s"] = [
                        round(time.time() - youngest, 1),
                        round(time.time() - oldest, 1),
                    ]
                    result["submissions"] = len(jobs)
                    real = result["real"] = _measure(stack, server.url, window, m, max_interval)
                    real["n"] = m
                    # Above the idle triggerer: what the N triggers add (their polls, logs, the
                    # runner/supervisor exchange that grows with N), per poll.
                    above = real["cpu_s"] - result["idle"]["cpu_share"] * real["window_s"]
                    real["cpu_s_per_1000_polls_above_idle"] = (
                        round(1000 * above / real["polls"], 4) if real["polls"] else None
                    )
                    state_after = _state_counts(stack)
                    result["states_after_window"] = state_after
                    say("  realtrig: stopping Airflow")
            result["tasks_deferred"] = m
            if harness:
                ids = _submit_jobs(server.url, m, job_seconds, "harness-")
                ids_file = work / "harness-job-ids.json"
                ids_file.write_text(json.dumps(ids))
                young, old = result["job_ages_at_window_s"]
                harness_warmup = max(warmup, max_interval + 2.0)
                say(f"  realtrig: the harness, N={m} ({harness_warmup:g} s warm-up + {window:g} s window)")
                home = work / "harness-home"
                home.mkdir()
                result["harness"] = triggerer._run_load(
                    python,
                    server.url,
                    "provider",
                    m,
                    harness_warmup,
                    window,
                    work,
                    triggerer._child_env(home),
                    "real-harness",
                    max_interval=max_interval,
                    extra=[
                        "--job-ids",
                        str(ids_file),
                        "--min-age",
                        str(max(young, ceiling_age)),
                        "--age-spread",
                        str(max(old - young, 0.0)),
                        "--min-interval",
                        str(min_poll),
                    ],
                )
        finally:
            server.stop()
    real, base = result.get("real", {}), result.get("harness", {})
    result["ratio_per_poll"] = _ratio(real.get("cpu_s_per_1000_polls"), base.get("cpu_s_per_1000_polls"))
    result["ratio_runner_per_poll"] = _ratio(
        (real.get("runner") or {}).get("cpu_s_per_1000_polls"), base.get("cpu_s_per_1000_polls")
    )
    result["ratio_above_idle_per_poll"] = _ratio(
        real.get("cpu_s_per_1000_polls_above_idle"), base.get("cpu_s_per_1000_polls")
    )
    result["total_s"] = round(time.monotonic() - began, 1)
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


if __name__ == "__main__":
    figures = run(n=int(sys.argv[1]) if len(sys.argv) > 1 else 10, window=10, warmup=5, log=print)
    print(json.dumps(figures, indent=2))
