"""The example DAGs: they parse cheaply with no network, and run end to end against the local stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example_dags"
AIRFLOW = str(Path(sys.executable).parent / "airflow")

PARSE_WITHOUT_NETWORK = """
import json, socket, sys, time

def refuse(*args, **kwargs):
    raise AssertionError(f"network access at DAG parse time: {args}")

socket.socket.connect = refuse
socket.create_connection = refuse
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "seconds": time.perf_counter() - started}))
"""


def test_example_dags_parse_without_errors_or_network() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    out = subprocess.run(
        [sys.executable, "-c", PARSE_WITHOUT_NETWORK, str(EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert parsed["dags"] == [
        "deploy_water_bodies",
        "water_bodies",
        "water_bodies_by_aoi",
        "water_bodies_on_new_scenes",
        "water_bodies_report",
    ]


@pytest.fixture
def stack_env(dev_stack: Any, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {
        **os.environ,
        **dev_stack.env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=env, timeout=300)
    return env


def dags_test(env: dict[str, str], dag_id: str, conf: dict[str, Any], logical_date: str | None = None) -> str:
    result = subprocess.run(
        [AIRFLOW, "dags", "test", dag_id, *([logical_date] if logical_date else []), "-c", json.dumps(conf)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "state=success" in output, output[-5000:]
    return output


def processed_scenes(output: str) -> list[str]:
    """The scenes whose water area the run's mapped tasks measured."""
    return sorted(
        line.split(":")[0] for line in output.splitlines() if line.endswith(" m2)") and "km2 of water" in line
    )


@pytest.mark.parametrize(
    ("week_end", "scenes"),
    [
        # 3 to 10 December: both scenes of path 44 acquired on the 8th (cloud cover 0.4 and 0.1).
        ("2023-12-10", ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_044033_20231208_02_T1"]),
        # 26 November to 3 December: path 43's scene of the 1st only.
        ("2023-12-03", ["LC08_L2SP_043033_20231201_02_T1"]),
    ],
)
def test_each_weekly_run_processes_exactly_the_scenes_of_its_interval(
    dev_stack: Any, stack_env: dict[str, str], week_end: str, scenes: list[str]
) -> None:
    output = dags_test(stack_env, "water_bodies", {"aoi": scenes_aoi()}, logical_date=week_end)
    # The deferred job's progress reached the task log, the items reached the mapped tasks.
    assert ": running, progress" in output and ": successful, progress 100%" in output
    assert processed_scenes(output) == scenes
    assert f"{len(scenes)} item(s) in landsat-c2-l2" in output and "total" in output


def test_a_week_without_a_clear_scene_ends_skipped_not_failed(
    dev_stack: Any, stack_env: dict[str, str]
) -> None:
    # 24 to 31 December: path 44's two scenes of the 24th have 27.9 % and 20.0 % cloud, not below 20.
    output = dags_test(stack_env, "water_bodies", {"aoi": scenes_aoi()}, logical_date="2023-12-31")
    assert "No item matches in landsat-c2-l2" in output
    assert "Submitted water-bodies" not in output and processed_scenes(output) == []


def scenes_aoi() -> str:
    from dev import scenes

    return scenes.DEFAULT_AOI


def test_water_bodies_by_aoi_maps_one_job_per_aoi(dev_stack: Any, stack_env: dict[str, str]) -> None:
    inputs = dev_stack.example_inputs()
    minx, miny, maxx, maxy = (float(v) for v in inputs["aoi"].split(","))
    middle = round((minx + maxx) / 2, 4)
    conf = {
        "stac_items": inputs["stac_items"],
        "aois": {"west": f"{minx},{miny},{middle},{maxy}", "east": f"{middle},{miny},{maxx},{maxy}"},
    }
    output = dags_test(stack_env, "water_bodies_by_aoi", conf)
    assert "4 STAC items from 2 jobs" in output
