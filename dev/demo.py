"""The demo: the seed's water-bodies scenario, run by Airflow against the local stack, checked against truth.

``make demo`` runs ``python -m dev.demo``, which

1. starts the local stack (moto S3, synthetic Landsat scenes served by a STAC API:
   stac-fastapi-pgstac over PostgreSQL + pgstac, pygeoapi ``water-bodies``);
2. runs ``airflow dags test water_bodies 2023-12-10`` on ``example_dags/`` with the stack's connections:
   the weekly run for 3 to 10 December 2023, whose STAC search over the AOI finds the two scenes
   acquired on 8 December (the DAG itself is unchanged; the run's conf narrows the AOI);
3. prints the scenes the search found, the STAC item hrefs the job produced, the water area per
   scene as the DAG measured it, and the agreement of each ``otsu.tif`` with the known lakes (IoU);
4. stops the stack, and exits non-zero if the DAG failed or a mask disagrees with the truth
   (IoU below ``dev.truth.IOU_THRESHOLD``, 0.97: see ``dev/truth.py`` for why).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAG_ID = "water_bodies"
# The weekly run whose data interval (3 to 10 December 2023) holds two of the stack's scenes.
LOGICAL_DATE = "2023-12-10"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / ".artifacts" / "demo")
    parser.add_argument("--pygeoapi-bin", type=Path, default=REPO / ".venv-pygeoapi" / "bin")
    parser.add_argument("--stac-bin", type=Path, default=REPO / ".venv-stac" / "bin")
    parser.add_argument("--step-delay", type=float, default=0.3, help="slow the process down to watch it")
    args = parser.parse_args(argv)

    workdir: Path = args.workdir.resolve()
    home = workdir / "airflow-home"
    # Airflow reads its home at import time: set it before anything imports airflow.
    if home.exists():
        import shutil

        shutil.rmtree(home)
    home.mkdir(parents=True)
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        NO_PROXY="127.0.0.1,localhost",
    )

    from dev import scenes
    from dev.stack import start_stack

    began = time.monotonic()
    print("Starting the local stack (moto S3, a STAC API of synthetic Landsat scenes, pygeoapi)...")
    stack = start_stack(
        workdir / "stack",
        pygeoapi_bin=args.pygeoapi_bin,
        moto_bin=Path(sys.executable).parent,
        stac_bin=args.stac_bin,
        step_delay=args.step_delay,
    )
    try:
        print(f"  OGC API - Processes: {stack.ogc_url}\n  S3: {stack.s3_endpoint}")
        print(f"  STAC API: {stack.stac_api_url} (stac-fastapi-pgstac, pgstac {stack.pgstac_version})")
        print(f"  up in {stack.startup_seconds:.1f} s")
        os.environ.update(stack.env())
        ok = run_dag(home, {"aoi": scenes.DEFAULT_AOI})
        if not ok:
            return 1
        agreement = report(workdir / "pictures")
    finally:
        stack.stop()
        print("Stack stopped.")
    print(f"Demo finished in {time.monotonic() - began:.0f} s.")
    return 0 if agreement else 1


def run_dag(home: Path, conf: dict[str, Any]) -> bool:
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, env=os.environ)
    log_path = home / "dags-test.log"
    print(f"Running `airflow dags test {DAG_ID} {LOGICAL_DATE}` (log: {log_path})...")
    with log_path.open("w") as log:
        result = subprocess.run(
            [airflow, "dags", "test", DAG_ID, LOGICAL_DATE, "-c", json.dumps(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ,
            timeout=900,
        )
    # Airflow 3.1 colours its log even into a file: drop the escape codes before reading it.
    text = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text())
    for line in text.splitlines():
        # The scenes the search found, the job's progress as the trigger logged it, and the DAG's own
        # report, without log decorations.
        if " item(s) in " in line:
            print("  Search: " + line[line.find("] ") + 2 :].strip())
        elif "/items/" in line and line.startswith("  "):
            print("    " + line.split(" [airflow")[0].strip())
        elif ": running, progress" in line or ": successful, progress" in line or " km2" in line:
            message = line[line.find("Job ") :] if "progress" in line else line
            print("  " + message.split(" [airflow")[0].strip())
    if result.returncode != 0 or "state=failed" in text:
        print(f"`airflow dags test` failed (exit {result.returncode}); the end of its log:\n{text[-4000:]}")
        return False
    return True


def latest_xcoms() -> dict[str, Any]:
    """The run's XComs that the report needs, read from Airflow's metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == DAG_ID).order_by(DagRun.id.desc())
        ).first()
        assert run is not None, "no run of the DAG"

        def values(task_id: str, key: str = "return_value") -> list[Any]:
            rows = session.scalars(
                XComModel.get_many(run_id=run.run_id, dag_ids=DAG_ID, task_ids=task_id, key=key)
            ).all()
            return [XComModel.deserialize_value(row) for row in sorted(rows, key=lambda r: r.map_index)]

        return {
            "run_id": run.run_id,
            "state": str(run.state),
            "job_url": values("detect_water_bodies", "job_url")[0],
            "item_hrefs": values("detect_water_bodies")[0],
            "areas": values("water_area"),
        }


def report(pictures: Path | None = None) -> bool:
    import numpy as np
    import rasterio

    from airflow_provider_ogc.s3 import S3Reader
    from dev import picture, truth

    xcoms = latest_xcoms()
    print(f"\nRun {xcoms['run_id']}: {xcoms['state']}; OGC job {xcoms['job_url']}")
    print("STAC items (XCom return_value of detect_water_bodies):")
    for href in xcoms["item_hrefs"]:
        print(f"  {href}")

    s3 = S3Reader("aws_default")
    rows = []
    written: list[Path] = []
    for area in xcoms["areas"]:
        with rasterio.MemoryFile(s3.read_bytes(area["mask_href"])) as memory, memory.open() as mask:
            predicted = mask.read(1) == 1
            transform, shape, crs = mask.transform, mask.shape, mask.crs
            source_item = mask.tags().get("SOURCE_ITEM")  # the input STAC item the process read
        expected = truth.water_mask(area["item_id"], transform, shape, crs)
        score = truth.iou(predicted, expected)
        true_km2 = float(np.count_nonzero(expected)) * abs(transform.a * transform.e) / 1e6
        rows.append((area["item_id"], area["water_km2"], true_km2, score))
        if pictures is not None and source_item:  # the false-colour scene, the mask, the lakes' outline
            png = pictures / f"{area['item_id']}.png"
            written.append(
                picture.write_scene_picture(
                    png, area["item_id"], predicted, transform, crs, source_item, lakes=expected, iou=score
                )
            )

    header = f"{'scene':<34} {'water km2':>10} {'truth km2':>10} {'IoU':>7}"
    print(f"\n{header}  verdict (IoU >= {truth.IOU_THRESHOLD})")
    for item_id, km2, true_km2, score in rows:
        verdict = "agrees" if score >= truth.IOU_THRESHOLD else "DISAGREES"
        print(f"{item_id:<34} {km2:>10.2f} {true_km2:>10.2f} {score:>7.4f}  {verdict}")
    for png in written:
        print(f"Picture: {png}")
    return bool(rows) and all(score >= truth.IOU_THRESHOLD for *_, score in rows)


if __name__ == "__main__":
    sys.exit(main())
