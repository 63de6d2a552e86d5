"""The AirflowStack harness against real Airflow components (api-server, scheduler, dag-processor, triggerer).

One stack serves the whole module (start-up is the expensive part).  The DAGs only use
Airflow itself and the standard provider, so the file also runs in a venv without this
provider (e.g. the Airflow 3.1 floor venv).
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ci import unavailable
from tests.system.airflow_stack import AirflowStack, ApiError

pytestmark = pytest.mark.system

BIN_DIR = Path(sys.executable).parent

DAGS = {
    "stack_xcom.py": """
        from datetime import datetime

        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG, task


        def produce(dag_run):
            return {"n": dag_run.conf["n"] * 2, "items": ["a", "b"]}


        with DAG("stack_xcom", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
            produced = PythonOperator(task_id="produce", python_callable=produce)

            @task
            def consume(value, ti=None):
                pulled = ti.xcom_pull(task_ids="produce")
                assert pulled == value, (pulled, value)
                return value["n"] + len(value["items"])

            consume(produced.output)
        """,
    "stack_defer.py": """
        from datetime import datetime, timedelta

        from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
        from airflow.sdk import DAG

        with DAG("stack_defer", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
            # Defers to the standard provider's DateTimeTrigger (run_after + 10s) in the triggerer;
            # a task starting after that moment would succeed without deferring.
            TimeDeltaSensor(task_id="wait", delta=timedelta(seconds=10), deferrable=True)
        """,
    "stack_defer_long.py": '''
        from datetime import datetime, timedelta

        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
        from airflow.sdk import DAG, BaseOperator


        class WaitFromDeferral(BaseOperator):
            """Defers for ``seconds`` counted from the moment it defers (TimeDeltaSensor counts from run_after)."""

            def __init__(self, *, seconds, **kwargs):
                super().__init__(**kwargs)
                self.seconds = seconds

            def execute(self, context):
                self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=self.seconds)), method_name="resume")

            def resume(self, context, event=None):
                return "resumed"


        with DAG("stack_triggerer_crash", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
            WaitFromDeferral(task_id="wait", seconds=15)

        with DAG("stack_mark_failed", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
            WaitFromDeferral(task_id="wait", seconds=600)
        ''',
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    if not (BIN_DIR / "airflow").exists():
        unavailable(f"no airflow executable beside {sys.executable}")
    dags = tmp_path_factory.mktemp("dags")
    for name, source in DAGS.items():
        (dags / name).write_text(textwrap.dedent(source))
    stack = AirflowStack(tmp_path_factory.mktemp("airflow-home"), dags, BIN_DIR, parallelism=4)
    began = time.monotonic()
    with stack.start():
        print(f"\nAirflow stack up in {time.monotonic() - began:.1f}s at {stack.api_url}")
        yield stack


def explain(stack: AirflowStack, dag_id: str, run_id: str) -> str:
    """Task states and the logs of unsuccessful tasks, for assertion messages."""
    parts = []
    for ti in stack.task_instances(dag_id, run_id):
        parts.append(f"{ti['task_id']}[{ti['map_index']}]: {ti['state']} (try {ti['try_number']})")
        if ti["state"] != "success" and ti["try_number"] > 0:
            try:
                log = stack.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
            except ApiError as err:
                log = str(err)
            parts.append(f"--- log ---\n{log[-4000:]}")
    parts.append(stack.logs_tail(names=["scheduler"]))
    return "\n".join(parts)


def test_xcom_and_deferred_runs_succeed(stack: AirflowStack) -> None:
    defer_run = stack.trigger_dag("stack_defer")
    xcom_run = stack.trigger_dag("stack_xcom", conf={"n": 20})

    assert stack.wait_for_run("stack_xcom", xcom_run, timeout=90) == "success", explain(
        stack, "stack_xcom", xcom_run
    )
    assert stack.wait_for_run("stack_defer", defer_run, timeout=90) == "success", explain(
        stack, "stack_defer", defer_run
    )

    assert stack.task_states("stack_xcom", xcom_run) == {"produce": "success", "consume": "success"}
    assert stack.xcom("stack_xcom", xcom_run, "produce") == {"n": 40, "items": ["a", "b"]}
    assert stack.xcom("stack_xcom", xcom_run, "consume") == 42

    assert stack.task_states("stack_defer", defer_run) == {"wait": "success"}
    # The triggerer wrote the trigger's log beside the task log, and the REST log endpoint merges it in.
    # The triggerer writes (and flushes) it on its own schedule, possibly after the run has ended.
    trigger_logs = stack.wait_until(
        "the trigger's log to hold its event",
        30,
        lambda: (
            (logs := stack.trigger_logs("stack_defer", defer_run, "wait"))
            and all("Trigger fired event" in text for text in logs.values())
            and logs
        ),
    )
    assert len(trigger_logs) == 1, trigger_logs
    (trigger_log,) = trigger_logs.values()
    assert "Trigger fired event" in trigger_log
    assert "TriggerEvent<DateTime(" in trigger_log  # DateTimeTrigger's event
    task_log = stack.task_log("stack_defer", defer_run, "wait")
    assert "Trigger fired event" in task_log
    assert "Starting the triggerer" in stack.component_log("triggerer")


def test_deferred_task_survives_triggerer_sigkill(stack: AirflowStack) -> None:
    dag_id = "stack_triggerer_crash"
    run_id = stack.trigger_dag(dag_id)
    stack.wait_for_task_state(dag_id, run_id, "wait", ["deferred"], timeout=60)
    # Wait until the triggerer runs the trigger (its log file appears), then crash the triggerer.
    first = stack.wait_until(
        "the trigger to start", 30, lambda: stack.trigger_logs(dag_id, run_id, "wait") or None
    )
    (old_job,) = first

    stack.kill_component("triggerer")  # SIGKILL to its process group: no clean-up, no trigger hand-over
    assert stack.task_states(dag_id, run_id) == {"wait": "deferred"}
    stack.restart_component("triggerer")

    # The new triggerer adopts the trigger once the dead one's heartbeat is older than
    # [triggerer] triggerer_health_check_threshold (10s here), then the task resumes.
    assert stack.wait_for_run(dag_id, run_id, timeout=120) == "success", explain(stack, dag_id, run_id)
    assert stack.xcom(dag_id, run_id, "wait") == "resumed"
    (ti,) = stack.task_instances(dag_id, run_id)
    assert ti["try_number"] == 1  # resumed, not retried
    logs = stack.trigger_logs(dag_id, run_id, "wait")
    new_jobs = sorted(set(logs) - {old_job})
    assert len(new_jobs) == 1, logs
    assert "Trigger fired event" not in logs[old_job]
    assert "Trigger fired event" in logs[new_jobs[0]]


def test_mark_failed_cancels_the_trigger(stack: AirflowStack) -> None:
    dag_id = "stack_mark_failed"
    run_id = stack.trigger_dag(dag_id)
    stack.wait_for_task_state(dag_id, run_id, "wait", ["deferred"], timeout=60)
    stack.wait_until("the trigger to start", 30, lambda: stack.trigger_logs(dag_id, run_id, "wait") or None)

    (ti,) = stack.set_task_state(dag_id, run_id, "wait", "failed")
    assert ti["task_id"] == "wait"

    assert stack.wait_for_run(dag_id, run_id, timeout=60) == "failed"
    assert stack.task_states(dag_id, run_id) == {"wait": "failed"}
    # The triggerer drops the trigger of a task that is no longer deferred.
    (trigger_log,) = stack.wait_until(
        "the trigger to end",
        30,
        lambda: (
            [t for t in stack.trigger_logs(dag_id, run_id, "wait").values() if "trigger completed" in t]
            or None
        ),
    )
    assert "Trigger fired event" not in trigger_log
    if stack.airflow_version >= (3, 3):
        # 3.3 tells a trigger cancelled by a user action apart from a triggerer shutdown.
        assert "Trigger cancelled by user action, invoking on_kill" in trigger_log
