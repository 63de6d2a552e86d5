"""Parse cost: ``example_dags/water_bodies.py`` vs. the same DAG built from ``airflow.sdk`` alone.

Every sample is a FRESH ``python -c`` process that imports one DAG file the way Airflow's DagBag does
(``spec_from_file_location`` + ``exec_module``) and checks the DAG it built. Two figures per sample:

* ``inside``: wall time inside the process from just before the DAG file import to just after it
  (so it includes importing ``airflow.sdk``, as the first parse in a fresh interpreter does);
* ``process``: wall time of the whole process, spawn to exit, measured by the parent.

A third, ``warm`` series imports ``airflow.sdk`` BEFORE the clock starts (the dag-processor already
has Airflow loaded when it parses a file), so it isolates what the DAG file itself costs.

Samples are interleaved (provider, baseline, baseline, provider, ...) so machine noise hits both
alike; one discarded warm-up run of each writes the bytecode caches first. Both DAG files are
copied into one temporary folder, so they are treated alike.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PROVIDER_DAG = REPO / "example_dags" / "water_bodies.py"
BASELINE_DAG = Path(__file__).resolve().parent / "dags" / "water_bodies_sdk.py"

CHILD = r"""
import time
{preload}
t0 = time.perf_counter()
import importlib.util, sys
spec = importlib.util.spec_from_file_location("bench_dag_module", {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
t1 = time.perf_counter()
import json
from airflow.sdk import DAG
dags = [v for v in vars(module).values() if isinstance(v, DAG)]
dag = dags[0]
print("BENCH " + json.dumps({{
    "inside_s": t1 - t0,
    "dag_id": dag.dag_id,
    "tasks": sorted(dag.task_ids),
    "params": sorted(dag.params.keys()),
    "edges": sorted((t.task_id, d) for t in dag.tasks for d in sorted(t.downstream_task_ids)),
}}))
"""


def _child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        PYTHONUNBUFFERED="1",
    )
    return env


def _sample(python: str, dag_file: Path, warm: bool, env: dict[str, str]) -> dict[str, Any]:
    code = CHILD.format(path=str(dag_file), preload="import airflow.sdk" if warm else "")
    began = time.perf_counter()
    proc = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - began
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"parsing {dag_file.name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][6:])
    result["process_s"] = elapsed
    return result


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(values), 4),
        "min_s": round(min(values), 4),
        "max_s": round(max(values), 4),
        "samples_s": [round(v, 4) for v in values],
    }


def run(
    runs: int = 30, warm_runs: int | None = None, python: str | None = None, log: Any = None
) -> dict[str, Any]:
    """Measure; returns medians, ratios and every sample. ``log`` is a print-like progress callback."""
    python = python or sys.executable
    warm_runs = runs if warm_runs is None else warm_runs
    say = log or (lambda *a: None)
    with tempfile.TemporaryDirectory(prefix="ogc-bench-parse-") as tmp:
        folder = Path(tmp) / "dags"
        folder.mkdir()
        files = {
            "provider": Path(shutil.copy(PROVIDER_DAG, folder / "water_bodies.py")),
            "baseline": Path(shutil.copy(BASELINE_DAG, folder / "water_bodies_sdk.py")),
        }
        home = Path(tmp) / "home"
        home.mkdir()
        env = _child_env(home)
        shapes = {}
        for name, path in files.items():  # warm-up: bytecode caches, airflow.cfg in the fresh home
            shape = _sample(python, path, False, env)
            shapes[name] = {k: shape[k] for k in ("dag_id", "tasks", "params", "edges")}
        if shapes["provider"] != shapes["baseline"]:
            raise RuntimeError(f"the two DAGs differ in shape: {shapes}")
        samples: dict[str, dict[str, list[float]]] = {
            "provider": {"inside": [], "process": [], "warm": []},
            "baseline": {"inside": [], "process": [], "warm": []},
        }
        for i in range(max(runs, warm_runs)):
            order = ["provider", "baseline"] if i % 2 == 0 else ["baseline", "provider"]
            for name in order:
                if i < runs:
                    cold = _sample(python, files[name], False, env)
                    samples[name]["inside"].append(cold["inside_s"])
                    samples[name]["process"].append(cold["process_s"])
                if i < warm_runs:
                    samples[name]["warm"].append(_sample(python, files[name], True, env)["inside_s"])
            say(f"  parse: round {i + 1}/{max(runs, warm_runs)}")
    result: dict[str, Any] = {"runs": runs, "warm_runs": warm_runs, "dag_shape": shapes["provider"]}
    for name in ("provider", "baseline"):
        result[name] = {kind: _summary(values) for kind, values in samples[name].items() if values}
    for kind in ("inside", "process", "warm"):
        if samples["provider"][kind]:
            result[f"ratio_{kind}"] = round(
                result["provider"][kind]["median_s"] / result["baseline"][kind]["median_s"], 3
            )
            result[f"extra_ms_{kind}"] = round(
                1000 * (result["provider"][kind]["median_s"] - result["baseline"][kind]["median_s"]), 1
            )
    return result


if __name__ == "__main__":
    print(json.dumps(run(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 3, log=print), indent=2))
