"""The Part 2 server of dev/part2 (wraptile DruService + cwltool --no-container): real HTTP, real CWL runs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dev.part2.server import ECHO_CWL, ECHO_V2_CWL, WATER_BODIES_CWL, stack_env, start_part2_server
from tests.servers.launch import RunningServer
from tests.support.ci import unavailable
from tests.support.replay_server import ReplayServer, Reply

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PART2_EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-2/1.0/"
CWL_YAML, CWL_JSON, OGCAPPPKG = "application/cwl+yaml", "application/cwl+json", "application/ogcapppkg+json"
FINAL = {"successful", "failed", "dismissed"}

TWO_WORKFLOWS = """\
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: hello-a
    inputs: {name: string}
    outputs: {greeting: {type: string, outputSource: say/greeting}}
    steps: {say: {run: "#say", in: {name: name}, out: [greeting]}}
  - class: Workflow
    id: hello-b
    inputs: {name: string}
    outputs: {greeting: {type: string, outputSource: say/greeting}}
    steps: {say: {run: "#say", in: {name: name}, out: [greeting]}}
  - class: CommandLineTool
    id: say
    baseCommand: [sh, -c, 'printf "hello %s" "$0" > out.txt']
    inputs: {name: {type: string, inputBinding: {position: 1}}}
    outputs:
      greeting:
        type: string
        outputBinding:
          glob: out.txt
          loadContents: true
          outputEval: $(self[0].contents)
"""

FAILING = """\
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: fail-on-purpose
    inputs: {message: string}
    outputs: {out: {type: File, outputSource: boom/out}}
    steps: {boom: {run: "#boom", in: {message: message}, out: [out]}}
  - class: CommandLineTool
    id: boom
    baseCommand: [sh, -c, 'echo "$0" >&2; exit 3']
    inputs: {message: {type: string, inputBinding: {position: 1}}}
    outputs: {out: {type: File, outputBinding: {glob: never-written.txt}}}
