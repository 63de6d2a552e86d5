"""Water bodies for several areas of interest at once: one OGC job per AOI, with dynamic task mapping.

Each AOI becomes its own mapped ``ExecuteProcessOperator`` (its own job, own retries, own "OGC job"
link); the STAC item hrefs of all jobs are then flattened into one list for downstream tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_ogc.operators import ExecuteProcessOperator

PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items"

with DAG(
    dag_id="water_bodies_by_aoi",
    description="One water-bodies job per area of interest",
    schedule="@monthly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "stac_items": Param(
            [
                f"{PLANETARY_COMPUTER}/LC08_L2SP_044032_20231208_02_T1",
                f"{PLANETARY_COMPUTER}/LC08_L2SP_043033_20231201_02_T1",
            ],
            type="array",
        ),
        "aois": Param(
            {
                "lake_almanor": "-121.399,39.834,-121.05,40.15",
                "butt_valley": "-121.05,40.15,-120.74,40.472",
            },
            type="object",
            description="name -> minx,miny,maxx,maxy (EPSG:4326)",
        ),
    },
    tags=["ogc", "earth-observation", "stac", "mapping"],
):

    @task
    def execute_requests(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One execute request's inputs per AOI (runs at run time: params may come from the trigger)."""
        assert params is not None
        return [
            {"stac_items": params["stac_items"], "aoi": aoi, "epsg": "EPSG:4326", "bands": ["green", "nir08"]}
            for aoi in params["aois"].values()
        ]

    detect = ExecuteProcessOperator.partial(
        task_id="detect_water_bodies",
        process_id="water-bodies",
        stac_output="stac_catalog",
        timeout=timedelta(hours=2),
    ).expand(inputs=execute_requests())

    @task
    def all_items(hrefs_per_aoi: list[list[str]]) -> list[str]:
        hrefs = [href for hrefs in hrefs_per_aoi for href in hrefs]
        print(f"{len(hrefs)} STAC items from {len(list(hrefs_per_aoi))} jobs")
        return hrefs

    all_items(detect.output)
