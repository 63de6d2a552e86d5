"""Part 2 (deploy, replace, undeploy, package) on the wire: what the hook sends and how it reads answers.

A real Part 2 server joins the local stack in a later issue; here a loopback server answers in the
shapes of OGC API - Processes Part 2 and records the requests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_ogc.exceptions import OGCProcessesAPIError
from tests.support.openapi import validate
from tests.support.replay_server import ReplayServer, Reply

ECHO_CWL_YAML = """\
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: echo-wf
    inputs:
      message: string
    outputs:
      out:
        type: File
        outputSource: step/out
    steps:
      step:
        run: "#echo-tool"
        in:
          message: message
        out: [out]
  - class: CommandLineTool
    id: echo-tool
    baseCommand: echo
    inputs:
      message:
        type: string
        inputBinding: {position: 1}
    outputs:
      out: {type: stdout}
"""
SUMMARY = {"id": "echo-wf", "version": "1.0.0", "jobControlOptions": ["async-execute"], "links": []}


@pytest.fixture
def part2(replay: ReplayServer) -> ReplayServer:
    replay.route(
        "POST", "/ogc/processes", Reply(201, SUMMARY, headers={"Location": "{base}/ogc/processes/echo-wf"})
    )
    replay.route("PUT", "/ogc/processes/echo-wf", Reply(204, None))
    replay.route("DELETE", "/ogc/processes/echo-wf", Reply(204, None))
    return replay


def test_deploy_cwl_yaml_string_with_workflow_id(part2: ReplayServer, hook_for: Any) -> None:
    deployed = hook_for(f"{part2.url}/ogc").deploy_process(ECHO_CWL_YAML, workflow_id="echo-wf")
    assert deployed.process_id == "echo-wf" and deployed.location == f"{part2.url}/ogc/processes/echo-wf"
    sent = part2.hits("POST", "/ogc/processes")[0]
    assert sent.headers["Content-Type"] == "application/cwl+yaml"
    assert sent.query == {"w": ["echo-wf"]}
    assert sent.body.decode() == ECHO_CWL_YAML, "YAML is sent byte for byte"


def test_deploy_cwl_file_path(part2: ReplayServer, hook_for: Any, tmp_path: Path) -> None:
    path = tmp_path / "echo.cwl"
    path.write_text(ECHO_CWL_YAML)
    hook_for(f"{part2.url}/ogc").deploy_process(path)
    sent = part2.hits("POST", "/ogc/processes")[0]
    assert sent.headers["Content-Type"] == "application/cwl+yaml" and sent.query == {}
    assert yaml.safe_load(sent.body)["$graph"][0]["id"] == "echo-wf"


def test_deploy_cwl_as_json(part2: ReplayServer, hook_for: Any) -> None:
    cwl = yaml.safe_load(ECHO_CWL_YAML)
    hook_for(f"{part2.url}/ogc").deploy_process(cwl)
    sent = part2.hits("POST", "/ogc/processes")[0]
    assert sent.headers["Content-Type"] == "application/cwl+json" and sent.json() == cwl


def test_deploy_ogc_application_package(part2: ReplayServer, hook_for: Any, shared_dir: Path) -> None:
    package = {
        "processDescription": {"process": {"id": "echo-wf", "version": "1.0.0", "inputs": {}, "outputs": {}}},
        "executionUnit": {"type": "cwl", "href": "https://example.org/echo.cwl"},
    }
    hook_for(f"{part2.url}/ogc").deploy_process(package)
    sent = part2.hits("POST", "/ogc/processes")[0]
    assert sent.headers["Content-Type"] == "application/ogcapppkg+json"
    validate(shared_dir, "ogcapppkg", sent.json())


def test_deploy_yaml_from_dict_when_asked(part2: ReplayServer, hook_for: Any) -> None:
    hook_for(f"{part2.url}/ogc").deploy_process(
        yaml.safe_load(ECHO_CWL_YAML), content_type="application/cwl+yaml"
    )
    sent = part2.hits("POST", "/ogc/processes")[0]
    assert yaml.safe_load(sent.body) == yaml.safe_load(ECHO_CWL_YAML)


def test_unsupported_content_type_fails_before_sending(part2: ReplayServer, hook_for: Any) -> None:
    with pytest.raises(
        ValueError, match=r"Unsupported application package content type 'text/plain'.*cwl\+yaml"
    ):
        hook_for(f"{part2.url}/ogc").deploy_process(ECHO_CWL_YAML, content_type="text/plain")
    assert part2.requests == []


def test_missing_package_file_is_a_clear_error(part2: ReplayServer, hook_for: Any, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Application package file not found"):
        hook_for(f"{part2.url}/ogc").deploy_process(tmp_path / "nope.cwl")


def test_duplicate_deploy_is_409(part2: ReplayServer, hook_for: Any) -> None:
    part2.route(
        "POST",
        "/ogc/processes",
        Reply(
            409,
            {
                "type": "http://www.opengis.net/def/exceptions/ogcapi-processes-2/1.0/duplicated-process",
                "title": "Duplicated process",
                "status": 409,
                "detail": "echo-wf already exists",
            },
        ),
    )
    with pytest.raises(OGCProcessesAPIError, match="duplicated-process") as caught:
        hook_for(f"{part2.url}/ogc").deploy_process(ECHO_CWL_YAML)
    assert caught.value.http_status == 409 and len(part2.requests) == 1


def test_replace_and_undeploy(part2: ReplayServer, hook_for: Any) -> None:
    hook = hook_for(f"{part2.url}/ogc")
    replaced = hook.replace_process("echo-wf", ECHO_CWL_YAML.replace("echo-tool", "echo-tool-2"))
    assert replaced.process_id == "echo-wf"
    put = part2.hits("PUT", "/ogc/processes/echo-wf")[0]
    assert put.headers["Content-Type"] == "application/cwl+yaml" and b"echo-tool-2" in put.body
    hook.undeploy_process("echo-wf")
    assert len(part2.hits("DELETE", "/ogc/processes/echo-wf")) == 1


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/cwl+yaml", ECHO_CWL_YAML, ECHO_CWL_YAML),
        ("application/cwl+json", json.dumps({"cwlVersion": "v1.2"}), {"cwlVersion": "v1.2"}),
    ],
)
def test_get_process_package(
    replay: ReplayServer, hook_for: Any, content_type: str, body: str, expected: Any
) -> None:
    replay.route("GET", "/ogc/processes/echo-wf/package", Reply(200, body, content_type=content_type))
    package = hook_for(f"{replay.url}/ogc").get_process_package("echo-wf")
    assert package.content_type == content_type and package.content == expected
    assert replay.requests[0].headers["Accept"] == "*/*"
    hook_for(f"{replay.url}/ogc").get_process_package("echo-wf", media_type="application/cwl+json")
    assert replay.requests[1].headers["Accept"] == "application/cwl+json"
