"""DAGs of the OGC jobs page's system test (tests/system/test_ui_plugin.py): the dev stack's
water-bodies job in two DAGs, one of which the test-only auth manager hides from one user."""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_ogc.operators import ExecuteProcessOperator

# The dev stack's example inputs (its two scenes); parsing needs no network and no stack.
INPUTS = json.loads(os.environ.get("OGC_DEV_EXAMPLE_INPUTS") or "{}")

for dag_id in ("ogc_ui_water", "ogc_ui_secret"):
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        ExecuteProcessOperator(
            task_id="detect_water_bodies",
            process_id="water-bodies",
            inputs=INPUTS,
            aws_conn_id="aws_default",
            poll_interval=0.5,
            max_poll_interval=1,
        )

# A job that fails on the server: its only scene does not exist in the STAC API.
STAC_API = os.environ.get("OGC_DEV_STAC_API_URL") or "http://127.0.0.1:9"
with DAG("ogc_ui_failing", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    ExecuteProcessOperator(
        task_id="detect_water_bodies",
        process_id="water-bodies",
        inputs={**INPUTS, "stac_items": [f"{STAC_API}/collections/landsat-c2-l2/items/NO_SUCH_SCENE"]},
        aws_conn_id="aws_default",
        poll_interval=0.5,
        max_poll_interval=1,
        retries=0,
    )
