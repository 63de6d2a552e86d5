"""What happens to a job when Airflow's processes die, a user cancels, or a timeout fires.

A real scheduler, triggerer, dag-processor and api-server (``AirflowStack``) run the DAGs of
``dags/reliability_dags.py`` against the real pygeoapi test server.  Every test counts the jobs on the
server (``GET /jobs`` before and after), so a duplicate submission or a job left running is seen
where it matters: on the server.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.launch import RunningServer
from tests.support.ci import unavailable
from tests.system.airflow_stack import AirflowStack, ApiError

pytestmark = pytest.mark.system
BIN_DIR = Path(sys.executable).parent
DAGS = Path(__file__).parent / "dags"
# A worker that stops heartbeating is failed (and retried) after this long: short, so the
# whole-worker crash test is quick, yet four missed heartbeats ([workers] min_heartbeat_interval 5 s).
HEARTBEAT_TIMEOUT = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pygeoapi_server: RunningServer) -> Iterator[AirflowStack]:
    if not (BIN_DIR / "airflow").exists():
        unavailable(f"no airflow executable beside {sys.executable}")
    conn = {"conn_type": "ogc_processes", "host": pygeoapi_server.url, "extra": {"timeout": 10}}
    env = {
        "AIRFLOW_CONN_OGC_PROCESSES_DEFAULT": json.dumps(conn),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    }
    with AirflowStack(
        tmp_path_factory.mktemp("airflow-home"), DAGS, BIN_DIR, env=env, parallelism=4
    ).start() as s:
        yield s


@pytest.fixture
def hook(hook_for: Any, pygeoapi_server: RunningServer) -> Any:
    return hook_for(pygeoapi_server.url)


def server_jobs(hook: Any) -> set[str]:
    """The ids of every job the server knows (a dismissed pygeoapi job is deleted, so not listed)."""
    return {job.job_id for job in hook.list_jobs()}


def job_status(hook: Any, job_id: str) -> str:
    """The job's status on the server, or ``"gone"`` (pygeoapi deletes a dismissed job's record: 404)."""
    from airflow_provider_ogc.exceptions import OGCProcessesAPIError

    try:
        return str(hook.get_job_status(job_id).status.value)
    except OGCProcessesAPIError as err:
        if err.http_status == 404:
            return "gone"
        raise


def explain(stack: AirflowStack, dag_id: str, run_id: str) -> str:
    """Task states and the end of each try's log, for assertion messages."""
    parts = [json.dumps(stack.task_states(dag_id, run_id))]
    for ti in stack.task_instances(dag_id, run_id):
        for try_number in range(1, ti["try_number"] + 1):
            try:
                log = stack.task_log(dag_id, run_id, ti["task_id"], try_number)
            except ApiError as err:
                log = str(err)
            parts.append(f"--- {ti['task_id']} try {try_number} ---\n{log[-3000:]}")
    parts.append(stack.logs_tail(names=["scheduler"]))
    return "\n".join(parts)


# --- components and workers dying -------------------------------------------------------------


