"""JobStatusSensor on real servers in poke, reschedule-style and deferrable use."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk import PokeReturnValue

from airflow_provider_ogc._compat import AirflowFailException, AirflowSensorTimeout, TaskDeferred
from airflow_provider_ogc.sensors import JobStatusSensor
from tests.servers.launch import RunningServer
from tests.support.context import make_context, run_trigger
from tests.support.jobs import wait_for_job

pytestmark = pytest.mark.integration


def sensor(conn_id: str, job_id: str, **kwargs: Any) -> JobStatusSensor:
    return JobStatusSensor(task_id="wait", job_id=job_id, ogc_conn_id=conn_id, poke_interval=0.2, **kwargs)


def test_poke_while_running_then_success(server: RunningServer, make_conn: Any, hook_for: Any) -> None:
    hook = hook_for(server.url)
    job_id = hook.execute_process("sleep", {"seconds": 1}).job_id
    s = sensor(make_conn(server.url), job_id, deferrable=False)
    context = make_context()
    assert s.poke(context) is False
    assert context["ti"].xcoms["job_url"] == f"{server.url}/jobs/{job_id}"
    wait_for_job(hook, job_id)
    done = s.poke(context)
    assert isinstance(done, PokeReturnValue) and done.is_done and done.xcom_value["status"] == "successful"


def test_failed_job_fails_the_sensor_without_retry(
    server: RunningServer, make_conn: Any, hook_for: Any
) -> None:
    hook = hook_for(server.url)
    job_id = hook.execute_process("fail", {"message": "bad scene"}).job_id
    wait_for_job(hook, job_id)
    with pytest.raises(AirflowFailException, match=f"Job {job_id} ended failed: .*bad scene"):
        sensor(make_conn(server.url), job_id).poke(make_context())


def test_unknown_job_fails_fast(server: RunningServer, make_conn: Any) -> None:
    with pytest.raises(AirflowFailException, match="HTTP 404"):
        sensor(make_conn(server.url), "no-such-job").poke(make_context())


def test_deferrable_sensor(server: RunningServer, make_conn: Any, hook_for: Any) -> None:
    job_id = hook_for(server.url).execute_process("sleep", {"seconds": 1}).job_id
    s = sensor(make_conn(server.url), job_id, timeout=60)
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(context)
    trigger = deferred.value.trigger
    assert trigger.dismiss_on_kill is False and trigger.dismiss_on_timeout is False, (
        "the sensor does not own the job"
    )
    event = run_trigger(trigger)
    assert s.execute_complete(context, event)["status"] == "successful"


def test_deferrable_sensor_on_a_finished_job_does_not_defer(
    server: RunningServer, make_conn: Any, hook_for: Any
) -> None:
    hook = hook_for(server.url)
    job_id = hook.execute_process("echo", {"message": "x"}).job_id
    wait_for_job(hook, job_id)
    assert sensor(make_conn(server.url), job_id).execute(make_context())["job_id"] == job_id


def test_sensor_timeout(server: RunningServer, make_conn: Any) -> None:
    s = sensor(make_conn(server.url), "j")
    with pytest.raises(AirflowSensorTimeout, match="still running"):
        s.execute_complete(make_context(), {"status": "timeout", "job_id": "j", "message": None, "job": None})


def test_job_id_is_templated() -> None:
    assert JobStatusSensor.template_fields == ("job_id",)
