"""Another team's DAG: it runs whenever ``water_bodies`` publishes new water masks, as Airflow Assets.

``water_bodies``'s ``ExecuteProcessOperator`` has the outlet ``AssetAlias("water-bodies-results")``:
each result STAC item becomes an asset event whose ``extra`` names the item, its water mask, bbox
and acquisition time, and the OGC job that made it. This DAG is scheduled on that alias, reads the
events from ``triggering_asset_events`` (no XCom of the producer) and reports the water area per scene.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, AssetAlias, task

RESULTS = AssetAlias("water-bodies-results")

with DAG(
    dag_id="water_bodies_report",
    description="Water area per scene, whenever new water masks are published",
    schedule=[RESULTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["ogc", "earth-observation", "assets"],
):

    @task
    def water_area_per_scene(**context: Any) -> list[dict[str, Any]]:
        import numpy as np
        import rasterio

        from airflow_provider_ogc.assets import result_items
        from airflow_provider_ogc.s3 import S3Reader

        s3 = S3Reader("aws_default")
        report = []
        for item in result_items(context["triggering_asset_events"][RESULTS]):
            mask_href = item["data_assets"].get("data") or next(iter(item["data_assets"].values()))
            with rasterio.MemoryFile(s3.read_bytes(mask_href)) as memory, memory.open() as mask:
                water_pixels = int(np.count_nonzero(mask.read(1) == 1))
                pixel_area = abs(mask.transform.a * mask.transform.e)
            area_km2 = round(water_pixels * pixel_area / 1e6, 4)
            print(
                f"{item['item_id']} ({item['datetime']}): {area_km2:.2f} km2 of water, job {item['job_id']}"
            )
            report.append({"item_id": item["item_id"], "water_km2": area_km2, "job_id": item["job_id"]})
        return report

    water_area_per_scene()
