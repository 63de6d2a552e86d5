"""System-test DAGs: a deferrable water-stac job whose STAC hrefs feed a downstream task and, as
asset events, a DAG scheduled on them; a sensor."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, AssetAlias, task

from airflow_provider_ogc.operators import ExecuteProcessOperator
from airflow_provider_ogc.sensors import JobStatusSensor

SCENES = ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_043033_20231201_02_T1"]
RESULTS = AssetAlias("ogc-test-results")

with DAG("ogc_submit_consume", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    submit = ExecuteProcessOperator(
        task_id="submit",
        process_id="water-stac",
        inputs={"item_ids": SCENES, "bucket": "{{ params.bucket }}"},
        poll_interval=0.5,
        max_poll_interval=2,
        params={"bucket": "results"},
        outlets=[RESULTS],  # one asset event per result item
    )

    @task
    def consume(item_hrefs: list[str]) -> dict[str, object]:
        # Downstream tasks receive the STAC item hrefs through XCom, never the rasters.
        return {
            "count": len(item_hrefs),
            "ids": [h.rsplit("/", 1)[1].removesuffix(".json") for h in item_hrefs],
        }

    consume(submit.output)


with DAG("ogc_results_report", schedule=[RESULTS], start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def report(**context: object) -> list[dict[str, object]]:
        # What a downstream team's DAG gets: the items' extras, without reading the producer's XCom.
        from airflow_provider_ogc.assets import result_items

        items = result_items(context["triggering_asset_events"][RESULTS])  # type: ignore[index]
        return sorted(items, key=lambda item: str(item["item_id"]))

    report()


with DAG("ogc_sleep_then_sense", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    start = ExecuteProcessOperator(
        task_id="start",
        process_id="sleep",
        # Ends well after the sensor defers: Airflow 3.3.2 can fail a deferred task whose trigger fires
        # within ~5 s of deferring (apache/airflow#67287, #72716), whatever the trigger.
        inputs={"seconds": 12},
        wait_for_completion=False,
    )
    wait = JobStatusSensor(
        task_id="wait",
        job_id="{{ ti.xcom_pull(task_ids='start', key='job_id') }}",
        poke_interval=0.5,
        max_poll_interval=2,
        timeout=300,
    )
    start >> wait


with DAG("ogc_long_job", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    ExecuteProcessOperator(
        task_id="long", process_id="sleep", inputs={"seconds": 300}, poll_interval=0.5, max_poll_interval=2
    )
