"""A DAG file that imports the provider stays cheap to parse: heavy modules load only in execute()."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("httpx", "pystac", "jsonschema", "tenacity", "boto3", "botocore", "rasterio", "numpy")

PROBE = """
import json, sys
import airflow.sdk
before = set(sys.modules)
from airflow_provider_ogc.operators import ExecuteProcessOperator
from airflow_provider_ogc.sensors import JobStatusSensor
from airflow_provider_ogc.links import OGCJobLink
with airflow.sdk.DAG("probe", schedule=None):
    ExecuteProcessOperator(task_id="t", process_id="p", inputs={})
    JobStatusSensor(task_id="s", job_id="j")
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_operator_and_sensor_imports_load_no_heavy_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == [], f"imported at DAG parse time: {heavy}"
    assert "airflow_provider_ogc.operators.ogc_processes" in loaded
