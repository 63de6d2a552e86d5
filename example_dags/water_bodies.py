"""Weekly water-bodies detection on an OGC API - Processes platform, results read from S3.

The seed's notebook, as a DAG: submit ``water-bodies`` (Landsat green + NIR, NDWI, Otsu threshold),
wait in the triggerer without holding a worker slot, then map one task per STAC item that reads the
item and its ``otsu.tif`` from S3 and logs the water area in km2.

Connections: ``ogc_processes_default`` (the OGC API root) and ``aws_default`` (keys, ``endpoint_url``
and ``region_name`` in extras: AWS S3, MinIO, LocalStack or moto alike). Inputs are DAG params, so a
manual run (or ``airflow dags test water_bodies -c '{...}'``) can point at other scenes or another AOI.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_provider_ogc.operators import ExecuteProcessOperator

PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items"

with DAG(
    dag_id="water_bodies",
    description="NDWI + Otsu water masks for Landsat scenes, every week",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,  # list params stay lists in the execute request
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
    detect = ExecuteProcessOperator(
        task_id="detect_water_bodies",
        process_id="water-bodies",
        # Native rendering keeps lists as lists; "| tojson" keeps "minx,miny,maxx,maxy" a string
        # (it would otherwise be read back as a tuple of numbers).
        inputs={
            "stac_items": "{{ params.stac_items }}",
            "aoi": "{{ params.aoi | tojson }}",
            "epsg": "{{ params.epsg | tojson }}",
            "bands": "{{ params.bands }}",
        },
        stac_output="stac_catalog",
        timeout=timedelta(hours=2),
        # One asset event per water mask: water_bodies_report (another team's DAG) runs on them.
        outlets=[AssetAlias("water-bodies-results")],
    )

    @task(map_index_template="{{ item_id }}")
    def water_area(item_href: str) -> dict[str, Any]:
        """Read one result item and its water mask from S3; measure the water."""
        import numpy as np
        import rasterio
        from airflow.sdk import get_current_context

        from airflow_provider_ogc.s3 import S3Reader

        s3 = S3Reader("aws_default")
        item = s3.read_item(item_href)
        get_current_context()["item_id"] = item.id  # type: ignore[typeddict-unknown-key]
        mask_href = item.assets["data"].get_absolute_href() or item.assets["data"].href
        with rasterio.MemoryFile(s3.read_bytes(mask_href)) as memory, memory.open() as mask:
            water_pixels = int(np.count_nonzero(mask.read(1) == 1))
            pixel_area = abs(mask.transform.a * mask.transform.e)
        area_km2 = water_pixels * pixel_area / 1e6
        print(f"{item.id}: {area_km2:.2f} km2 of water ({water_pixels} pixels of {pixel_area:.0f} m2)")
        return {
            "item_id": item.id,
            "item_href": item_href,
            "mask_href": mask_href,
            "water_km2": round(area_km2, 4),
        }

    @task
    def report(areas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        areas = list(areas)
        for area in areas:
            print(f"{area['item_id']:<36} {area['water_km2']:>10.2f} km2")
        print(f"{'total':<36} {sum(a['water_km2'] for a in areas):>10.2f} km2")
        return areas

    report(water_area.expand(item_href=detect.output))
