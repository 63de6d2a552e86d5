"""The README's demo command, as CI runs it: the water-bodies DAG on the local stack, checked against truth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_green_and_reports_iou(pygeoapi_bin: Path, stac_bin: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dev.demo",
            "--workdir",
            str(tmp_path),
            "--pygeoapi-bin",
            str(pygeoapi_bin),
            "--stac-bin",
            str(stac_bin),
            "--step-delay",
            "0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    lines = result.stdout.splitlines()
    # The weekly run of 3 to 10 December 2023 found that week's two scenes and processed exactly those.
    found = sorted(line.rsplit("/", 1)[-1] for line in lines if "/collections/landsat-c2-l2/items/" in line)
    week = ["LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_044033_20231208_02_T1"]
    assert found == week, result.stdout
    verdicts = [line for line in lines if line.startswith("LC08_") and line.rstrip().endswith("agrees")]
    assert sorted(v.split()[0] for v in verdicts) == week, result.stdout
    assert sum(line.startswith("  s3://results/") and line.endswith(".json") for line in lines) == 2
    assert "Stack stopped." in lines
    # One picture per scene (false colour, water mask, known lakes' outline), printed after the IoU table.
    pictures = [Path(line.removeprefix("Picture: ")) for line in lines if line.startswith("Picture: ")]
    assert sorted(p.stem for p in pictures) == week, result.stdout
    assert lines.index(f"Picture: {pictures[0]}") > max(lines.index(v) for v in verdicts)
    for path in pictures:
        assert path.is_absolute() and path.is_file(), path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        assert path.parent == tmp_path.resolve() / "pictures"
