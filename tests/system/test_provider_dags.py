"""The provider under a real scheduler, dag-processor, triggerer and api-server, against real pygeoapi.

This is the product's promise: a deferrable job whose STAC hrefs reach a downstream task, a sensor,
and a user's "mark failed" reaching the server as a dismissal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.launch import RunningServer
from tests.support.ci import unavailable
from tests.system.airflow_stack import AirflowStack

pytestmark = pytest.mark.system
BIN_DIR = Path(sys.executable).parent
DAGS = Path(__file__).parent / "dags"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pygeoapi_server: RunningServer) -> Iterator[AirflowStack]:
    if not (BIN_DIR / "airflow").exists():
        unavailable(f"no airflow executable beside {sys.executable}")
    conn = {"conn_type": "ogc_processes", "host": pygeoapi_server.url, "extra": {"timeout": 10}}
    env = {"AIRFLOW_CONN_OGC_PROCESSES_DEFAULT": json.dumps(conn)}
    with AirflowStack(
        tmp_path_factory.mktemp("airflow-home"), DAGS, BIN_DIR, env=env, parallelism=4
    ).start() as s:
        yield s


def explain(stack: AirflowStack, dag_id: str, run_id: str) -> str:
    parts = [json.dumps(stack.task_states(dag_id, run_id))]
    for ti in stack.task_instances(dag_id, run_id):
        if ti["try_number"] > 0:
            parts.append(
                f"--- {ti['task_id']} ---\n{stack.task_log(dag_id, run_id, ti['task_id'], ti['try_number'])[-3000:]}"
            )
    return "\n".join(parts)


def test_deferrable_job_hands_stac_hrefs_to_the_downstream_task(
    stack: AirflowStack, pygeoapi_server: RunningServer
) -> None:
    stack.unpause("ogc_results_report")
    run_id = stack.trigger_dag("ogc_submit_consume")
    assert stack.wait_for_run("ogc_submit_consume", run_id, timeout=180) == "success", explain(
        stack, "ogc_submit_consume", run_id
    )
    consumed = stack.xcom("ogc_submit_consume", run_id, "consume")
    assert consumed == {
        "count": 2,
        "ids": ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_043033_20231201_02_T1"],
    }

    job_id = stack.xcom("ogc_submit_consume", run_id, "submit", key="job_id")
    job_url = f"{pygeoapi_server.url}/jobs/{job_id}"
    assert stack.xcom("ogc_submit_consume", run_id, "submit", key="job_url") == job_url
    hrefs = stack.xcom("ogc_submit_consume", run_id, "submit")
    assert len(hrefs) == 2 and all(h.startswith("s3://results/") for h in hrefs)
    # The results as assets: an event per item, and the DAG scheduled on them ran with their extras.
    reports = stack.wait_until(
        "the results DAG to run on the asset events",
        120,
        lambda: [r for r in stack.dag_runs("ogc_results_report") if r["state"] == "success"] or None,
    )
    extras = stack.xcom("ogc_results_report", reports[0]["dag_run_id"], "report")
    assert [e["item_id"] for e in extras] == sorted(consumed["ids"])
    for extra in extras:
        if isinstance(extra["bbox"], str):  # Airflow 3.1: lists and objects of alias events as JSON text
            extra = {
                **extra,
                "bbox": json.loads(extra["bbox"]),
                "data_assets": json.loads(extra["data_assets"]),
            }
        assert extra["href"] in hrefs and extra["job_id"] == job_id and extra["process_id"] == "water-stac"
        assert extra["server"] == pygeoapi_server.url and len(extra["bbox"]) == 4 and extra["datetime"]
        assert extra["data_assets"] and all(
            h.startswith("s3://results/") for h in extra["data_assets"].values()
        )
    # The extra links the UI shows are resolved on the worker into these XComs.
    assert stack.xcom("ogc_submit_consume", run_id, "submit", key="_link_OGCJobLink") == job_url
    assert (
        stack.xcom("ogc_submit_consume", run_id, "submit", key="_link_OGCJobResultsLink")
        == f"{job_url}/results"
    )

    # The wait happened in the triggerer (no worker slot held), which logged the job's progress.
    trigger_logs = "\n".join(stack.trigger_logs("ogc_submit_consume", run_id, "submit").values())
    assert f"Job {job_id}: successful, progress 100%" in trigger_logs
    task_log = stack.task_log("ogc_submit_consume", run_id, "submit")
    assert f"Job {job_id} of process water-stac: {job_url}" in task_log
    assert "2 STAC item(s) from output(s) stac_catalog" in task_log


def test_sensor_waits_for_a_job_submitted_by_another_task(stack: AirflowStack) -> None:
    run_id = stack.trigger_dag("ogc_sleep_then_sense")
    assert stack.wait_for_run("ogc_sleep_then_sense", run_id, timeout=180) == "success", explain(
        stack, "ogc_sleep_then_sense", run_id
    )
    job_id = stack.xcom("ogc_sleep_then_sense", run_id, "start")
    final = stack.xcom("ogc_sleep_then_sense", run_id, "wait")
    assert final["job_id"] == job_id and final["status"] == "successful"
    assert stack.trigger_logs("ogc_sleep_then_sense", run_id, "wait"), "the sensor deferred"


def test_marking_the_task_failed_dismisses_the_job(
    stack: AirflowStack, hook_for: Any, pygeoapi_server: RunningServer
) -> None:
    if stack.airflow_version < (3, 3):
        pytest.skip("triggers learn of a user's action (on_kill) from Airflow 3.3")
    from airflow_provider_ogc.exceptions import OGCProcessesAPIError

    run_id = stack.trigger_dag("ogc_long_job")
    stack.wait_for_task_state("ogc_long_job", run_id, "long", ["deferred"], timeout=90)
    stack.wait_until(
        "the trigger to start", 30, lambda: stack.trigger_logs("ogc_long_job", run_id, "long") or None
    )
    job_id = stack.xcom("ogc_long_job", run_id, "long", key="job_id")
    hook = hook_for(pygeoapi_server.url)
    assert hook.get_job_status(job_id).status.value in ("accepted", "running")

    stack.set_task_state("ogc_long_job", run_id, "long", "failed")

    def dismissed() -> bool | None:
        try:
            hook.get_job_status(job_id)
        except OGCProcessesAPIError as err:
            return err.http_status == 404 or None  # pygeoapi deletes a dismissed job's record
        return None

    stack.wait_until("the job to be dismissed", 60, dismissed)
    logs = "\n".join(stack.trigger_logs("ogc_long_job", run_id, "long").values())
    assert f"Dismissed job {job_id}" in logs


def test_a_retry_reattaches_to_the_job_of_the_crashed_try(
    stack: AirflowStack, hook_for: Any, pygeoapi_server: RunningServer
) -> None:
    # Airflow 3.3 keeps the job in the task state store; 3.1 and 3.2 in a per-task-instance Variable.
    hook = hook_for(pygeoapi_server.url)
    before = {job.job_id for job in hook.list_jobs()}
    run_id = stack.trigger_dag("ogc_retry_reattach")
    assert stack.wait_for_run("ogc_retry_reattach", run_id, timeout=180) == "success", explain(
        stack, "ogc_retry_reattach", run_id
    )
    first_try = stack.task_log("ogc_retry_reattach", run_id, "submit", try_number=1)
    second_try = stack.task_log("ogc_retry_reattach", run_id, "submit", try_number=2)
    assert "simulated worker crash after submitting job" in first_try
    new_jobs = {job.job_id for job in hook.list_jobs()} - before
    assert len(new_jobs) == 1, f"exactly one submission, got {new_jobs}"
    (job_id,) = new_jobs
    assert f"Reattaching to job {job_id} of an earlier try" in second_try
    assert stack.xcom("ogc_retry_reattach", run_id, "submit", key="job_id") == job_id
