"""A local water-bodies stack on 127.0.0.1: moto S3, a STAC API of synthetic Landsat scenes, pygeoapi.

Components (all on loopback, free ports, no internet needed):

* **S3**: a moto server with the buckets ``inputs`` and ``results``.
* **Input data**: synthetic Landsat C2 L2 scenes (:mod:`dev.scenes`, rendered by :mod:`dev.synth`;
  three footprints, four dates each): green/nir08 COGs in the ``inputs`` bucket, readable
  anonymously over plain HTTP.
* **STAC API**: stac-fastapi-pgstac over PostgreSQL 15 + PostGIS 3 + pgstac (:mod:`dev.stac_api`)
  serving them as the collection ``landsat-c2-l2``; the item URLs
  (``{stac_api_url}/collections/landsat-c2-l2/items/{id}``) are what ``water-bodies`` reads, as the
  seed's Planetary Computer URLs.
* **OGC API - Processes**: pygeoapi 0.21 (TinyDB job manager) serving ``water-bodies``
  (:mod:`dev.water_bodies`), which writes its results to ``s3://results/{job id}/...``.

Python API (stdlib only, importable from any of the project's virtualenvs)::

    stack = start_stack(workdir, pygeoapi_bin=Path(".venv-pygeoapi/bin"), moto_bin=Path(".venv/bin"))
    stack.ogc_url, stack.s3_endpoint, stack.stac_api_url, stack.item_urls, stack.example_inputs()
    stack.stop()

Command line (from the repository root)::

    python -m dev.stack up [--workdir .artifacts/dev-stack] [--step-delay 0.5]
    python -m dev.stack status [--workdir ...]
    python -m dev.stack down [--workdir ...]

``up`` returns once everything answers and leaves a supervisor process running in the
background; it writes ``WORKDIR/stack.json`` (URLs, PIDs, Airflow connections) and ``WORKDIR/env``
(``source`` it to get ``AIRFLOW_CONN_OGC_PROCESSES_DEFAULT``, ``AIRFLOW_CONN_AWS_DEFAULT``,
``AIRFLOW_CONN_STAC_API_DEFAULT``, ``OGC_DEV_STAC_API_URL``, AWS_*).
``down`` stops exactly the PIDs recorded in ``stack.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dev import scenes, stac_api
from tests.servers.launch import (
    RunningServer,
    ServerStartError,
    _pygeoapi_config,
    _python,
    _server_env,
    _spawn,
    _start_with_port_retry,
    _tail,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / ".artifacts" / "dev-stack"
# The rendered COGs, reused by every stack of this checkout (keyed by the generator's code).
SYNTH_CACHE = Path(os.environ.get("OGC_DEV_SYNTH_CACHE") or REPO / ".artifacts" / "synth-cache")

# moto accepts any key pair; these only have to be consistent between the stack's users.
ACCESS_KEY_ID = "dev-stack-access-key"
SECRET_ACCESS_KEY = "dev-stack-secret-key"
REGION = "us-east-1"

PROCESSORS = {"water-bodies": "dev.pygeoapi_water_bodies.WaterBodiesProcessor"}
LOGS = ("moto.log", "pygeoapi.log", "synth.log", stac_api.PG_LOG, stac_api.LOAD_LOG, stac_api.API_LOG)
NO_PROXY = "127.0.0.1,localhost"


class StackError(RuntimeError):
    """The stack did not come up (the message includes the relevant log tail)."""


@dataclass
class Stack:
    workdir: Path
    ogc_url: str
    s3_endpoint: str
    stac_api_url: str  # the STAC API's root (landing page)
    item_urls: dict[str, str]  # scene id -> STAC Item URL in the STAC API (every synthetic scene)
    part2_url: str = ""  # the Part 2 (deploy/replace/undeploy) server, when started
    startup_seconds: float = 0.0
    step_delay: float = 0.0
    aws_access_key_id: str = ACCESS_KEY_ID
    aws_secret_access_key: str = SECRET_ACCESS_KEY
    region_name: str = REGION
    inputs_bucket: str = scenes.INPUTS_BUCKET
    results_bucket: str = scenes.RESULTS_BUCKET
    pgstac_version: str = ""
    # RunningServer, or stac_api.PostgresServer for "postgres"
    servers: dict[str, Any] = field(default_factory=dict, repr=False)

    # --- what clients need ---

    @property
    def scene_item_urls(self) -> list[str]:
        """The seed's two scenes' item URLs, in the seed's order."""
        return [self.item_urls[i] for i in scenes.DEFAULT_SCENES]

    def example_inputs(
        self, item_ids: list[str] | None = None, aoi: str = scenes.DEFAULT_AOI
    ) -> dict[str, Any]:
        """An execute request's ``inputs`` for ``water-bodies``, shaped as in the seed."""
        ids = item_ids or list(scenes.DEFAULT_SCENES)
        return {
            "stac_items": [self.item_urls[i] for i in ids],
            "aoi": aoi,
            "epsg": "EPSG:4326",
            "bands": ["green", "nir08"],
        }

    def airflow_connections(self) -> dict[str, dict[str, Any]]:
        """Connection id -> Airflow connection (as the JSON of an ``AIRFLOW_CONN_*`` variable)."""
        part2 = (
            {"ogc_part2": {"conn_type": "ogc_processes", "host": self.part2_url}} if self.part2_url else {}
        )
        return {
            **part2,
            "ogc_processes_default": {"conn_type": "ogc_processes", "host": self.ogc_url},
            "stac_api_default": {"conn_type": "stac_api", "host": self.stac_api_url},
            "aws_default": {
                "conn_type": "aws",
                "login": self.aws_access_key_id,
                "password": self.aws_secret_access_key,
                "extra": {"endpoint_url": self.s3_endpoint, "region_name": self.region_name},
            },
        }

    def s3_client(self) -> Any:
        """A boto3 S3 client on this stack's moto server, with its credentials."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            region_name=self.region_name,
        )

    def env(self) -> dict[str, str]:
        """Environment for clients (Airflow, boto3, the AWS CLI) of this stack."""
        env = {f"AIRFLOW_CONN_{cid.upper()}": json.dumps(c) for cid, c in self.airflow_connections().items()}
        env.update(
            AWS_ENDPOINT_URL=self.s3_endpoint,
            AWS_ACCESS_KEY_ID=self.aws_access_key_id,
            AWS_SECRET_ACCESS_KEY=self.aws_secret_access_key,
            AWS_DEFAULT_REGION=self.region_name,
            OGC_DEV_OGC_URL=self.ogc_url,
            OGC_DEV_PART2_URL=self.part2_url,
            OGC_DEV_STAC_API_URL=self.stac_api_url,
            OGC_DEV_EXAMPLE_INPUTS=json.dumps(self.example_inputs()),
        )
        return env

    @property
    def pids(self) -> dict[str, int]:
        return {name: server.pid for name, server in self.servers.items()}

    def alive(self) -> bool:
        return bool(self.servers) and all(s.alive() for s in self.servers.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "ogc_url": self.ogc_url,
            "part2_url": self.part2_url,
            "s3_endpoint": self.s3_endpoint,
            "stac_api_url": self.stac_api_url,
            "collection": scenes.COLLECTION,
            "item_urls": self.item_urls,
            "scene_item_urls": self.scene_item_urls,
            "buckets": {"inputs": self.inputs_bucket, "results": self.results_bucket},
            "aws": {
                "access_key_id": self.aws_access_key_id,
                "secret_access_key": self.aws_secret_access_key,
                "region_name": self.region_name,
            },
            "airflow_connections": self.airflow_connections(),
            "airflow_env": {k: v for k, v in self.env().items() if k.startswith("AIRFLOW_CONN_")},
            "example_inputs": self.example_inputs(),
            "postgres": self._postgres_state(),
            "pids": self.pids,
            "logs": {name: str(self.workdir / name) for name in LOGS},
            "startup_seconds": round(self.startup_seconds, 2),
            "step_delay": self.step_delay,
        }

    def _postgres_state(self) -> dict[str, Any]:
        pg = self.servers.get("postgres")
        if pg is None:
            return {}
        return {
            "url": pg.url,
            "port": pg.port,
            "data_dir": str(pg.data_dir),
            "remove_dir": str(pg.remove_dir) if pg.remove_dir else None,
            "server_log": str(pg.server_log),
            "pgstac_version": self.pgstac_version,
        }

    def write_env_file(self, path: Path) -> None:
        lines = ["# Source me: environment for clients of the dev stack (written by python -m dev.stack)."]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in self.env().items()]
        # Loopback must never go through a proxy (httpx, boto3, GDAL/curl all honour NO_PROXY).
        lines.append(f'export NO_PROXY="{NO_PROXY}${{NO_PROXY:+,$NO_PROXY}}"')
        lines.append(f'export no_proxy="{NO_PROXY}${{no_proxy:+,$no_proxy}}"')
        path.write_text("\n".join(lines) + "\n")

    def stop(self) -> None:
        """Stop the Part 2 server, pygeoapi, the STAC API, PostgreSQL (fast shutdown), moto. Idempotent."""
        for name in ("part2", "pygeoapi", "stac", "postgres", "moto"):
            server = self.servers.get(name)
            if server is not None:
                server.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- starting -------------------------------------------------------------------------------


def _client_env(s3_endpoint: str) -> dict[str, str]:
    env = _server_env()
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE"):
        env.pop(var, None)
    env.update(
        PYTHONPATH=str(REPO),
        AWS_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY=",".join(filter(None, [NO_PROXY, env.get("NO_PROXY")])),
        no_proxy=",".join(filter(None, [NO_PROXY, env.get("no_proxy")])),
    )
    return env


def _start_moto(workdir: Path, moto_bin: Path, timeout: float) -> RunningServer:
    if moto_bin.is_file() and moto_bin.name.startswith("moto_server"):
        moto_bin = moto_bin.parent  # the console script was given: use its virtualenv's python
    python = _python(moto_bin)

    def start(port: int) -> RunningServer:
        # `python -m moto.server`, not the console script (its shebang breaks on long venv paths).
        cmd = [str(python), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        # moto's "/" (ListBuckets) cannot carry a nonce; any 200 means it is up.
        env = _server_env()
        return _spawn(
            "moto", cmd, f"http://127.0.0.1:{port}", workdir / "moto.log", workdir, env, timeout, ""
        )

    return _start_with_port_retry(start, None)


def _start_water_pygeoapi(
    workdir: Path, pygeoapi_bin: Path, s3_endpoint: str, step_delay: float, timeout: float
) -> RunningServer:
    python = _python(pygeoapi_bin)
    env = _client_env(s3_endpoint)
    env.update(OGC_DEV_RESULTS_BUCKET=scenes.RESULTS_BUCKET, OGC_DEV_STEP_DELAY=str(step_delay))
    outputs = workdir / "pygeoapi-outputs"
    outputs.mkdir(exist_ok=True)

    def start(port: int) -> RunningServer:
        deadline = time.monotonic() + timeout
        nonce = uuid.uuid4().hex
        config = _pygeoapi_config(port, workdir, nonce)
        config["metadata"]["identification"].update(
            title="airflow-provider-ogc dev stack (pygeoapi)",
            description=f"Local water-bodies stack for airflow-provider-ogc (instance {nonce})",
            keywords=["water-bodies", "dev"],
        )
        config["resources"] = {
            pid: {"type": "process", "processor": {"name": cls}} for pid, cls in PROCESSORS.items()
        }
        config_path = workdir / "pygeoapi-config.yml"
        openapi_path = workdir / "pygeoapi-openapi.yml"
        log_path = workdir / "pygeoapi.log"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        env.update(PYGEOAPI_CONFIG=str(config_path), PYGEOAPI_OPENAPI=str(openapi_path))
        generate = ["openapi", "generate", str(config_path), "--output-file", str(openapi_path)]
        gen = subprocess.run(
            [str(python), "-c", "from pygeoapi import cli; cli()", *generate],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
        with open(log_path, "ab") as log:
            log.write(gen.stdout)
        if gen.returncode != 0:
            raise ServerStartError(f"pygeoapi openapi generate failed ({gen.returncode}):\n{_tail(log_path)}")
        cmd = [str(python), "-m", "flask", "--app", "pygeoapi.flask_app", "run", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--no-reload", "--no-debugger", "--with-threads"]
        url = f"http://127.0.0.1:{port}"
        remaining = max(deadline - time.monotonic(), 1.0)
        return _spawn("pygeoapi", cmd, url, log_path, workdir, env, remaining, nonce)

    return _start_with_port_retry(start, None)


def _publish_inputs(workdir: Path, pygeoapi_bin: Path, s3_endpoint: str, timeout: float) -> dict[str, Any]:
    """Render the scenes, upload their COGs; return the paths of the STAC files (``dev.synth.write_stac``)."""
    python = _python(pygeoapi_bin)
    log_path = workdir / "synth.log"
    cmd = [str(python), "-m", "dev.synth", "--out", str(workdir / "inputs"), "--endpoint", s3_endpoint]
    cmd += ["--cache", str(SYNTH_CACHE)]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=_client_env(s3_endpoint),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    log_path.write_bytes(b"$ " + " ".join(cmd).encode() + b"\n" + proc.stderr + proc.stdout)
    if proc.returncode != 0:
        hint = ""
        if b"ModuleNotFoundError" in proc.stderr:
            requirements = REPO / "dev" / "requirements-pygeoapi.txt"
            hint = f"\n(install the process's dependencies: {python} -m pip install -r {requirements})"
        raise StackError(f"generating/publishing the input scenes failed:\n{_tail(log_path)}{hint}")
    files: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return files


def _start_postgres_and_api(
    workdir: Path, stac_bin: Path, timeout: float
) -> tuple[stac_api.PostgresServer, str, RunningServer | None, BaseException | None]:
    """PostgreSQL, pgstac's migration, then the API (it needs the schema, not the items)."""
    postgres = stac_api.start_postgres(workdir, timeout)
    try:
        version = stac_api.migrate_pgstac(workdir, stac_bin, postgres, timeout)
        api = stac_api.start_api(workdir, stac_bin, postgres, timeout)
    except BaseException as err:
        return postgres, "", None, err
    return postgres, version, api, None


