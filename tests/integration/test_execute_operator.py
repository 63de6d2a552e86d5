"""ExecuteProcessOperator against real servers: submit, defer, trigger, complete; and every way it fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_ogc._compat import AirflowFailException, TaskDeferred
from airflow_provider_ogc.exceptions import OGCJobFailedError
from airflow_provider_ogc.models import JobStatus
from airflow_provider_ogc.operators import ExecuteProcessOperator
from airflow_provider_ogc.triggers import OGCJobTrigger
from tests.servers.launch import RunningServer
from tests.support.context import MemoryStateStore, make_context, run_trigger
from tests.support.jobs import wait_for_job
from tests.support.replay_server import ReplayServer, Reply
from tests.support.seed import seed_feature_collection

pytestmark = pytest.mark.integration
SCENES = ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_043033_20231201_02_T1"]


def operator(conn_id: str, **kwargs: Any) -> ExecuteProcessOperator:
    kwargs.setdefault("process_id", "water-stac")
    kwargs.setdefault("inputs", {"item_ids": SCENES})
    return ExecuteProcessOperator(task_id="submit", ogc_conn_id=conn_id, poll_interval=0.2, **kwargs)


def test_deferrable_submit_trigger_complete(server: RunningServer, make_conn: Any) -> None:
    op = operator(make_conn(server.url))
    context = make_context()

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)

    ti = context["ti"]
    job_id = ti.xcoms["job_id"]
    assert ti.xcoms["job_url"] == f"{server.url}/jobs/{job_id}", "job id and URL are pushed before waiting"
    trigger = deferred.value.trigger
    assert isinstance(trigger, OGCJobTrigger) and deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_ogc.triggers.ogc_processes.OGCJobTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs and "password" not in json.dumps(kwargs)

    event = run_trigger(trigger)
    assert (
        event["status"] == "successful"
        and event["job_id"] == job_id
        and event["job"]["status"] == "successful"
    )

    hrefs = op.execute_complete(context, event)
    assert [h.rsplit("/", 1)[1] for h in hrefs] == [f"{s}.json" for s in SCENES]
    assert all(h.startswith("s3://results/") for h in hrefs)
    assert set(ti.xcoms["asset_hrefs"]) == set(SCENES)
    assert ti.xcoms["asset_hrefs"][SCENES[0]]["data"].endswith(f"/{SCENES[0]}/otsu.tif")
    assert context["task_state_store"].values == {}, "the job is forgotten once the task succeeded"


def test_non_deferrable_polls_on_the_worker(server: RunningServer, make_conn: Any) -> None:
    op = operator(make_conn(server.url), deferrable=False)
    hrefs = op.execute(make_context())
    assert len(hrefs) == 2


def test_results_without_stac_are_returned_as_they_are(server: RunningServer, make_conn: Any) -> None:
    op = operator(
        make_conn(server.url), process_id="echo", inputs={"message": "hi", "count": 2}, deferrable=False
    )
    assert op.execute(make_context()) == {"echo": "hi hi"}


def test_wait_for_completion_false_returns_the_job_id(
    server: RunningServer, make_conn: Any, hook_for: Any
) -> None:
    op = operator(make_conn(server.url), wait_for_completion=False)
    context = make_context()
    job_id = op.execute(context)
    assert job_id == context["ti"].xcoms["job_id"]
    wait_for_job(hook_for(server.url), job_id)


def test_synchronous_answer_gives_the_same_outcome(
    replay: ReplayServer, make_conn: Any, shared_dir: Any
) -> None:
    # A server that ignores Prefer and answers 200 with ZOO-shaped results (the seed's).
    replay.route(
        "POST",
        "/ogc/processes/water-bodies/execution",
        Reply(200, {"stac_catalog": {"value": seed_feature_collection(shared_dir)}}),
    )
    op = operator(make_conn(f"{replay.url}/ogc"), process_id="water-bodies", validate_inputs=False)
    context = make_context()
    hrefs = op.execute(context)
    assert len(hrefs) == 2 and hrefs[0].endswith("LC08_L2SP_044032_20231208_02_T1.json")
    assert "job_id" not in context["ti"].xcoms


def test_templated_fields_and_mapping() -> None:
    assert {"process_id", "inputs", "outputs"} <= set(ExecuteProcessOperator.template_fields)
    from airflow.sdk import DAG

    with DAG("mapped", schedule=None):
        mapped = ExecuteProcessOperator.partial(task_id="m", process_id="echo").expand(
            inputs=[{"message": "a"}, {"message": "b"}]
        )
    assert mapped.expand_input.value["inputs"] == [{"message": "a"}, {"message": "b"}]


def test_unknown_process_fails_fast_without_retry(
    server: RunningServer, make_conn: Any, hook_for: Any
) -> None:
    before = len(hook_for(server.url).list_jobs())
    with pytest.raises(
        AirflowFailException, match=r"Process 'water-bodie' does not exist on http://127\.0\.0\.1"
    ):
        operator(make_conn(server.url), process_id="water-bodie").execute(make_context())
    assert len(hook_for(server.url).list_jobs()) == before, "nothing was submitted"


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({}, "'item_ids' is required but missing"),
        ({"item_ids": "LC08"}, "'item_ids': 'LC08' is not of type 'array'"),
        ({"item_ids": SCENES, "aoi": "1,2,3,4"}, "'aoi' is not an input of this process"),
    ],
)
def test_invalid_inputs_fail_fast_naming_the_input(
    server: RunningServer, make_conn: Any, inputs: dict[str, Any], named: str
) -> None:
    with pytest.raises(AirflowFailException, match="Invalid inputs for process 'water-stac'") as caught:
        operator(make_conn(server.url), inputs=inputs).execute(make_context())
    assert named in str(caught.value)


def test_failed_job_fails_the_task_with_the_servers_message(server: RunningServer, make_conn: Any) -> None:
    op = operator(make_conn(server.url), process_id="fail", inputs={"message": "no cloud-free pixels"})
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    event = run_trigger(deferred.value.trigger)
    assert event["status"] == "failed"
    with pytest.raises(OGCJobFailedError, match=r"ended failed: .*no cloud-free pixels") as caught:
        op.execute_complete(context, event)
    assert context["ti"].xcoms["job_url"] in str(caught.value)
    assert context["task_state_store"].values == {}, "a failed job is forgotten: a retry submits anew"


def test_timeout_dismisses_the_job(wraptile_server: RunningServer, make_conn: Any, hook_for: Any) -> None:
    op = operator(make_conn(wraptile_server.url), process_id="sleep", inputs={"seconds": 30}, timeout=1.5)
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    event = run_trigger(deferred.value.trigger)
    assert event["status"] == "timeout" and "dismissed" in event["message"]
    with pytest.raises(OGCJobFailedError, match="did not finish before its deadline"):
        op.execute_complete(context, event)
    status = hook_for(wraptile_server.url).get_job_status(context["ti"].xcoms["job_id"])
    assert status.status is JobStatus.DISMISSED


def test_execution_timeout_sets_the_trigger_deadline(server: RunningServer, make_conn: Any) -> None:
    from datetime import timedelta

    op = operator(
        make_conn(server.url),
        process_id="sleep",
        inputs={"seconds": 1},
        execution_timeout=timedelta(seconds=60),
    )
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    started = context["ti"].start_date.timestamp()
    assert started + 50 < deferred.value.trigger.deadline <= started + 55
    run_trigger(deferred.value.trigger)


def test_worker_on_kill_dismisses(wraptile_server: RunningServer, make_conn: Any, hook_for: Any) -> None:
    op = operator(make_conn(wraptile_server.url), process_id="sleep", inputs={"seconds": 30})
    context = make_context()
    with pytest.raises(TaskDeferred):
        op.execute(context)
    op.on_kill()
    job_id = context["ti"].xcoms["job_id"]
    assert hook_for(wraptile_server.url).get_job_status(job_id).status is JobStatus.DISMISSED


def test_on_kill_never_raises(make_conn: Any) -> None:
    from tests.servers.launch import free_port

    op = operator(make_conn(f"http://127.0.0.1:{free_port()}", extra={"max_retries": 0}))
    op._job_id = "gone"
    op.on_kill()  # the server is unreachable: logged, not raised


async def test_trigger_on_kill_dismisses(
    wraptile_server: RunningServer, make_conn: Any, hook_for: Any
) -> None:
    import asyncio

    hook = hook_for(wraptile_server.url)
    job_id = hook.execute_process("sleep", {"seconds": 30}).job_id
    trigger = OGCJobTrigger(job_id=job_id, ogc_conn_id=make_conn(wraptile_server.url))
    await trigger.on_kill()
    status = await asyncio.to_thread(hook.get_job_status, job_id)
    assert status.status is JobStatus.DISMISSED


def test_retry_reattaches_to_a_running_job(
    wraptile_server: RunningServer, make_conn: Any, hook_for: Any
) -> None:
    conn_id = make_conn(wraptile_server.url)
    store = MemoryStateStore()
    first = make_context(store)
    with pytest.raises(TaskDeferred):
        operator(conn_id, process_id="sleep", inputs={"seconds": 3}).execute(first)
    job_id = first["ti"].xcoms["job_id"]
    assert store.values["ogc_job"]["job_id"] == job_id

    # The worker died; the retry runs execute() again with the same task state store.
    retry = make_context(store)
    with pytest.raises(TaskDeferred) as deferred:
        operator(conn_id, process_id="sleep", inputs={"seconds": 3}).execute(retry)
    assert deferred.value.trigger.job_id == job_id and retry["ti"].xcoms["job_id"] == job_id
    jobs = [j for j in hook_for(wraptile_server.url).list_jobs() if j.process_id == "sleep"]
    assert sum(j.job_id == job_id for j in jobs) == 1
    run_trigger(deferred.value.trigger)


def test_retry_after_success_returns_results_without_resubmitting(
    server: RunningServer, make_conn: Any, hook_for: Any
) -> None:
    conn_id = make_conn(server.url)
    job_id = hook_for(server.url).execute_process("water-stac", {"item_ids": SCENES}).job_id
    wait_for_job(hook_for(server.url), job_id)
    store = MemoryStateStore({"ogc_job": {"job_id": job_id, "job_url": f"{server.url}/jobs/{job_id}"}})
    context = make_context(store)
    hrefs = operator(conn_id).execute(context)
    assert len(hrefs) == 2 and context["ti"].xcoms["job_id"] == job_id


@pytest.mark.parametrize("prior", ["failed", "gone"])
def test_retry_resubmits_when_the_old_job_failed_or_is_gone(
    server: RunningServer, make_conn: Any, hook_for: Any, prior: str
) -> None:
    hook = hook_for(server.url)
    if prior == "failed":
        old = hook.execute_process("fail", {"message": "x"}).job_id
        wait_for_job(hook, old)
    else:
        old = "no-such-job"
    context = make_context(MemoryStateStore({"ogc_job": {"job_id": old, "job_url": "x"}}))
    with pytest.raises(TaskDeferred) as deferred:
        operator(make_conn(server.url)).execute(context)
    assert deferred.value.trigger.job_id != old
    run_trigger(deferred.value.trigger)


def test_oversized_results_are_refused(server: RunningServer, make_conn: Any) -> None:
    op = operator(
        make_conn(server.url),
        process_id="echo",
        inputs={"message": "x" * 200, "count": 10},
        deferrable=False,
        max_result_bytes=1000,
    )
    with pytest.raises(AirflowFailException, match=r"more than max_result_bytes \(1000\)"):
        op.execute(make_context())
