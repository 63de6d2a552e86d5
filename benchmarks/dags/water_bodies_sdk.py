"""The parse-cost baseline: ``example_dags/water_bodies.py``'s DAG built from ``airflow.sdk`` alone.

Same DAG arguments, params, tasks, mapping and dependencies; the provider's ``ExecuteProcessOperator``
is replaced by a plain ``BaseOperator`` subclass taking the same arguments (and templating the same
fields), so the difference in parse time is what importing and building the provider's operator costs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, AssetAlias, BaseOperator, Param, task

PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items"


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
    description="NDWI + Otsu water masks for Landsat scenes, every week",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "stac_items": Param(
            [
                f"{PLANETARY_COMPUTER}/LC08_L2SP_044032_20231208_02_T1",
                f"{PLANETARY_COMPUTER}/LC08_L2SP_043033_20231201_02_T1",
            ],
            type="array",
            description="STAC Item URLs of the Landsat scenes",
        ),
        "aoi": Param("-121.399,39.834,-120.74,40.472", type="string", description="minx,miny,maxx,maxy"),
        "epsg": Param("EPSG:4326", type="string"),
        "bands": Param(["green", "nir08"], type="array"),
    },
    tags=["ogc", "earth-observation", "stac"],
) as dag:
    detect = ExecuteProcess(
        task_id="detect_water_bodies",
        process_id="water-bodies",
        inputs={
            "stac_items": "{{ params.stac_items }}",
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
