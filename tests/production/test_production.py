"""Airflow as users run it: CeleryExecutor on PostgreSQL, two Celery workers, two triggerers (issue 12).

A real api-server, scheduler, dag-processor, two ``airflow celery worker`` and two ``airflow
triggerer`` processes, PostgreSQL 15 and Redis 7 from Debian (``conftest.py``) run the DAGs of
``dags/production_dags.py`` against the timed-jobs server, which counts submissions and
dismissals. The trigger table's ``triggerer_id`` says which triggerer watches which job.
"""

from __future__ import annotations

import json
import signal
import time
from importlib.metadata import version
from typing import Any

import pytest

from tests.production.dags.production_dags import SCALE_JOBS, scale_seconds
from tests.system.airflow_stack import AirflowStack, ApiError

# The module's stack starts within the first test (about 30 s); the scale test runs for minutes.
pytestmark = [pytest.mark.system, pytest.mark.production, pytest.mark.timeout(420)]
AIRFLOW_VERSION = tuple(int(p) for p in version("apache-airflow").split(".")[:3] if p.isdigit())


def airflow_version(stack: AirflowStack) -> tuple[int, ...]:
    return stack.airflow_version


def explain(stack: AirflowStack, dag_id: str, run_id: str, tasks: tuple[str, ...] = ("sleep",)) -> str:
    parts = [json.dumps(stack.task_states(dag_id, run_id))]
    for task_id in tasks:
        ti = stack.task_instance(dag_id, run_id, task_id)
        for try_number in range(1, ti["try_number"] + 1):
            try:
                log = stack.task_log(dag_id, run_id, task_id, try_number)
            except ApiError as err:
                log = str(err)
            parts.append(f"--- {task_id} try {try_number} ---\n{log[-3000:]}")
    parts.append(stack.logs_tail(20))
    return "\n".join(parts)


def wait_heartbeat_after(stack: AirflowStack, name: str, after: float, timeout: float = 30) -> None:
    """Wait until triggerer ``name`` has heartbeated after epoch ``after`` (it is alive and healthy again)."""
    job_id = stack.triggerer_job_id(name)

    def beat() -> bool:
        rows = stack.sql("SELECT latest_heartbeat FROM job WHERE id = ?", (job_id,))
        return bool(rows) and rows[0][0].timestamp() > after

    stack.wait_until(f"{name} to heartbeat", timeout, beat, interval=0.2)


class JobDismissedByReassignment(AssertionError):
    """The paused triggerer's on_kill dismissed a job another triggerer was watching (Airflow 3.3)."""


# --- item 2: a trigger taken over by the other triggerer -------------------------------------------


def test_a_trigger_taken_over_by_the_other_triggerer_leaves_the_job_running(
    stack: AirflowStack, timed_jobs: Any
) -> None:
    dag_id = "prod_reassign"
    a, b = stack.triggerer_names
    timeline: dict[str, float] = {}
    # The job's trigger goes to A: B is paused while it is created.
    stack.pause_component(b)
    try:
        run_id = stack.trigger_dag(dag_id)
        timeline["triggered"] = time.time()
        job_id = stack.submitted_job(dag_id, run_id, "sleep")
        stack.wait_until(
            "the trigger to run on A", 90, lambda: stack.trigger_assignments(dag_id, run_id) == {"sleep": a}
        )
        timeline["on_a"] = time.time()
    finally:
        stack.resume_component(b)
    wait_heartbeat_after(stack, b, time.time())
    a_job, b_job = stack.triggerer_job_id(a), stack.triggerer_job_id(b)
    stack.wait_until(
        "A to poll the job",
        30,
        lambda: f"Job {job_id}: " in stack.trigger_logs(dag_id, run_id, "sleep").get(a_job, ""),
    )

    stack.pause_component(a)  # A's heartbeat lapses: after 10 s B adopts A's trigger
    timeline["stop_a"] = time.time()
    try:
        stack.wait_until(
            "B to take the trigger over",
            60,
            lambda: stack.trigger_assignments(dag_id, run_id) == {"sleep": b},
            interval=0.2,
        )
        timeline["reassigned_to_b"] = time.time()
        time.sleep(2)  # B polls the job
    finally:
        stack.resume_component(a)
    timeline["cont_a"] = time.time()
    state = stack.wait_for_run(dag_id, run_id, timeout=150)
    timeline["run_end"] = time.time()

    server_jobs = timed_jobs.jobs_tagged("reassign")
    job = server_jobs.get(job_id, {})
    timeline["job_end"] = job.get("ended") or job.get("dismissed") or float("nan")
    t0 = timeline["stop_a"]
    print("timeline (s from SIGSTOP of A):", {k: round(v - t0, 1) for k, v in timeline.items()})
    if job.get("dismissed"):
        raise JobDismissedByReassignment(
            f"job {job_id} dismissed {job['dismissed'] - t0:.1f} s after A was stopped "
            f"(A resumed at {timeline['cont_a'] - t0:.1f} s); run {state}; timeline {timeline}"
        )
    assert state == "success", explain(stack, dag_id, run_id)
    assert stack.xcom(dag_id, run_id, "sleep") == {"slept": 60, "tag": "reassign"}
    assert list(server_jobs) == [job_id], "one submission"
    logs = stack.trigger_logs(dag_id, run_id, "sleep")
    assert f"Job {job_id}: successful" in logs.get(b_job, ""), "B watched the job to its end"


