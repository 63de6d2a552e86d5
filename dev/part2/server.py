"""Start the Part 2 (Deploy, Replace, Undeploy) server: wraptile + :mod:`dev.part2.service` on 127.0.0.1.

Stdlib only (runs in the caller's environment; the server runs in ``.venv-wraptile``, which needs
``dev/requirements-part2.txt``). Python API::

    from dev.part2.server import start_part2_server, deploy_package
    server = start_part2_server(workdir, wraptile_bin=Path(".venv-wraptile/bin"), env=stack.env())
    deploy_package(server.url, PACKAGES / "water-bodies.cwl")   # -> the processSummary
    server.stop()

Command line (from the repository root)::

    python -m dev.part2.server --workdir .artifacts/part2 [--wraptile-bin .venv-wraptile/bin] [--port N]
        [--deploy dev/part2/packages/water-bodies.cwl ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.servers.launch import (
    RunningServer,
    _python,
    _server_env,
    _spawn,
    _start_with_port_retry,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGES = Path(__file__).resolve().parent / "packages"
WATER_BODIES_CWL = PACKAGES / "water-bodies.cwl"
ECHO_CWL = PACKAGES / "echo.cwl"
ECHO_V2_CWL = PACKAGES / "echo-v2.cwl"
LOG_NAME = "part2.log"
NO_PROXY = "127.0.0.1,localhost"
SERVICE_REF = "dev.part2.service:service"


def default_wraptile_bin() -> Path:
    return Path(os.environ.get("OGC_TEST_WRAPTILE_BIN") or REPO / ".venv-wraptile" / "bin")


def start_part2_server(
    workdir: Path,
    *,
    wraptile_bin: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
    max_jobs: int = 4,
    parallel: bool = True,
    timeout: float = 60.0,
) -> RunningServer:
    """Start wraptile with the CWL Deploy/Replace/Undeploy service; return once it answers.

    :param workdir: holds ``part2.log``, ``processes/`` (deployed packages) and ``jobs/`` (one
        directory per job: job order, cwltool command/stdout/stderr, outputs); the latter two
        are emptied at start.
    :param wraptile_bin: bin directory (or python) of the wraptile virtualenv, with
        ``dev/requirements-part2.txt`` installed (cwltool; rasterio ... for water-bodies).
    :param env: extra environment for the server and hence the CWL tools (e.g. ``stack.env()``:
        ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ... for the water-bodies package).
    :param max_jobs: cwltool runs at once (more jobs wait as ``accepted``).
    :param parallel: run each job's independent steps in parallel (``cwltool --parallel``).
    """
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    python = _python(wraptile_bin)
    server_env = _server_env()
    for var in ("EOZILLA_SERVICE", "EOZILLA_SERVER_HOST", "EOZILLA_SERVER_PORT"):
        server_env.pop(var, None)
    server_env.update(env or {})
    # The repository root: for dev.part2.service and for the tools' `python -m dev.part2.steps`.
    server_env["PYTHONPATH"] = str(REPO)
    server_env["OGC_PART2_WORKDIR"] = str(workdir)
    for var in ("NO_PROXY", "no_proxy"):
        server_env[var] = ",".join(filter(None, [NO_PROXY, server_env.get(var)]))
    options = [f"--max-jobs={max_jobs}", "--parallel" if parallel else "--no-parallel"]

    def start(port: int) -> RunningServer:
        nonce = uuid.uuid4().hex
        server_env["OGC_PART2_NONCE"] = nonce  # shown on the landing page; _spawn waits for it
        # `python -m wraptile.cli`, not the console script (its shebang breaks on long venv paths).
        cmd = [str(python), "-m", "wraptile.cli", "run", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--", SERVICE_REF, *options]
        url = f"http://127.0.0.1:{port}"
        return _spawn("part2", cmd, url, workdir / LOG_NAME, workdir, server_env, timeout, nonce)

    return _start_with_port_retry(start, port)


def stack_env(stack: Any) -> dict[str, str]:
    """What a Part 2 server beside a :class:`dev.stack.Stack` needs from it: S3 and the results bucket.

    Uses only the stack's S3 attributes, so it can be called as soon as moto is up.
    """
    return {
        "AWS_ENDPOINT_URL": stack.s3_endpoint,
        "AWS_ACCESS_KEY_ID": stack.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": stack.aws_secret_access_key,
        "AWS_DEFAULT_REGION": stack.region_name,
        "AWS_EC2_METADATA_DISABLED": "true",
        "OGC_DEV_RESULTS_BUCKET": stack.results_bucket,
        "OGC_DEV_STEP_DELAY": str(stack.step_delay),
    }


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxies


def deploy_package(
    base_url: str,
    package: Path,
    *,
    w: str | None = None,
    media_type: str | None = None,
    replace: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """POST (or, with ``replace=process_id``, PUT) a CWL file; return the processSummary (``{}`` for 204).

    The media type defaults from the suffix (``.json`` -> ``application/cwl+json``, else
    ``application/cwl+yaml``). Raises ``urllib.error.HTTPError`` (with the OGC exception as body).
    """
    media_type = media_type or (
        "application/cwl+json" if package.suffix == ".json" else "application/cwl+yaml"
    )
    url = base_url.rstrip("/") + "/processes" + (f"/{replace}" if replace else "")
    if w:
        url += "?" + urllib.parse.urlencode({"w": w})
    request = urllib.request.Request(
        url,
        data=package.read_bytes(),
        method="PUT" if replace else "POST",
        headers={"Content-Type": media_type, "Accept": "application/json"},
    )
    with _OPENER.open(request, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body.strip() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.part2.server", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--wraptile-bin", type=Path, default=default_wraptile_bin())
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--max-jobs", type=int, default=4)
    parser.add_argument("--deploy", type=Path, action="append", default=[], help="a CWL package to deploy")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    t0 = time.monotonic()
    server = start_part2_server(
        args.workdir, wraptile_bin=args.wraptile_bin, port=args.port, max_jobs=args.max_jobs
    )
    try:
        print(f"part2 server ready in {time.monotonic() - t0:.1f}s: {server.url}", file=sys.stderr)
        print(f"pid {server.pid}, log {server.log_path}", file=sys.stderr)
        for package in args.deploy:
            try:
                summary = deploy_package(server.url, package)
            except urllib.error.HTTPError as err:
                print(f"deploying {package} failed: {err.code} {err.read().decode()}", file=sys.stderr)
                return 1
            print(f"deployed {summary['id']} {summary['version']} from {package}", file=sys.stderr)
        print(server.url, flush=True)
        while not stop.wait(0.5):
            if not server.alive():
                print(f"the server exited; log tail:\n{server.log_tail()}", file=sys.stderr)
                return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
