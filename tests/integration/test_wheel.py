"""The wheel users install (not this editable checkout) carries the jobs page and registers it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATIC = "airflow_provider_ogc/plugins/static"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # An isolated build (setuptools from the package index, as for any user's `pip install`).
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("airflow_provider_ogc-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_carries_the_jobs_page_and_leaflet_with_its_licence(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for path in (
        "index.html",
        "ogc.js",
        "ogc.css",
        "ogc.svg",
        "leaflet/leaflet.js",
        "leaflet/leaflet.css",
        "leaflet/LICENSE",
        "leaflet/images/layers.png",
    ):
        assert f"{STATIC}/{path}" in names, f"{path} is not in the wheel"
    assert "airflow_provider_ogc/py.typed" in names
    assert b"BSD 2-Clause" in wheel.read(f"{STATIC}/leaflet/LICENSE")
    # Every static file of the checkout made it (a new file type must be added to package-data).
    checkout = {p.relative_to(REPO).as_posix() for p in (REPO / STATIC).rglob("*") if p.is_file()}
    assert checkout <= names, sorted(checkout - names)


def test_the_wheel_registers_the_plugin_and_the_provider(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[airflow.plugins]\nogc_processes = airflow_provider_ogc.plugins:OGCProcessesPlugin" in text
    assert (
        "[apache_airflow_provider]\nprovider_info = airflow_provider_ogc.get_provider_info:get_provider_info"
        in text
    )
