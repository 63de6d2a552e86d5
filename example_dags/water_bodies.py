"""Weekly water-bodies detection on the scenes each week brings, found by STAC search, results read from S3.

The seed's notebook, as a recurring DAG: each weekly run searches the STAC API for the Landsat scenes
acquired in its data interval over the AOI (cloud cover below a limit), submits ``water-bodies`` on
exactly those scenes (Landsat green + NIR, NDWI, Otsu threshold), waits in the triggerer without
holding a worker slot, then maps one task per result STAC item that reads the item and its
``otsu.tif`` from S3 and logs the water area in km2. A week without a matching scene ends skipped.

The run for the week of 3 to 10 December 2023 (``airflow dags test water_bodies 2023-12-10``) finds the
two scenes of the seed's paths acquired on 8 December.

Connections: ``stac_api_default`` (the STAC API root), ``ogc_processes_default`` (the OGC API root) and
``aws_default`` (keys, ``endpoint_url`` and ``region_name`` in extras: AWS S3, MinIO, LocalStack or
moto alike). The AOI and the cloud limit are DAG params, so a manual run can change them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, AssetAlias, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ogc.operators import ExecuteProcessOperator, StacSearchOperator

with DAG(
    dag_id="water_bodies",
    description="NDWI + Otsu water masks for each week's Landsat scenes",
    # Each run covers the week that just ended: data_interval_start..data_interval_end.
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    # Before the scenes of the local stack (November 2023 to January 2024), so that a run of any week
    # since (`airflow dags test water_bodies 2023-12-10`) has its tasks; catchup=False runs only the latest.
    start_date=datetime(2023, 11, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,  # lists stay lists in the execute request
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "aoi": Param("-121.399,39.834,-120.74,40.472", type="string", description="minx,miny,maxx,maxy"),
        "max_cloud_cover": Param(20, type="number", description="eo:cloud_cover below this (%)"),
        "epsg": Param("EPSG:4326", type="string"),
        "bands": Param(["green", "nir08"], type="array"),
    },
    tags=["ogc", "earth-observation", "stac"],
) as dag:
    # "| tojson" keeps "minx,miny,maxx,maxy" a string: native rendering would read it back as a tuple.
    find_scenes = StacSearchOperator(
        task_id="find_scenes",
        collections="landsat-c2-l2",
        bbox="{{ params.aoi | tojson }}",
        # STAC intervals are closed: a scene stamped exactly at midnight on Sunday falls in two weeks.
        datetime="{{ data_interval_start | ts }}/{{ data_interval_end | ts }}",
        filter="eo:cloud_cover < {{ params.max_cloud_cover }}",
        max_items=50,
    )

    detect = ExecuteProcessOperator(
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
