"""The parse-cost baseline: ``example_dags/water_bodies.py``'s DAG built from ``airflow.sdk`` alone.

Same DAG arguments, params, tasks, mapping and dependencies; the provider's ``StacSearchOperator`` and
``ExecuteProcessOperator`` are replaced by plain ``BaseOperator`` subclasses taking the same arguments
(and templating the same fields), so the difference in parse time is what importing and building the
provider's operators costs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, AssetAlias, BaseOperator, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable


class StacSearch(BaseOperator):
    template_fields = ("collections", "bbox", "datetime", "filter")

    def __init__(
        self, *, collections: str, bbox: str, datetime: str, filter: str, max_items: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.collections = collections
        self.bbox = bbox
        self.datetime = datetime
        self.filter = filter
        self.max_items = max_items

    def execute(self, context: Any) -> list[str]:
        return []


class ExecuteProcess(BaseOperator):
    template_fields = ("process_id", "inputs", "stac_output")

    def __init__(
        self, *, process_id: str, inputs: dict[str, Any], stac_output: str, timeout: timedelta, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.process_id = process_id
        self.inputs = inputs
        self.stac_output = stac_output
        self.timeout = timeout

    def execute(self, context: Any) -> list[str]:
        return []


with DAG(
    dag_id="water_bodies",
    description="NDWI + Otsu water masks for each week's Landsat scenes",
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=datetime(2023, 11, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "aoi": Param("-121.399,39.834,-120.74,40.472", type="string", description="minx,miny,maxx,maxy"),
        "max_cloud_cover": Param(20, type="number", description="eo:cloud_cover below this (%)"),
        "epsg": Param("EPSG:4326", type="string"),
        "bands": Param(["green", "nir08"], type="array"),
    },
    tags=["ogc", "earth-observation", "stac"],
) as dag:
    find_scenes = StacSearch(
        task_id="find_scenes",
        collections="landsat-c2-l2",
        bbox="{{ params.aoi | tojson }}",
        datetime="{{ data_interval_start | ts }}/{{ data_interval_end | ts }}",
        filter="eo:cloud_cover < {{ params.max_cloud_cover }}",
        max_items=50,
    )

    detect = ExecuteProcess(
        task_id="detect_water_bodies",
        process_id="water-bodies",
        inputs={
            "stac_items": find_scenes.output,
            "aoi": "{{ params.aoi | tojson }}",
            "epsg": "{{ params.epsg | tojson }}",
            "bands": "{{ params.bands }}",
        },
        stac_output="stac_catalog",
        timeout=timedelta(hours=2),
        outlets=[AssetAlias("water-bodies-results")],
    )

    @task(map_index_template="{{ item_id }}")
    def water_area(item_href: str) -> dict[str, Any]:
        """Read one result item and its water mask from S3; measure the water."""
        return {"item_href": item_href}

    @task
    def report(areas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(areas)

    report(water_area.expand(item_href=detect.output))  # type: ignore[arg-type]