def start_stack(
    workdir: Path,
    *,
    pygeoapi_bin: Path,
    moto_bin: Path,
    step_delay: float = 0.0,
    timeout: float = 60.0,
    wraptile_bin: Path | None = None,
    stac_bin: Path | None = None,
) -> Stack:
    """Start moto, the scenes' COGs and STAC API, pygeoapi with ``water-bodies``; return the stack.

    :param workdir: for logs, the pygeoapi config and job database, and the rendered COGs.
    :param pygeoapi_bin: bin directory (or python) of the pygeoapi virtualenv, which also has
        ``dev/requirements-pygeoapi.txt`` installed.
    :param moto_bin: bin directory (or python) of a virtualenv with ``moto[server]``.
    :param step_delay: seconds the process pauses after each progress report (0: full speed).
    :param wraptile_bin: bin directory of the wraptile virtualenv (with ``dev/requirements-part2.txt``);
        when given, the Part 2 server (``dev/part2``) runs beside pygeoapi, writing to the same S3.
    :param stac_bin: bin directory of the STAC API's virtualenv (stac-fastapi-pgstac, pypgstac);
        default ``$OGC_TEST_STAC_BIN`` or ``.venv-stac/bin``. PostgreSQL 15 and PostGIS 3 must be
        installed (``make postgis``).
    """
    t0 = time.monotonic()
    stac_bin = Path(stac_bin) if stac_bin is not None else _default_stac_bin()
    for label, bin_dir in (("pygeoapi_bin", pygeoapi_bin), ("moto_bin", moto_bin)):
        if not Path(bin_dir).exists():
            raise StackError(f"{label} {bin_dir} does not exist")
    problem = stac_api.missing_requirements(stac_bin)
    if problem:
        raise StackError(problem)
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in (*LOGS, "pygeoapi-jobs.db", "pygeoapi-jobs.db.lock", "pgstac-location"):
        (workdir / stale).unlink(missing_ok=True)
    outputs = workdir / "pygeoapi-outputs"
    if outputs.is_dir():
        for f in outputs.iterdir():
            f.unlink()

    try:
        moto = _start_moto(workdir, Path(moto_bin), timeout)
    except ServerStartError as err:
        raise StackError(str(err)) from err
    stack = Stack(
        workdir=workdir,
        ogc_url="",
        s3_endpoint=moto.url,
        stac_api_url="",
        item_urls={},
        step_delay=step_delay,
        servers={"moto": moto},
    )
    try:
        # Render and upload the scenes, and start PostgreSQL, pgstac and the STAC API, while
        # pygeoapi starts; then load the scenes' items into pgstac.
        errors: list[BaseException] = []
        stac_files: dict[str, Any] = {}

        def publish() -> None:
            try:
                stac_files.update(_publish_inputs(workdir, Path(pygeoapi_bin), moto.url, timeout))
            except BaseException as err:
                errors.append(err)

        def start_stac() -> None:
            try:
                postgres, version, api, error = _start_postgres_and_api(workdir, stac_bin, timeout)
            except BaseException as err:
                errors.append(err)
                return
            stack.servers["postgres"] = postgres
            stack.pgstac_version = version
            if api is not None:
                stack.servers["stac"] = api
            if error is not None:
                errors.append(error)

        threads = [
            threading.Thread(target=publish, name="dev-stack-publish", daemon=True),
            threading.Thread(target=start_stac, name="dev-stack-stac", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            stack.servers["pygeoapi"] = _start_water_pygeoapi(
                workdir, Path(pygeoapi_bin), moto.url, step_delay, timeout
            )
        finally:
            deadline = time.monotonic() + 2 * timeout
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0.1))
        if any(thread.is_alive() for thread in threads):
            raise StackError(
                f"publishing the scenes or starting the STAC API took longer than {2 * timeout:g}s"
            )
        if errors:
            raise errors[0]
        stack.ogc_url = stack.servers["pygeoapi"].url
        stack.stac_api_url = stack.servers["stac"].url
        stac_api.load_pgstac(
            workdir,
            stac_bin,
            stack.servers["postgres"],
            Path(stac_files["collection"]),
            Path(stac_files["items"]),
            timeout,
        )
        stack.item_urls = {i: scenes.item_url(stack.stac_api_url, i) for i in stac_files["ids"]}
        if wraptile_bin is not None:
            from dev.part2.server import stack_env as part2_env
            from dev.part2.server import start_part2_server

            part2 = start_part2_server(
                workdir / "part2", wraptile_bin=Path(wraptile_bin), env=part2_env(stack), timeout=timeout
            )
            stack.servers["part2"] = part2
            stack.part2_url = part2.url
    except BaseException as err:
        stack.stop()
        if isinstance(err, (ServerStartError, stac_api.StacApiError)):
            raise StackError(str(err)) from err
        raise
    stack.startup_seconds = time.monotonic() - t0
    return stack