# --- a user's mark failed still dismisses, with two triggerers -------------------------------------


def test_marking_a_deferred_task_failed_dismisses_its_job_with_two_triggerers(
    stack: AirflowStack, timed_jobs: Any
) -> None:
    dag_id = "prod_mark_failed"
    run_id = stack.trigger_dag(dag_id)
    job_id = stack.submitted_job(dag_id, run_id, "sleep")
    stack.wait_until("the trigger to run", 90, lambda: stack.trigger_assignments(dag_id, run_id).get("sleep"))
    print("trigger on:", stack.trigger_assignments(dag_id, run_id))

    stack.set_task_state(dag_id, run_id, "sleep", "failed")
    marked = time.time()
    if airflow_version(stack) >= (3, 3):
        stack.wait_until(
            "the job to be dismissed", 60, lambda: timed_jobs.jobs_tagged("mark-failed")[job_id]["dismissed"]
        )
        dismissed_after = timed_jobs.jobs_tagged("mark-failed")[job_id]["dismissed"] - marked
        print(f"dismissed {dismissed_after:.1f} s after mark failed")
    else:
        # Airflow 3.1 has no trigger on_kill: the job runs on (documented in the README).
        time.sleep(5)
        assert not timed_jobs.jobs_tagged("mark-failed")[job_id]["dismissed"]

    assert stack.wait_for_run(dag_id, run_id, timeout=60) == "failed"
    assert list(timed_jobs.jobs_tagged("mark-failed")) == [job_id], "one submission"


# --- item 4: a Celery worker killed after submission ------------------------------------------------


def test_a_celery_worker_killed_after_submitting_is_retried_on_the_other_worker_which_reattaches(
    stack: AirflowStack, timed_jobs: Any
) -> None:
    dag_id = "prod_worker_crash"
    run_id = stack.trigger_dag(dag_id)
    job_id = stack.submitted_job(dag_id, run_id, "sleep")
    ti = stack.task_instance(dag_id, run_id, "sleep")
    assert ti["state"] == "running" and ti["try_number"] == 1, ti
    found = stack.wait_until(
        "the task's processes", 30, lambda: stack.task_processes_in(ti["id"]) or None, 0.2
    )
    victim = found["component"]
    (survivor,) = set(stack.worker_names) - {victim}
    survivor_log_start = len(stack.component_log(survivor))
    killed = time.time()
    stack.kill_component(victim, signal.SIGKILL)  # the whole worker: pool, supervisor and task process

    assert stack.wait_for_run(dag_id, run_id, timeout=180) == "success", explain(stack, dag_id, run_id)
    print(f"worker {victim} killed; run ended {time.time() - killed:.1f} s later")
    assert stack.task_instance(dag_id, run_id, "sleep")["try_number"] == 2
    second_try = stack.task_log(dag_id, run_id, "sleep", try_number=2)
    assert f"Reattaching to job {job_id} of an earlier try (running)" in second_try, second_try[-3000:]
    assert f"Job {job_id}: successful" in second_try
    assert stack.xcom(dag_id, run_id, "sleep") == {"slept": 40, "tag": "worker-crash"}
    # The survivor ran try 2 (its log names the log file of the workload it executed).
    attempt_2 = f"dag_id={dag_id}/run_id={run_id}/task_id=sleep/attempt=2.log"
    assert attempt_2 in stack.component_log(survivor)[survivor_log_start:], stack.logs_tail(names=[survivor])
    jobs = timed_jobs.jobs_tagged("worker-crash")
    assert list(jobs) == [job_id], "one submission"
    assert not jobs[job_id]["dismissed"]


