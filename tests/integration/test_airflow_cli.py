"""The provider as Airflow's own CLI sees it: registered, with its hook and a testable connection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.launch import RunningServer

pytestmark = pytest.mark.integration
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRFLOW, *args], capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})}
    )


def test_providers_list_and_hooks_show_the_provider() -> None:
    listed = airflow("providers", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    providers = {p["package_name"]: p for p in json.loads(listed.stdout)}
    assert "airflow-provider-ogc" in providers
    hooks = airflow("providers", "hooks", "--output", "json")
    assert hooks.returncode == 0, hooks.stderr
    ogc = [h for h in json.loads(hooks.stdout) if h.get("connection_type") == "ogc_processes"]
    assert ogc and ogc[0]["class"] == "airflow_provider_ogc.hooks.ogc_processes.OGCProcessesHook"
    stac = [h for h in json.loads(hooks.stdout) if h.get("connection_type") == "stac_api"]
    assert stac and stac[0]["class"] == "airflow_provider_ogc.hooks.stac_api.StacApiHook"


def test_connection_form_fields_are_declared() -> None:
    import airflow
    from airflow.providers_manager import ProvidersManager
    from packaging.version import Version

    if Version(airflow.__version__) < Version("3.2"):
        pytest.skip("conn-fields in provider info need Airflow 3.2+; on 3.1 extras go in the Extra JSON")

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    behaviours = manager.field_behaviours
    assert "extra__ogc_processes__auth_type" in widgets and "extra__ogc_processes__verify" in widgets
    assert behaviours["ogc_processes"]["relabeling"]["host"] == "API root URL"


def connections_test(host: str) -> subprocess.CompletedProcess[str]:
    conn = {"conn_type": "ogc_processes", "host": host, "extra": {"max_retries": 0}}
    return airflow(
        "connections",
        "test",
        "ogc_processes_default",
        env={
            "AIRFLOW_CONN_OGC_PROCESSES_DEFAULT": json.dumps(conn),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        },
    )


def test_airflow_connections_test_against_pygeoapi(pygeoapi_server: RunningServer) -> None:
    result = connections_test(pygeoapi_server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout


def test_airflow_connections_test_names_the_failure() -> None:
    from tests.servers.launch import free_port

    result = connections_test(f"http://127.0.0.1:{free_port()}/ogc")
    output = result.stdout + result.stderr
    assert "Connection failed!" in output and "Cannot use http://127.0.0.1:" in output
