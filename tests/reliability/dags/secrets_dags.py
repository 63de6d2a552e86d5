"""DAGs for ``tests/reliability/test_secrets.py``: every kind of credential the provider handles.

The connections come from ``AIRFLOW_CONN_*`` variables set by the test, holding distinctive
secrets that the test then looks for in the task logs, the XComs and the whole metadata database:

* ``secrets_provider`` runs the provider as users do: a deferrable job with a bearer token, a job
  polled on the worker with basic auth, a job watched by a deferrable sensor with an API key and
  sensitive extra headers, and an S3 read with an access key pair and session token.
* ``secrets_forced_logs`` logs those secrets on purpose, the way careless task code would, so the
  test can see Airflow's masker replace each one with ``***`` in the task log.
"""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_ogc.operators import ExecuteProcessOperator
from airflow_provider_ogc.sensors import JobStatusSensor

SCENES = ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_043033_20231201_02_T1"]
BEARER, BASIC, API_KEY, AWS = "secrets_bearer", "secrets_basic", "secrets_api_key", "secrets_aws"
S3_OBJECT = "s3://secrets-bucket/catalog/item.json"

with DAG(
    "secrets_provider",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # job_seconds renders as a number. Under a real scheduler, jobs that end well after their task
    # defers avoid Airflow 3.3.2's stale-event race (apache/airflow#67287); `dags test` can use 1.
    render_template_as_native_obj=True,
    params={"job_seconds": 25},
):
    bearer = ExecuteProcessOperator(
        task_id="bearer_job",
        ogc_conn_id=BEARER,
        process_id="sleep",
        inputs={"seconds": "{{ params.job_seconds }}"},
        poll_interval=0.5,
        max_poll_interval=2,
    )
    basic = ExecuteProcessOperator(
        task_id="basic_job",
        ogc_conn_id=BASIC,
        process_id="water-stac",
        inputs={"item_ids": SCENES},
        deferrable=False,
        poll_interval=0.2,
        max_poll_interval=1,
    )
    api_key = ExecuteProcessOperator(
        task_id="api_key_job",
        ogc_conn_id=API_KEY,
        process_id="sleep",
        inputs={"seconds": "{{ params.job_seconds }}"},
        wait_for_completion=False,
    )
    sensor = JobStatusSensor(
        task_id="api_key_sensor",
        ogc_conn_id=API_KEY,
        job_id="{{ ti.xcom_pull(task_ids='api_key_job', key='job_id') }}",
        poke_interval=0.5,
        max_poll_interval=2,
        timeout=600,
    )
    api_key >> sensor

    @task
    def read_s3() -> str:
        from airflow_provider_ogc.s3 import S3Reader

        return str(S3Reader(AWS).read_json(S3_OBJECT)["id"])

    read_s3()


with DAG("secrets_forced_logs", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def force_leaks() -> str:
        """Log each secret through the task logger and stdout: the masker must hide every one."""
        import httpx
        from airflow.sdk import BaseHook

        from airflow_provider_ogc.hooks import OGCProcessesHook
        from airflow_provider_ogc.s3 import S3Reader

        log = logging.getLogger("airflow.task")
        for conn_id in (BEARER, BASIC, API_KEY):
            conn = BaseHook.get_connection(conn_id)
            log.info("FORCED %s password: %s", conn_id, conn.password)
            log.info("FORCED %s connection: %r", conn_id, conn)
            print(f"FORCED {conn_id} print: {conn.password}")
            hook = OGCProcessesHook(ogc_conn_id=conn_id)
            log.info("FORCED %s settings: %r", conn_id, hook.settings)
            # The headers exactly as the hook sends them to its own server.
            request = next(hook.settings.auth().auth_flow(httpx.Request("GET", hook.settings.url(""))))
            for name, value in request.headers.items():
                log.info("FORCED %s header %s: %s", conn_id, name, value)
        aws = BaseHook.get_connection(AWS)
        S3Reader(AWS).client  # noqa: B018 - builds the boto3 client from the connection
        log.info("FORCED %s secret key: %s", AWS, aws.password)
        log.info("FORCED %s session token: %s", AWS, aws.extra_dejson["aws_session_token"])
        print(f"FORCED {AWS} print: {aws.password}")
        return "logged"

    force_leaks()