def test_a_job_survives_a_triggerer_kill_and_the_restarted_triggerer_resumes_watching_it(
    stack: AirflowStack, hook: Any
) -> None:
    dag_id = "reliability_triggerer_restart"
    before = server_jobs(hook)
    run_id = stack.trigger_dag(dag_id)
    stack.wait_for_task_state(dag_id, run_id, "sleep", ["deferred"], timeout=90)
    job_id = stack.submitted_job(dag_id, run_id, "sleep")
    # The trigger has polled the job at least once before the triggerer dies.
    (old_triggerer,) = stack.wait_until(
        "the trigger to poll the job",
        60,
        lambda: {
            k: v for k, v in stack.trigger_logs(dag_id, run_id, "sleep").items() if f"Job {job_id}: " in v
        },
    )

    stack.kill_component("triggerer")  # SIGKILL to the whole process tree: no clean-up at all
    time.sleep(3)  # the job runs on while nothing watches it
    assert job_status(hook, job_id) in ("accepted", "running")
    assert stack.task_states(dag_id, run_id) == {"sleep": "deferred"}
    stack.restart_component("triggerer")

    assert stack.wait_for_run(dag_id, run_id, timeout=180) == "success", explain(stack, dag_id, run_id)
    ti = stack.task_instance(dag_id, run_id, "sleep")
    assert ti["try_number"] == 1, "resumed from the deferral, not retried"
    assert stack.xcom(dag_id, run_id, "sleep", key="job_id") == job_id
    result = stack.xcom(dag_id, run_id, "sleep")
    assert set(result) == {"slept"} and result["slept"] >= 30, result
    assert server_jobs(hook) - before == {job_id}, "exactly one job was submitted"

    logs = stack.trigger_logs(dag_id, run_id, "sleep")
    new_triggerers = sorted(set(logs) - {old_triggerer})
    assert len(new_triggerers) == 1, f"one restarted triggerer took the trigger over: {sorted(logs)}"
    resumed = logs[new_triggerers[0]]
    # The restarted triggerer polled the same job, from where it was to its end.
    assert f"Job {job_id}: " in resumed
    assert f"Job {job_id}: successful, progress 100%" in resumed
    assert "successful" not in logs[old_triggerer]


def kill_worker_after_submission(stack: AirflowStack, dag_id: str, roles: tuple[str, ...]) -> tuple[str, str]:
    """Start a run of ``dag_id``, SIGKILL the given processes of its task once the job is submitted.

    :param roles: ``"task"`` (the process running the operator) and/or ``"supervisor"`` (its parent,
        the LocalExecutor worker that heartbeats for it).
    :return: the run id and the submitted job's id.
    """
    run_id = stack.trigger_dag(dag_id)
    job_id = stack.submitted_job(dag_id, run_id, "sleep")
    ti = stack.task_instance(dag_id, run_id, "sleep")
    assert ti["state"] == "running" and ti["try_number"] == 1, ti
    processes = stack.wait_until(
        "the task's processes", 30, lambda: stack.task_processes(ti["id"]) or None, interval=0.2
    )
    assert set(roles) <= set(processes), processes
    for role in roles:  # the supervisor first: it must not see its task die and report it
        stack.kill_process(processes[role], signal.SIGKILL)
    return run_id, job_id


def test_a_worker_killed_after_submitting_is_retried_and_the_retry_reattaches(
    stack: AirflowStack, hook: Any
) -> None:
    # The whole worker dies (task process and supervisor): nothing reports the end of the try, so
    # the scheduler fails it once its heartbeat is HEARTBEAT_TIMEOUT old, and retries it.
    dag_id = "reliability_worker_crash"
    before = server_jobs(hook)
    run_id, job_id = kill_worker_after_submission(stack, dag_id, ("supervisor", "task"))

    assert stack.wait_for_run(dag_id, run_id, timeout=180) == "success", explain(stack, dag_id, run_id)
    assert stack.task_instance(dag_id, run_id, "sleep")["try_number"] == 2
    # The scheduler ended the first try for its missing heartbeats (nothing else was left to report).
    assert any(
        "Detected a task instance without a heartbeat" in line and run_id in line
        for line in stack.component_log("scheduler").splitlines()
    ), stack.logs_tail(names=["scheduler"])
    second_try = stack.task_log(dag_id, run_id, "sleep", try_number=2)
    assert f"Reattaching to job {job_id} of an earlier try (running)" in second_try
    assert f"Job {job_id}: successful, progress 100%" in second_try
    assert server_jobs(hook) - before == {job_id}, "exactly one job was submitted"
    result = stack.xcom(dag_id, run_id, "sleep")
    assert result["slept"] >= 40, result


