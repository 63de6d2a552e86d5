"""Water bodies on new scenes: the water-bodies job runs on each batch of new Landsat scenes.

An ``AssetWatcher`` polls the STAC API's ``/search`` (collection ``landsat-c2-l2``, the AOI, cloud
cover below 20%) from the triggerer; each batch of new items is one asset event, and one run of this
DAG submits ``water-bodies`` on exactly those items. The scenes already in the catalog when the watcher
first starts are not processed; a restarted triggerer goes on where it stopped.

Connections: ``stac_api_default`` (the STAC API root, read in the triggerer), ``ogc_processes_default``
(the OGC API root) and ``aws_default`` (for the results on S3, as in ``water_bodies``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_ogc.operators import ExecuteProcessOperator
from airflow_provider_ogc.triggers import NewStacItemsTrigger

AOI = [-121.399, 39.834, -120.74, 40.472]

NEW_SCENES = Asset(
    "landsat-c2-l2-new-scenes",
    watchers=[
        AssetWatcher(
            name="new_landsat_scenes",
            trigger=NewStacItemsTrigger(
                collections="landsat-c2-l2",
                bbox=AOI,
                filter="eo:cloud_cover < 20",
                poll_interval=600,  # seconds between two searches
            ),
        )
    ],
)

with DAG(
    dag_id="water_bodies_on_new_scenes",
    description="NDWI + Otsu water masks for each batch of new Landsat scenes",
    schedule=[NEW_SCENES],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["ogc", "earth-observation", "stac"],
):

    @task
    def new_scenes(**context: Any) -> list[str]:
        """The hrefs of the items the watcher reported (several events if batches queued up)."""
        events = context["triggering_asset_events"][NEW_SCENES]
        return [item["href"] for event in events for item in event.extra["payload"]["items"]]

    ExecuteProcessOperator(
        task_id="detect_water_bodies",
        process_id="water-bodies",
        inputs={
            "stac_items": new_scenes(),
            "aoi": ",".join(str(v) for v in AOI),
            "epsg": "EPSG:4326",
            "bands": ["green", "nir08"],
        },
    )
