"""The provider's Part 2 support against the real Part 2 server (wraptile DruService + cwltool)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_ogc._compat import AirflowFailException
from airflow_provider_ogc.exceptions import OGCProcessesAPIError
from airflow_provider_ogc.operators import (
    DeployProcessOperator,
    GetProcessPackageOperator,
    ReplaceProcessOperator,
    UndeployProcessOperator,
)
from dev.part2.server import ECHO_CWL, ECHO_V2_CWL, stack_env, start_part2_server
from tests.servers.launch import RunningServer
from tests.support.ci import unavailable
from tests.support.context import make_context
from tests.support.jobs import wait_for_job
from tests.support.replay_server import ReplayServer, Reply

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture(scope="module")
def part2(tmp_path_factory: pytest.TempPathFactory, dev_stack: Any) -> Iterator[RunningServer]:
    wraptile_bin = Path(os.environ.get("OGC_TEST_WRAPTILE_BIN") or REPO / ".venv-wraptile" / "bin")
    if not (wraptile_bin / "cwltool").exists():
        unavailable(f"cwltool is not installed in {wraptile_bin}")
    server = start_part2_server(
        tmp_path_factory.mktemp("part2"), wraptile_bin=wraptile_bin, env=stack_env(dev_stack)
    )
    yield server
    server.stop()


@pytest.fixture
def hook(part2: RunningServer, hook_for: Any) -> Any:
    return hook_for(part2.url)


def echo_package(process_id: str, path: Path = ECHO_CWL) -> str:
    return path.read_text().replace("\n    id: echo\n", f"\n    id: {process_id}\n")


def run_echo(hook: Any, process_id: str) -> Any:
    job = hook.execute_process(process_id, {"message": "lake", "count": 2})
    assert wait_for_job(hook, job.job_id)[-1].status.value == "successful"
    return hook.get_job_results(job.job_id)["echo"]


def test_deploy_cwl_yaml_run_read_back_and_undeploy(hook: Any) -> None:
    text = echo_package("echo-yaml")
    deployed = hook.deploy_process(text)
    assert deployed.process_id == "echo-yaml" and deployed.location.endswith("/processes/echo-yaml")
    assert run_echo(hook, "echo-yaml") == "lake lake"
    package = hook.get_process_package("echo-yaml")
    assert package.content_type == "application/cwl+yaml" and package.content == text
    hook.undeploy_process("echo-yaml")
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.get_process("echo-yaml")
    assert caught.value.http_status == 404


def test_deploy_cwl_json(hook: Any) -> None:
    deployed = hook.deploy_process(yaml.safe_load(echo_package("echo-json")))
    assert deployed.process_id == "echo-json"
    assert hook.get_process_package("echo-json").content["$graph"][0]["id"] == "echo-json"
    assert run_echo(hook, "echo-json") == "lake lake"
    hook.undeploy_process("echo-json")


def test_deploy_ogc_application_package_inline_and_by_reference(hook: Any, replay: ReplayServer) -> None:
    inline = {"executionUnit": {"value": echo_package("echo-inline"), "mediaType": "application/cwl+yaml"}}
    assert hook.deploy_process(inline).process_id == "echo-inline"
    replay.route(
        "GET",
        "/packages/echo.cwl",
        Reply(200, echo_package("echo-href"), content_type="application/cwl+yaml"),
    )
    op = DeployProcessOperator(
        task_id="deploy",
        ogc_conn_id=hook.ogc_conn_id,
        package_url=f"{replay.url}/packages/echo.cwl",
        process_id="echo-href",
    )
    assert op.execute(make_context()) == "echo-href"
    assert replay.hits("GET", "/packages/echo.cwl"), "the server fetched the referenced CWL"
    assert run_echo(hook, "echo-href") == "lake lake"
    for process_id in ("echo-inline", "echo-href"):
        hook.undeploy_process(process_id)


def test_workflow_id_picks_one_workflow(hook: Any) -> None:
    graph = yaml.safe_load(echo_package("echo-a"))
    second = json.loads(json.dumps(graph["$graph"][0]).replace('"echo-a"', '"echo-b"'))
    graph["$graph"].append(second)
    assert hook.deploy_process(graph, workflow_id="echo-b").process_id == "echo-b"
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.get_process("echo-a")
    assert caught.value.http_status == 404
    hook.undeploy_process("echo-b")


def test_duplicate_deploy_and_if_exists(hook: Any) -> None:
    hook.deploy_process(echo_package("echo-dup"))
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.deploy_process(echo_package("echo-dup"))
    assert caught.value.http_status == 409 and "duplicated-process" in (caught.value.type or "")

    def operator(**kwargs: Any) -> DeployProcessOperator:
        return DeployProcessOperator(task_id="deploy", ogc_conn_id=hook.ogc_conn_id, **kwargs)

    with pytest.raises(AirflowFailException, match="'echo-dup' is already deployed"):
        operator(package=echo_package("echo-dup")).execute(make_context())
    context = make_context()
    assert operator(package=echo_package("echo-dup"), if_exists="skip").execute(context) == "echo-dup"
    assert context["ti"].xcoms["process_id"] == "echo-dup"
    assert hook.get_process("echo-dup")["version"] == "1.0.0"
    operator(package=echo_package("echo-dup", ECHO_V2_CWL), if_exists="replace").execute(make_context())
    assert hook.get_process("echo-dup")["version"] == "2.0.0"
    assert run_echo(hook, "echo-dup") == "LAKE LAKE"
    hook.undeploy_process("echo-dup")


def test_replace_then_description_shows_the_new_version(hook: Any, tmp_path: Path) -> None:
    hook.deploy_process(echo_package("echo-rep"))
    path = tmp_path / "echo-v2.cwl"
    path.write_text(echo_package("echo-rep", ECHO_V2_CWL))
    ReplaceProcessOperator(
        task_id="r", ogc_conn_id=hook.ogc_conn_id, process_id="echo-rep", package=str(path)
    ).execute(make_context())
    assert hook.get_process("echo-rep")["version"] == "2.0.0"
    read = GetProcessPackageOperator(task_id="g", ogc_conn_id=hook.ogc_conn_id, process_id="echo-rep")
    assert "2.0.0" in read.execute(make_context())["content"]
    hook.undeploy_process("echo-rep")


def test_undeploy_operator(hook: Any) -> None:
    hook.deploy_process(echo_package("echo-gone"))
    UndeployProcessOperator(task_id="u", ogc_conn_id=hook.ogc_conn_id, process_id="echo-gone").execute(
        make_context()
    )
    with pytest.raises(OGCProcessesAPIError):
        hook.get_process("echo-gone")
    with pytest.raises(AirflowFailException, match="HTTP 404"):
        UndeployProcessOperator(task_id="u", ogc_conn_id=hook.ogc_conn_id, process_id="echo-gone").execute(
            make_context()
        )
    UndeployProcessOperator(
        task_id="u", ogc_conn_id=hook.ogc_conn_id, process_id="echo-gone", ignore_missing=True
    ).execute(make_context())


def test_unsupported_content_type(hook: Any) -> None:
    with pytest.raises(ValueError, match="Unsupported application package content type 'text/plain'"):
        hook.deploy_process(echo_package("x"), content_type="text/plain")
    with pytest.raises(
        OGCProcessesAPIError
    ) as caught:  # what the server says to a client that sends it anyway
        hook.request("POST", "processes", content=b"x", headers={"Content-Type": "text/plain"})
    assert caught.value.http_status == 415 and "application/cwl+yaml" in str(caught.value)
    with pytest.raises(AirflowFailException, match="Give exactly one of package"):
        DeployProcessOperator(task_id="d", ogc_conn_id=hook.ogc_conn_id).execute(make_context())


def airflow_env(tmp_path: Path, part2: RunningServer, dev_stack: Any) -> dict[str, str]:
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {
        **os.environ,
        **dev_stack.env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_OGC_PROCESSES_DEFAULT": json.dumps({"conn_type": "ogc_processes", "host": part2.url}),
    }
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=env, timeout=300)
    return env


def test_deploy_dag_end_to_end(part2: RunningServer, dev_stack: Any, hook: Any, tmp_path: Path) -> None:
    env = airflow_env(tmp_path, part2, dev_stack)
    inputs = dev_stack.example_inputs()
    conf = {"stac_items": inputs["stac_items"], "aoi": inputs["aoi"]}
    result = subprocess.run(
        [AIRFLOW, "dags", "test", "deploy_water_bodies", "-c", json.dumps(conf)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "state=success" in output, output[-6000:]
    assert output.count("STAC item: s3://results/") == 2
    assert "Deployed process water-bodies" in output and "Undeployed process water-bodies" in output
    with pytest.raises(OGCProcessesAPIError) as caught:
        hook.get_process("water-bodies")
    assert caught.value.http_status == 404, "cleaned up"


def test_deploy_dag_undeploys_even_when_the_run_fails(
    part2: RunningServer, dev_stack: Any, hook: Any, tmp_path: Path
) -> None:
    env = airflow_env(tmp_path, part2, dev_stack)
    conf = {"stac_items": dev_stack.example_inputs()["stac_items"], "aoi": "nowhere"}
    result = subprocess.run(
        [AIRFLOW, "dags", "test", "deploy_water_bodies", "-c", json.dumps(conf)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # 3.1 colours key=value pairs
    assert "state=failed" in output or "DagRun failed" in output, output[-6000:]
    assert "Undeployed process water-bodies" in output
    with pytest.raises(OGCProcessesAPIError):
        hook.get_process("water-bodies")
