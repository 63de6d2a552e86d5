"""Release a new version of an application package: deploy it, run it, consume its STAC, undeploy it.

OGC API - Processes Part 2 from a DAG: the CWL water-bodies package is deployed (or replaced, if a
version is already there), executed like any process, its STAC item hrefs are handed on, and the
process is undeployed at the end, even when an upstream task failed.

Params: ``package`` is the path of the CWL file (default: the local-commands package of the dev
stack, ``dev/part2/packages/water-bodies.cwl``) and the execute inputs as in ``water_bodies``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, task

from airflow_provider_ogc.operators import (
    DeployProcessOperator,
    ExecuteProcessOperator,
    UndeployProcessOperator,
)

PACKAGE = str(Path(__file__).resolve().parent.parent / "dev" / "part2" / "packages" / "water-bodies.cwl")
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1/collections/landsat-c2-l2/items"

with DAG(
    dag_id="deploy_water_bodies",
    description="Deploy, run and undeploy the water-bodies CWL application package",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "package": Param(PACKAGE, type="string", description="path of the CWL application package"),
        "stac_items": Param(
            [
                f"{PLANETARY_COMPUTER}/LC08_L2SP_044032_20231208_02_T1",
                f"{PLANETARY_COMPUTER}/LC08_L2SP_043033_20231201_02_T1",
            ],
            type="array",
        ),
        "aoi": Param("-121.399,39.834,-120.74,40.472", type="string"),
    },
    tags=["ogc", "part2", "cwl"],
):
    deploy = DeployProcessOperator(
        task_id="deploy",
        package="{{ params.package | tojson }}",
        workflow_id="water-bodies",
        if_exists="replace",
    )

    run = ExecuteProcessOperator(
        task_id="detect_water_bodies",
        process_id="{{ ti.xcom_pull(task_ids='deploy') | tojson }}",
        inputs={
            "stac_items": "{{ params.stac_items }}",
            "aoi": "{{ params.aoi | tojson }}",
            "epsg": "EPSG:4326",
            "bands": ["green", "nir08"],
        },
        stac_output="stac_catalog",
        timeout=timedelta(hours=2),
    )

    @task
    def consume(item_hrefs: list[str]) -> int:
        for href in item_hrefs:
            print(f"STAC item: {href}")
        return len(item_hrefs)

    undeploy = UndeployProcessOperator(
        task_id="undeploy",
        process_id="{{ ti.xcom_pull(task_ids='deploy') | tojson }}",
        ignore_missing=True,
        trigger_rule="all_done",  # clean up even when the run or the consumer failed
    )

    deploy >> run
    consume(run.output) >> undeploy