"""


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wraptile_bin() -> Path:
    path = Path(os.environ.get("OGC_TEST_WRAPTILE_BIN") or REPO / ".venv-wraptile" / "bin")
    if not (path / "cwltool").exists():
        unavailable(f"cwltool is not installed in {path}; pip install -r dev/requirements-part2.txt there")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, wraptile_bin: Path) -> Iterator[RunningServer]:
    running = start_part2_server(tmp_path_factory.mktemp("part2"), wraptile_bin=wraptile_bin)
    yield running
    running.stop()


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as c:
        yield c


def echo_cwl(process_id: str, path: Path = ECHO_CWL) -> str:
    """echo.cwl (or echo-v2.cwl) with the workflow id changed, so tests do not collide."""
    text = path.read_text()
    assert text.count("\n    id: echo\n") == 1
    return text.replace("\n    id: echo\n", f"\n    id: {process_id}\n")


def deploy(client: httpx.Client, body: str | bytes, media_type: str, **params: str) -> httpx.Response:
    return client.post("/processes", content=body, headers={"Content-Type": media_type}, params=params)


def execute(client: httpx.Client, process_id: str, inputs: dict[str, Any]) -> str:
    reply = client.post(f"/processes/{process_id}/execution", json={"inputs": inputs})
    assert reply.status_code == 201, reply.text
    job_id: str = reply.json()["jobID"]
    assert reply.headers["location"].endswith(f"/jobs/{job_id}")
    return job_id


def wait(client: httpx.Client, job_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = client.get(f"/jobs/{job_id}")
        assert reply.status_code == 200, reply.text
        seen.append(reply.json())
        if seen[-1]["status"] in FINAL:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {seen[-1]['status']} after {timeout} s: {seen[-1]}")


def assert_error(reply: httpx.Response, status: int, type_suffix: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and body["type"].endswith(type_suffix), body
    return body


# --- deploy -----------------------------------------------------------------------------------


def test_conformance_declares_part2(client: httpx.Client) -> None:
    conforms = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/deploy-replace-undeploy" in conforms
    assert "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/cwl" in conforms


def test_deploy_cwl_yaml_describes_the_workflow(client: httpx.Client, server: RunningServer) -> None:
    reply = deploy(client, echo_cwl("echo-yaml"), CWL_YAML)
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == f"{server.url}/processes/echo-yaml"
    summary = reply.json()
    assert summary["id"] == "echo-yaml" and summary["version"] == "1.0.0" and summary["mutable"] is True
    assert summary["jobControlOptions"] == ["async-execute", "dismiss"]
    assert {link["rel"] for link in summary["links"]} >= {
        "self",
        "http://www.opengis.net/def/rel/ogc/1.0/execute",
    }

    description = client.get("/processes/echo-yaml").json()
    assert description["title"] == "Echo" and "inputs" in description
    assert description["inputs"]["message"] == {
        "title": "Message",
        "description": "The text to echo.",
        "minOccurs": 1,
        "maxOccurs": 1,
        "schema": {"type": "string"},
    }
    assert description["inputs"]["count"]["schema"] == {"type": "integer", "default": 1}
    assert description["inputs"]["count"]["minOccurs"] == 0
    assert set(description["outputs"]) == {"echo", "echo_file"}
    assert "echo-yaml" in [p["id"] for p in client.get("/processes").json()["processes"]]


def test_deploy_cwl_json_and_its_package_round_trip(client: httpx.Client) -> None:
    body = json.dumps(yaml.safe_load(echo_cwl("echo-json")), indent=1)
    reply = deploy(client, body, CWL_JSON)
    assert reply.status_code == 201, reply.text
    assert reply.json()["id"] == "echo-json"
    package = client.get("/processes/echo-json/package")
    assert package.status_code == 200 and package.headers["content-type"] == CWL_JSON
    assert package.text == body  # JSON stays JSON, as deployed


def test_package_round_trip_yaml(client: httpx.Client) -> None:
    text = echo_cwl("echo-pkg")
    assert deploy(client, text, CWL_YAML).status_code == 201
    package = client.get("/processes/echo-pkg/package")
    assert package.status_code == 200 and package.headers["content-type"] == CWL_YAML
    assert package.text == text  # YAML stays YAML text, comments included
    as_json = client.get("/processes/echo-pkg/package", headers={"Accept": CWL_JSON})
    assert as_json.headers["content-type"] == CWL_JSON and as_json.json() == yaml.safe_load(text)
    assert client.get("/processes/nope/package").status_code == 404


def test_deploy_ogcapppkg_with_a_value_and_a_process_description(client: httpx.Client) -> None:
    pkg = {
        "processDescription": {
            "process": {"title": "Echo (ogcapppkg)", "inputs": {"message": {"description": "What to say."}}}
        },
        "executionUnit": {"value": echo_cwl("echo-value"), "mediaType": CWL_YAML},
    }
    reply = deploy(client, json.dumps(pkg), OGCAPPPKG)
    assert reply.status_code == 201, reply.text
    description = client.get("/processes/echo-value").json()
    assert description["title"] == "Echo (ogcapppkg)" and description["version"] == "1.0.0"
    assert description["inputs"]["message"]["description"] == "What to say."
    package = client.get("/processes/echo-value/package")
    assert package.headers["content-type"] == OGCAPPPKG and package.json() == pkg


def test_deploy_ogcapppkg_with_an_href(client: httpx.Client, replay: ReplayServer) -> None:
    replay.route("GET", "/echo.cwl", Reply(200, echo_cwl("echo-href").encode(), content_type=CWL_YAML))
    pkg = {"executionUnit": {"href": f"{replay.url}/echo.cwl", "type": CWL_YAML}}
    reply = deploy(client, json.dumps(pkg), OGCAPPPKG)
    assert reply.status_code == 201, reply.text
    assert reply.json()["id"] == "echo-href"
    assert client.get("/processes/echo-href").status_code == 200
    assert replay.hits("GET", "/echo.cwl"), "the server fetched the referenced CWL"


def test_the_w_parameter_picks_the_workflow(client: httpx.Client) -> None:
    body = assert_error(deploy(client, TWO_WORKFLOWS, CWL_YAML), 400, "bad-request")
    assert "hello-a" in body["detail"] and "?w=" in body["detail"]
    assert_error(deploy(client, TWO_WORKFLOWS, CWL_YAML, w="nope"), 400, "/workflow-not-found")
    reply = deploy(client, TWO_WORKFLOWS, CWL_YAML, w="hello-b")
    assert reply.status_code == 201, reply.text
    assert reply.json()["id"] == "hello-b"
    assert client.get("/processes/hello-a").status_code == 404
    job_id = execute(client, "hello-b", {"name": "world"})
    assert wait(client, job_id)[-1]["status"] == "successful"
    assert client.get(f"/jobs/{job_id}/results").json() == {"greeting": "hello world"}


def test_a_duplicate_deploy_is_409(client: httpx.Client) -> None:
    assert deploy(client, echo_cwl("echo-dup"), CWL_YAML).status_code == 201
    body = assert_error(deploy(client, echo_cwl("echo-dup"), CWL_YAML), 409, "duplicated-process")
    assert body["type"] == PART2_EXC + "duplicated-process"
    assert_error(deploy(client, echo_cwl("sleep"), CWL_YAML), 409, "duplicated-process")  # a built-in


def test_unsupported_content_types_are_415(client: httpx.Client) -> None:
    for media_type in ("text/plain", "application/json"):
        body = assert_error(deploy(client, echo_cwl("echo-415"), media_type), 415, "unsupported-media-type")
        assert body["type"] == PART2_EXC + "unsupported-media-type"
        assert CWL_YAML in body["detail"] and OGCAPPPKG in body["detail"]
    assert client.get("/processes/echo-415").status_code == 404


def test_invalid_cwl_is_400(client: httpx.Client) -> None:
    broken = echo_cwl("echo-broken").replace(
        "outputSource: node_echo/echo\n", "outputSource: node_echo/nope\n"
    )
    body = assert_error(deploy(client, broken, CWL_YAML), 400, "bad-request")
    assert "cwltool" in body["detail"]
    assert_error(deploy(client, "key: [unclosed", CWL_YAML), 400, "bad-request")
    assert client.get("/processes/echo-broken").status_code == 404


# --- replace, undeploy ------------------------------------------------------------------------


def test_replace_then_the_description_shows_the_new_version(client: httpx.Client) -> None:
    assert deploy(client, echo_cwl("echo-rep"), CWL_YAML).status_code == 201
    reply = client.put(
        "/processes/echo-rep", content=echo_cwl("echo-rep", ECHO_V2_CWL), headers={"Content-Type": CWL_YAML}
    )
    assert reply.status_code == 204 and reply.content == b""
    description = client.get("/processes/echo-rep").json()
    assert description["version"] == "2.0.0" and "upper case" in description["description"]
    job_id = execute(client, "echo-rep", {"message": "hi", "count": 2})
    assert wait(client, job_id)[-1]["status"] == "successful"
    assert client.get(f"/jobs/{job_id}/results").json()["echo"] == "HI HI"

    v2 = echo_cwl("echo-rep", ECHO_V2_CWL)
    assert_error(
        client.put("/processes/nope", content=v2, headers={"Content-Type": CWL_YAML}), 404, "no-such-process"
    )
    assert_error(
        client.put("/processes/sleep", content=v2, headers={"Content-Type": CWL_YAML}),
        403,
        "immutable-process",
    )
    other = echo_cwl("echo-other")
    assert_error(
        client.put("/processes/echo-rep", content=other, headers={"Content-Type": CWL_YAML}),
        400,
        "bad-request",
    )
    assert_error(
        client.put("/processes/echo-rep", content=v2, headers={"Content-Type": "text/plain"}),
        415,
        "unsupported-media-type",
    )


def test_undeploy_then_the_process_is_gone(client: httpx.Client) -> None:
    assert deploy(client, echo_cwl("echo-gone"), CWL_YAML).status_code == 201
    reply = client.delete("/processes/echo-gone")
    assert reply.status_code == 204 and reply.content == b""
    assert_error(client.get("/processes/echo-gone"), 404, "no-such-process")
    assert_error(client.delete("/processes/echo-gone"), 404, "no-such-process")
    assert_error(client.delete("/processes/sleep"), 403, "immutable-process")
    assert client.get("/processes/sleep").json()["mutable"] is False
    assert deploy(client, echo_cwl("echo-gone"), CWL_YAML).status_code == 201  # the id is free again


# --- execution --------------------------------------------------------------------------------


def test_execute_echo_and_get_results(client: httpx.Client) -> None:
    assert deploy(client, echo_cwl("echo-run"), CWL_YAML).status_code == 201
    job_id = execute(client, "echo-run", {"message": "hi", "count": 2})
    statuses = wait(client, job_id)
    order = [s["status"] for s in statuses]
    assert order[-1] == "successful", statuses[-1]
    assert "running" in order and order == sorted(order, key=["accepted", "running", "successful"].index)
    assert statuses[-1]["progress"] == 100
    results = client.get(f"/jobs/{job_id}/results").json()
    assert results["echo"] == "hi hi"
    link = results["echo_file"]
    assert link["type"] == "text/plain" and link["href"].endswith(f"/jobs/{job_id}/outputs/echo.txt")
    assert client.get(link["href"]).text == "hi hi"

    for inputs in ({}, {"message": "hi", "count": "two"}, {"message": "hi", "bogus": 1}):
        assert_error(
            client.post("/processes/echo-run/execution", json={"inputs": inputs}), 400, "bad-request"
        )
    assert_error(client.post("/processes/nope/execution", json={"inputs": {}}), 404, "no-such-process")


COUNT_BYTES = """\
cwlVersion: v1.2
class: CommandLineTool
id: count-bytes
baseCommand: [sh, -c, 'printf "%s" $(wc -c < "$0")']
inputs:
  document: {type: File, doc: any file (by URL), inputBinding: {position: 1}}
  note: {type: "string?"}