# --- item 3: 200 jobs, a triggerer SIGKILLed midway -------------------------------------------------


@pytest.mark.timeout(1200)
def test_many_jobs_survive_a_triggerer_killed_midway(stack: AirflowStack, timed_jobs: Any) -> None:
    dag_id = "prod_scale"
    names = stack.triggerer_names
    run_id = stack.trigger_dag(dag_id)
    started = time.time()
    peak: dict[str, int] = dict.fromkeys(names, 0)

    def shares() -> dict[str, int]:
        counts = dict.fromkeys(names, 0)
        for triggerer in stack.trigger_assignments(dag_id, run_id).values():
            if triggerer in counts:
                counts[triggerer] += 1
        for name, count in counts.items():
            peak[name] = max(peak[name], count)
        return counts

    # Midway: half the jobs submitted and both triggerers carrying a share.
    def midway() -> dict[str, int] | None:
        counts = shares()
        submitted = len(timed_jobs.jobs_tagged("scale-"))
        return counts if submitted >= SCALE_JOBS // 2 and min(counts.values()) > 0 else None

    before = stack.wait_until("half the jobs submitted, both triggerers busy", 600, midway, interval=1)
    victim = max(before, key=lambda n: before[n])
    victim_job = stack.triggerer_job_id(victim)
    killed = time.time()
    stack.kill_component(victim, signal.SIGKILL)

    def moved() -> bool:
        rows = stack.sql("SELECT count(*) FROM trigger WHERE triggerer_id = ?", (victim_job,))
        return rows[0][0] == 0

    stack.wait_until("the killed triggerer's triggers to move", 120, moved, interval=0.5)
    reassigned = time.time()
    after = shares()

    state = stack.wait_for_run(dag_id, run_id, timeout=900)
    ended = time.time()
    states = stack.task_states(dag_id, run_id)
    assert state == "success", {k: v for k, v in states.items() if v != "success"}
    assert len(states) == SCALE_JOBS and set(states.values()) == {"success"}

    jobs = timed_jobs.jobs_tagged("scale-")
    assert len(jobs) == SCALE_JOBS, f"exactly one submission per task: {len(jobs)}"
    assert sorted(j["tag"] for j in jobs.values()) == sorted(f"scale-{i}" for i in range(SCALE_JOBS))
    assert not [j for j, rec in jobs.items() if rec["dismissed"]], "no job dismissed"
    rows = stack.sql(
        "SELECT map_index, value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'sleep' AND key = 'return_value'",
        (dag_id, run_id),
    )
    results = {int(i): (json.loads(v) if isinstance(v, str) else v) for i, v in rows}
    assert results == {i: {"slept": scale_seconds(i), "tag": f"scale-{i}"} for i in range(SCALE_JOBS)}

    first_submit = min(j["created"] for j in jobs.values())
    last_end = max(j["ended"] for j in jobs.values())
    figures = {
        "jobs": SCALE_JOBS,
        "peak_share": peak,
        "at_kill": before,
        "killed": victim,
        "reassignment_s": round(reassigned - killed, 1),
        "after_reassignment": after,
        "makespan_s": round(ended - started, 1),
        "submission_window_s": round(max(j["created"] for j in jobs.values()) - first_submit, 1),
        "jobs_span_s": round(last_end - first_submit, 1),
        "longest_job_s": max(scale_seconds(i) for i in range(SCALE_JOBS)),
        "kill_at_s": round(killed - started, 1),
    }
    print("scale figures:", json.dumps(figures))
    (stack.logs_dir / "scale-figures.json").write_text(json.dumps(figures, indent=1))