def test_a_task_process_killed_after_submitting_is_retried_and_the_retry_reattaches(
    stack: AirflowStack, hook: Any
) -> None:
    if stack.airflow_version < (3, 3):
        pytest.skip(
            "Airflow 3.1's supervisor reports a task process killed by a signal as failed, without "
            "retry (3.3 makes it up_for_retry when retries remain)"
        )
    # Only the process running the operator dies (as under the OOM killer); its supervisor sees it
    # exit on SIGKILL and ends the try at once.
    dag_id = "reliability_task_process_crash"
    before = server_jobs(hook)
    run_id, job_id = kill_worker_after_submission(stack, dag_id, ("task",))

    assert stack.wait_for_run(dag_id, run_id, timeout=180) == "success", explain(stack, dag_id, run_id)
    assert stack.task_instance(dag_id, run_id, "sleep")["try_number"] == 2
    first_try = stack.task_log(dag_id, run_id, "sleep", try_number=1)
    assert "Process terminated by signal" in first_try and "SIGKILL" in first_try, first_try[-3000:]
    second_try = stack.task_log(dag_id, run_id, "sleep", try_number=2)
    assert f"Reattaching to job {job_id} of an earlier try (running)" in second_try
    assert f"Job {job_id}: successful, progress 100%" in second_try
    assert server_jobs(hook) - before == {job_id}, "exactly one job was submitted"
    assert stack.xcom(dag_id, run_id, "sleep")["slept"] >= 20


# --- cancellation -------------------------------------------------------------------------------


def test_marking_a_task_that_polls_on_the_worker_failed_dismisses_its_job(
    stack: AirflowStack, hook: Any
) -> None:
    # The deferrable case (the trigger's on_kill, Airflow 3.3+) is in test_provider_dags.py.  Here the
    # supervisor's next heartbeat learns the task is no longer running and SIGTERMs the task
    # process, whose on_kill dismisses the job (Airflow 3.1 and 3.3).
    dag_id = "reliability_mark_failed_on_worker"
    before = server_jobs(hook)
    run_id = stack.trigger_dag(dag_id)
    job_id = stack.submitted_job(dag_id, run_id, "sleep")
    assert job_status(hook, job_id) in ("accepted", "running")

    stack.set_task_state(dag_id, run_id, "sleep", "failed")

    stack.wait_until("the job to be dismissed", 90, lambda: job_status(hook, job_id) == "gone")
    assert stack.wait_for_run(dag_id, run_id, timeout=60) == "failed"

    def dismissal_logged() -> str | None:
        text = stack.task_log(dag_id, run_id, "sleep")
        return text if f"Dismissed job {job_id}" in text else None

    log = stack.wait_until("the task log to show the dismissal", 30, dismissal_logged)
    assert f"Job {job_id} of process sleep" in log
    assert server_jobs(hook) - before == set(), "no job left on the server"


def test_execution_timeout_dismisses_the_job_in_the_triggerer_and_on_the_worker(
    stack: AirflowStack, hook: Any
) -> None:
    dag_id = "reliability_execution_timeout"
    before = server_jobs(hook)
    run_id = stack.trigger_dag(dag_id)
    jobs = {task: stack.submitted_job(dag_id, run_id, task) for task in ("deferred", "on_worker")}
    assert stack.wait_for_task_state(dag_id, run_id, "deferred", ["deferred"], timeout=60) == "deferred"
    assert all(job_status(hook, job) in ("accepted", "running") for job in jobs.values())

    assert stack.wait_for_run(dag_id, run_id, timeout=120) == "failed", explain(stack, dag_id, run_id)
    assert stack.task_states(dag_id, run_id) == {"deferred": "failed", "on_worker": "failed"}
    for task, job_id in jobs.items():
        assert job_status(hook, job_id) == "gone", f"{task}: the job was dismissed"
        log = stack.task_log(dag_id, run_id, task)
        assert f"Dismissed job {job_id}" in log, (task, log[-3000:])
        assert f"Job {job_id} did not finish before its deadline; it was dismissed" in log, (
            task,
            log[-3000:],
        )
    assert server_jobs(hook) - before == set(), "no job left on the server"