# --- command line -----------------------------------------------------------------------------

STATE_FILE = "stack.json"
ENV_FILE = "env"
SUPERVISOR_LOG = "stack.log"


def _cmdline_matches(pid: int, *needles: str) -> bool:
    """Whether PID still runs the command we recorded (guards against PID reuse); True without /proc."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return False
    return all(n in cmdline for n in needles)


def _expected_cmd(name: str, state: dict[str, Any]) -> tuple[str, ...]:
    if name == "supervisor":
        return ("dev.stack", "_serve", state["workdir"])
    if name == "postgres":  # the postmaster: `postgres -D DATA_DIR -p PORT ...`
        return ("postgres", state["postgres"]["data_dir"], f"-p {state['postgres']['port']}")
    if name == "stac":
        return ("stac_fastapi.pgstac.app", state["stac_api_url"].rsplit(":", 1)[1])
    url = {"moto": state["s3_endpoint"], "part2": state.get("part2_url", "")}.get(name, state["ogc_url"])
    module = {"moto": "moto.server", "part2": "wraptile.cli"}.get(name, "pygeoapi.flask_app")
    return (module, url.rsplit(":", 1)[1])


def _read_state(workdir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((workdir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def _recorded_pids(state: dict[str, Any]) -> dict[str, int]:
    pids = {"supervisor": int(state["supervisor_pid"])} if state.get("supervisor_pid") else {}
    pids.update({k: int(v) for k, v in state.get("pids", {}).items()})
    return pids


def _live_pids(state: dict[str, Any]) -> dict[str, int]:
    return {
        name: pid
        for name, pid in _recorded_pids(state).items()
        if stac_api.pid_alive(pid) and _cmdline_matches(pid, *_expected_cmd(name, state))
    }


def _serve(args: argparse.Namespace) -> int:
    """The background supervisor started by ``up``: owns the servers until SIGTERM."""
    workdir = args.workdir
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    stack = start_stack(
        workdir,
        pygeoapi_bin=args.pygeoapi_bin,
        moto_bin=args.moto_bin,
        step_delay=args.step_delay,
        timeout=args.timeout,
        wraptile_bin=args.wraptile_bin if args.wraptile_bin.exists() else None,
        stac_bin=args.stac_bin,
    )
    try:
        state = {**stack.to_dict(), "supervisor_pid": os.getpid(), "env_file": str(workdir / ENV_FILE)}
        state["logs"]["supervisor"] = str(workdir / SUPERVISOR_LOG)
        stack.write_env_file(workdir / ENV_FILE)
        tmp = workdir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(workdir / STATE_FILE)  # atomic: `up` never reads half a file
        urls = f"{stack.ogc_url} {stack.s3_endpoint} {stack.stac_api_url}"
        print(f"stack up in {stack.startup_seconds:.1f}s: {urls}", flush=True)
        while not stop.wait(0.5):
            dead = [name for name, server in stack.servers.items() if not server.alive()]
            if dead:
                print(f"{', '.join(dead)} exited; stopping the stack", flush=True)
                for name in dead:
                    print(stack.servers[name].log_tail(), flush=True)
                return 1
        return 0
    finally:
        stack.stop()
        for name in (STATE_FILE, ENV_FILE):
            (workdir / name).unlink(missing_ok=True)
        print("stack stopped", flush=True)


def _up(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    state = _read_state(workdir)
    if state and _live_pids(state):
        print(f"the stack in {workdir} is already up ({state['ogc_url']}); `down` it first", file=sys.stderr)
        return 1
    for name in (STATE_FILE, ENV_FILE):
        (workdir / name).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "dev.stack", "_serve", "--workdir", str(workdir)]
    cmd += ["--pygeoapi-bin", str(args.pygeoapi_bin), "--moto-bin", str(args.moto_bin)]
    cmd += ["--step-delay", str(args.step_delay), "--timeout", str(args.timeout)]
    cmd += ["--wraptile-bin", str(args.wraptile_bin), "--stac-bin", str(args.stac_bin)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log_path = workdir / SUPERVISOR_LOG
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        # A new session: the stack outlives this command and ignores the terminal's Ctrl-C.
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = t0 + args.timeout + 10
    while time.monotonic() < deadline:
        state = _read_state(workdir)
        if state and state.get("supervisor_pid") == proc.pid:
            break
        if proc.poll() is not None:
            print(f"the stack failed to start; {log_path}:\n{_tail(log_path)}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    else:
        proc.terminate()
        print(
            f"the stack did not come up in {args.timeout:g}s; {log_path}:\n{_tail(log_path)}", file=sys.stderr
        )
        return 1
    print(f"dev stack up in {time.monotonic() - t0:.1f}s (supervisor pid {proc.pid})")
    print(f"  OGC API - Processes: {state['ogc_url']}")
    if state.get("part2_url"):
        print(f"  Part 2 (deploy):     {state['part2_url']}")
    print(f"  S3 (moto):           {state['s3_endpoint']}  buckets: inputs, results")
    pg = state["postgres"]
    print(
        f"  PostgreSQL:          127.0.0.1:{pg['port']} pgstac {pg['pgstac_version']}, data {pg['data_dir']}"
    )
    print(f"  STAC API:            {state['stac_api_url']}  (connection stac_api_default)")
    print(f"  STAC items:          {state['stac_api_url']}/collections/{scenes.COLLECTION}/items/<id>")
    print(f"                       {len(state['item_urls'])} items; the seed's two:")
    for url in state["scene_item_urls"]:
        print(f"                       {url}")
    print(f"  state:               {workdir / STATE_FILE}")
    print(f"  environment:         source {workdir / ENV_FILE}")
    print(f"  stop with:           python -m dev.stack down --workdir {workdir}")
    return 0


def _down(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    state = _read_state(workdir)
    if state is None:
        print(f"no stack recorded in {workdir}")
        return 0
    live = _live_pids(state)
    supervisor = live.pop("supervisor", None)
    if supervisor is not None:
        os.kill(supervisor, signal.SIGTERM)  # it stops its servers, then exits
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and (
            stac_api.pid_alive(supervisor) or any(stac_api.pid_alive(p) for p in live.values())
        ):
            time.sleep(0.1)
    # Servers left behind (e.g. the supervisor was killed): stop exactly the recorded PIDs, the
    # STAC API before PostgreSQL; PostgreSQL with a fast shutdown (pg_ctl stop -m fast: SIGINT).
    left = _live_pids(state)
    for name, pid in sorted(left.items(), key=lambda kv: kv[0] == "postgres"):
        print(f"stopping {name} (pid {pid})")
        if name == "postgres":
            pg = state["postgres"]
            stac_api.stop_postgres(Path(pg["data_dir"]), pid, Path(state["workdir"]) / stac_api.PG_LOG)
        else:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _live_pids(state):
        time.sleep(0.1)
    for name, pid in _live_pids(state).items():
        print(f"killing {name} (pid {pid})")
        os.kill(pid, signal.SIGKILL)
    pg = state.get("postgres", {})
    if pg.get("remove_dir") and not _live_pids(state).get("postgres"):
        if pg.get("server_log"):
            stac_api.keep_server_log(Path(pg["server_log"]), workdir / stac_api.PG_LOG)
        shutil.rmtree(pg["remove_dir"], ignore_errors=True)  # PostgreSQL's throwaway cluster
    for name in (STATE_FILE, ENV_FILE):
        (workdir / name).unlink(missing_ok=True)
    print(f"dev stack in {workdir} stopped")
    return 0


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _status(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    state = _read_state(workdir)
    if state is None:
        print(f"not running (no {workdir / STATE_FILE})")
        return 3
    live = _live_pids(state)
    urls = {"moto": state["s3_endpoint"] + "/", "pygeoapi": state["ogc_url"] + "/processes/water-bodies"}
    if state.get("part2_url"):
        urls["part2"] = state["part2_url"] + "/conformance"
    if state.get("stac_api_url"):
        urls["stac"] = f"{state['stac_api_url']}/collections/{scenes.COLLECTION}"
    ok = True
    for name, pid in _recorded_pids(state).items():
        up = name in live
        line = f"{name:<10} pid {pid:<8} {'running' if up else 'NOT RUNNING'}"
        if name in urls:
            answers = up and _answers(urls[name])
            line += f"  {urls[name]} {'answers' if answers else 'DOES NOT ANSWER'}"
            up = answers
        elif name == "postgres":
            ready = up and _pg_ready(state["postgres"]["port"])
            line += (
                f"  127.0.0.1:{state['postgres']['port']} {'accepts connections' if ready else 'NOT READY'}"
            )
            line += f" (pgstac {state['postgres']['pgstac_version']})"
            up = ready
        ok &= up
        print(line)
    if state.get("stac_api_url"):
        count = len(state.get("item_urls", {}))
        print(f"STAC API: {state['stac_api_url']} ({count} items in {scenes.COLLECTION})")
    print(f"env file: {state.get('env_file')}")
    return 0 if ok else 1


def _pg_ready(port: int) -> bool:
    try:
        check = subprocess.run(
            [str(stac_api.PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def _default_pygeoapi_bin() -> Path:
    return Path(os.environ.get("OGC_TEST_PYGEOAPI_BIN") or REPO / ".venv-pygeoapi" / "bin")


def _default_wraptile_bin() -> Path:
    return Path(os.environ.get("OGC_TEST_WRAPTILE_BIN") or REPO / ".venv-wraptile" / "bin")


def _default_stac_bin() -> Path:
    return Path(os.environ.get("OGC_TEST_STAC_BIN") or REPO / ".venv-stac" / "bin")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("up", "start the stack in the background"),
        ("down", "stop the stack's processes"),
        ("status", "show whether the stack runs"),
        ("_serve", argparse.SUPPRESS),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--workdir", type=lambda s: Path(s).absolute(), default=DEFAULT_WORKDIR)
        if name in ("up", "_serve"):
            p.add_argument("--pygeoapi-bin", type=Path, default=_default_pygeoapi_bin())
            p.add_argument("--moto-bin", type=Path, default=Path(sys.executable).parent)
            p.add_argument("--wraptile-bin", type=Path, default=_default_wraptile_bin())
            p.add_argument("--stac-bin", type=Path, default=_default_stac_bin())
            p.add_argument("--step-delay", type=float, default=0.0, help="pause after each progress step (s)")
            p.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    commands = {"up": _up, "down": _down, "status": _status, "_serve": _serve}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