outputs:
  size:
    type: string
    outputBinding:
      glob: size.txt
      loadContents: true
      outputEval: $(self[0].contents)
stdout: size.txt
"""


def test_a_file_input_takes_a_url(client: httpx.Client, server: RunningServer) -> None:
    assert deploy(client, COUNT_BYTES, CWL_YAML).status_code == 201
    description = client.get("/processes/count-bytes").json()
    assert description["inputs"]["document"]["schema"] == {
        "type": "string",
        "format": "uri",
        "description": "URL of the input file",
    }
    assert description["inputs"]["note"]["minOccurs"] == 0
    url = f"{server.url}/conformance"  # cwltool downloads it
    job_id = execute(client, "count-bytes", {"document": url})
    assert wait(client, job_id)[-1]["status"] == "successful"
    assert client.get(f"/jobs/{job_id}/results").json() == {"size": str(len(client.get(url).content))}


def test_a_failing_tool_fails_the_job_with_its_stderr(client: httpx.Client) -> None:
    assert deploy(client, FAILING, CWL_YAML).status_code == 201
    job_id = execute(client, "fail-on-purpose", {"message": "it broke on purpose"})
    final = wait(client, job_id)[-1]
    assert final["status"] == "failed", final
    assert "it broke on purpose" in final["message"] and "exited with status" in final["message"]
    body = assert_error(client.get(f"/jobs/{job_id}/results"), 403, "forbidden")
    assert "has failed" in body["detail"]


def _sleepers(seconds: float) -> list[int]:
    """PIDs of processes running `sleep <seconds>` (read from /proc; nothing is signalled)."""
    wanted = f"sleep\0{seconds}\0".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == wanted:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.parametrize("when", ["cwltool starting", "tool running"])
def test_dismiss_kills_the_cwltool_run_and_its_tool(client: httpx.Client, when: str) -> None:
    seconds = 37.25 if when == "tool running" else 37.5  # a command line no other process has
    job_id = execute(client, "sleep", {"seconds": seconds})
    deadline = time.monotonic() + 20
    info = client.get(f"/jobs/{job_id}").json()
    while "x-cwltool-pid" not in info or (when == "tool running" and not _sleepers(seconds)):
        assert time.monotonic() < deadline, info
        time.sleep(0.02)
        info = client.get(f"/jobs/{job_id}").json()
    pid = info["x-cwltool-pid"]
    reply = client.delete(f"/jobs/{job_id}")
    assert reply.status_code == 200 and reply.json()["status"] == "dismissed"
    assert wait(client, job_id, timeout=10)[-1]["status"] == "dismissed"
    deadline = time.monotonic() + 10
    while (Path(f"/proc/{pid}").exists() or _sleepers(seconds)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), f"cwltool (pid {pid}) still runs"
    assert not _sleepers(seconds), "the tool outlived its dismissed job"
    assert_error(client.get(f"/jobs/{job_id}/results"), 403, "forbidden")
    assert client.delete(f"/jobs/{job_id}").status_code == 200  # a finished job: removed
    assert client.get(f"/jobs/{job_id}").status_code == 404


def test_stopping_the_server_stops_its_jobs(tmp_path: Path, wraptile_bin: Path) -> None:
    seconds = 38.25
    with (
        start_part2_server(tmp_path / "part2", wraptile_bin=wraptile_bin) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client,
    ):
        job_id = execute(client, "sleep", {"seconds": seconds})
        deadline = time.monotonic() + 20
        while not _sleepers(seconds):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pid = client.get(f"/jobs/{job_id}").json()["x-cwltool-pid"]
    # uvicorn ends on SIGTERM by re-raising it (no atexit): the service's signal handler must act.
    deadline = time.monotonic() + 10
    while (Path(f"/proc/{pid}").exists() or _sleepers(seconds)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() and not _sleepers(seconds)


# --- water-bodies, end to end -----------------------------------------------------------------


def test_water_bodies_package_end_to_end(dev_stack: Any, tmp_path: Path, wraptile_bin: Path) -> None:
    pytest.importorskip("boto3")
    rasterio_io = pytest.importorskip("rasterio.io")
    from airflow_provider_ogc.stac import extract_stac
    from dev import truth

    with (
        start_part2_server(tmp_path / "part2", wraptile_bin=wraptile_bin, env=stack_env(dev_stack)) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client,
    ):
        reply = deploy(client, WATER_BODIES_CWL.read_bytes(), CWL_YAML)
        assert reply.status_code == 201, reply.text
        description = client.get("/processes/water-bodies").json()
        assert set(description["inputs"]) == {"stac_items", "aoi", "epsg", "bands"}
        assert description["outputs"]["stac_catalog"]["schema"]["contentMediaType"] == "application/geo+json"

        inputs = dev_stack.example_inputs()
        job_id = execute(client, "water-bodies", inputs)
        statuses = wait(client, job_id, timeout=90)
        assert statuses[-1]["status"] == "successful", statuses[-1]
        progress = [s["progress"] for s in statuses if s["status"] == "running" and "progress" in s]
        assert progress == sorted(progress)
        results = client.get(f"/jobs/{job_id}/results").json()

    collection = results["stac_catalog"]
    assert collection["type"] == "FeatureCollection" and collection["id"] == job_id
    stac = extract_stac(results)
    assert stac is not None and len(stac.item_hrefs) == len(inputs["stac_items"]) == 2
    assert all(href.startswith(f"s3://results/{job_id}/") for href in stac.item_hrefs)

    s3 = dev_stack.s3_client()
    s3.head_object(Bucket="results", Key=f"{job_id}/catalog.json")
    for feature in collection["features"]:
        href = feature["assets"]["data"]["href"]
        assert href == f"s3://results/{job_id}/{job_id}/{feature['id']}/otsu.tif"
        data = s3.get_object(Bucket="results", Key=href.removeprefix("s3://results/"))["Body"].read()
        with rasterio_io.MemoryFile(data) as mem, mem.open() as src:
            assert src.dtypes[0] == "uint8" and src.nodata == 0 and src.crs.to_epsg() == 32610
            score = truth.iou(src.read(1) == 1, truth.water_mask(feature["id"], src.transform, src.shape))
        assert score >= truth.IOU_THRESHOLD, (feature["id"], score)
