"""Shared fixtures: Airflow home, connections, and real OGC API - Processes servers on loopback."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# Airflow must never touch ~/airflow from a test run; the test command sets its own home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="ogc-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from tests.servers.launch import RunningServer, start_pygeoapi, start_wraptile  # noqa: E402
from tests.support.ci import unavailable  # noqa: E402
from tests.support.replay_server import ReplayServer  # noqa: E402


def server_bin(kind: str) -> Path:
    """The bin folder of a test server's venv (``pygeoapi``, ``wraptile``); skips, or fails in CI."""
    env = f"OGC_TEST_{kind.upper()}_BIN"
    path = Path(os.environ.get(env) or REPO / f".venv-{kind}" / "bin")
    if not path.is_dir():
        unavailable(f"{kind} is not installed ({path} missing); run the README's test command or set {env}")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def pygeoapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_pygeoapi(tmp_path_factory.mktemp("pygeoapi"), server_bin("pygeoapi"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def wraptile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_wraptile(tmp_path_factory.mktemp("wraptile"), server_bin("wraptile"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 API (moto server) on a free loopback port; yields its endpoint URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.servers.launch import free_port

    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("moto server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(params=["pygeoapi", "wraptile"])
def server(request: pytest.FixtureRequest) -> RunningServer:
    """Each real server in turn, for behaviour both must share."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer().start()
    yield server
    server.stop()


ConnFactory = Callable[..., str]


@pytest.fixture
def make_conn(monkeypatch: pytest.MonkeyPatch) -> ConnFactory:
    """Create an ``ogc_processes`` connection from an env var (as users do) and return its id."""
    counter = iter(range(1_000_000))

    def make(host: str, conn_id: str | None = None, **fields: Any) -> str:
        conn_id = conn_id or f"ogc_test_{next(counter)}"
        extra = {"retry_wait_min": 0.05, "retry_wait_max": 0.2, **fields.pop("extra", {})}
        conn = {"conn_type": "ogc_processes", "host": host, "extra": extra, **fields}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return make


@pytest.fixture
def hook_for(make_conn: ConnFactory) -> Iterator[Callable[..., Any]]:
    """Build an :class:`OGCProcessesHook` for a URL; closed after the test."""
    from airflow_provider_ogc.hooks import OGCProcessesHook

    hooks: list[OGCProcessesHook] = []

    def build(host: str, **fields: Any) -> OGCProcessesHook:
        hook = OGCProcessesHook(ogc_conn_id=make_conn(host, **fields))
        hooks.append(hook)
        return hook

    yield build
    for hook in hooks:
        hook.close()
