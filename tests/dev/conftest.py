"""Fixtures for the dev stack tests: the stack itself, started once per session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ci import unavailable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pygeoapi_bin() -> Path:
    path = Path(os.environ.get("OGC_TEST_PYGEOAPI_BIN") or REPO / ".venv-pygeoapi" / "bin")
    if not path.is_dir():
        unavailable(f"pygeoapi is not installed ({path} missing); run the README's test command")
    return path


@pytest.fixture(scope="session")
def stac_bin() -> Path:
    """The STAC API's virtualenv, once PostgreSQL 15 + PostGIS 3 are installed (``make postgis``)."""
    from dev import stac_api

    path = Path(os.environ.get("OGC_TEST_STAC_BIN") or REPO / ".venv-stac" / "bin")
    problem = stac_api.missing_requirements(path)
    if problem:
        unavailable(problem)
    return path


@pytest.fixture(scope="session")
def moto_bin() -> Path:
    # moto[server] is a test dependency of the project, so it is in the venv running the tests.
    return Path(sys.executable).parent


@pytest.fixture(scope="session")
def dev_stack(
    tmp_path_factory: pytest.TempPathFactory, pygeoapi_bin: Path, moto_bin: Path, stac_bin: Path
) -> Iterator[object]:
    from dev.stack import start_stack

    # A short pause per progress step, so the test sees the job running and reporting.
    stack = start_stack(
        tmp_path_factory.mktemp("dev-stack"),
        pygeoapi_bin=pygeoapi_bin,
        moto_bin=moto_bin,
        stac_bin=stac_bin,
        step_delay=0.1,
    )
    yield stack
    stack.stop()
