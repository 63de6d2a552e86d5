"""A DAG file that imports the provider stays cheap to parse: heavy modules load only in execute()."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "httpx",
    "aiohttp",
    "yarl",
    "pystac",
    "jsonschema",
    "tenacity",
    "boto3",
    "botocore",
    "rasterio",
    "numpy",
    "yaml",
)

PROBE = """
import json, sys
import airflow.sdk
before = set(sys.modules)
if sys.argv[1] == "provider":
    from airflow_provider_ogc.operators import ExecuteProcessOperator
    from airflow_provider_ogc.sensors import JobStatusSensor
    with airflow.sdk.DAG("probe", schedule=None):
        ExecuteProcessOperator(task_id="t", process_id="p", inputs={})
        JobStatusSensor(task_id="s", job_id="j")
else:  # the same DAG shape from airflow.sdk alone
    with airflow.sdk.DAG("probe", schedule=None):
        airflow.sdk.BaseOperator(task_id="t")
        airflow.sdk.BaseOperator(task_id="s")
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def loaded_modules(kind: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, kind], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_operator_and_sensor_imports_load_no_heavy_module() -> None:
    ours, baseline = loaded_modules("provider"), loaded_modules("baseline")
    # Airflow itself may load some of these (3.1 loads jsonschema for DAGs); we must add none.
    added = sorted(m for m in ours - baseline if m.split(".")[0] in HEAVY)
    assert added == [], f"imported at DAG parse time by the provider: {added}"
    assert "airflow_provider_ogc.operators.ogc_processes" in ours
