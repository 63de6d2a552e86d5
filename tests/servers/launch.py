"""Start real OGC API - Processes servers on 127.0.0.1 for the tests.

Each server runs from its own virtualenv (given as ``bin_dir``), with this
directory on its PYTHONPATH so it can load the test processes
(``pygeoapi_processes.py`` / ``wraptile_service.py``, sharing
``processes_core.py``).  Stdlib only: this module is imported by the test
process, whose environment has neither pygeoapi nor wraptile.

Manual use::

    python -m tests.servers.launch pygeoapi --bin-dir .venv-pygeoapi/bin --workdir /tmp/pg
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SERVERS_DIR = Path(__file__).resolve().parent

# Process ids -> pygeoapi processor classes in pygeoapi_processes.py.
PYGEOAPI_PROCESSORS = {
    "echo": "EchoProcessor",
    "sleep": "SleepProcessor",
    "fail": "FailProcessor",
    "water-stac": "WaterStacProcessor",
}

# wraptile's LocalService runs jobs in a thread pool of 3 by default; more
# workers so parallel test jobs do not queue up behind long sleeps.
WRAPTILE_MAX_WORKERS = 8

# Seconds to wait after SIGTERM before SIGKILL.  Both servers normally exit
# on SIGTERM within ~0.2s, even with jobs running; this is only a backstop.
STOP_GRACE = 5.0

# Servers started by this process, stopped at interpreter exit as a safety
# net (e.g. a test run interrupted before its fixture teardown).
_LIVE: set[RunningServer] = set()
_LIVE_LOCK = threading.Lock()


class ServerStartError(RuntimeError):
    """The server did not come up; the message includes the log tail."""


def stop_process(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace: float = STOP_GRACE
) -> None:
    """Signal our child process (exactly ``proc.pid``, never a group), then SIGKILL after ``grace`` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(eq=False)  # eq=False keeps identity hashing (for _LIVE)
class RunningServer:
    name: str  # "pygeoapi" | "wraptile"
    url: str  # API root for the client, no trailing slash
    pid: int
    log_path: Path
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Terminate our server process (SIGTERM, then SIGKILL). Idempotent."""
        proc, self._proc = self._proc, None
        stop_process(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


def free_port() -> int:
    """Return a currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- helpers ---------------------------------------------------------------


def _python(bin_dir: Path) -> Path:
    """Accept a venv's bin directory or its python executable."""
    bin_dir = Path(bin_dir)
    python = bin_dir if bin_dir.is_file() else bin_dir / "python"
    if not python.exists():
        raise FileNotFoundError(f"no python interpreter at {python}")
    # No resolve(): a venv's python is a symlink and must be run via the venv
    # path, or the venv's site-packages are not used.
    return python.absolute()


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    # Only our plugin modules on the path: the test process's PYTHONPATH may
    # point at packages that must not shadow the server venv's own.
    env["PYTHONPATH"] = str(SERVERS_DIR)
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach log_path immediately
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ from the servers in the repo
    for var in ("PYTHONHOME", "VIRTUAL_ENV", "FLASK_DEBUG", "FLASK_APP"):
        env.pop(var, None)
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


# Ignore any http(s)_proxy settings: the servers are on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str, nonce: str) -> bool:
    # The nonce is in the landing page's description; checking it makes sure
    # the answer comes from OUR server, not from another one that won a race
    # for the same free_port() (ours then exits with "address in use").
    req = urllib.request.Request(url + "/", headers={"Accept": "application/json"})
    try:
        with _OPENER.open(req, timeout=2) as resp:
            return resp.status == 200 and nonce in resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return False


def _spawn(
    name: str,
    cmd: list[str],
    url: str,
    log_path: Path,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    nonce: str,
) -> RunningServer:
    """Start `cmd`, wait until `url` answers; stop it and raise if it does not."""
    # Not a `with`: the handle lives as long as the server; stop() closes it.
    log = open(log_path, "ab")  # noqa: SIM115
    log.write(f"$ {' '.join(cmd)}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    server = RunningServer(name, url, proc.pid, log_path, _proc=proc, _log=log)
    with _LIVE_LOCK:
        _LIVE.add(server)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _answers(url, nonce):
            return server
        time.sleep(0.1)
    code = proc.poll()
    server.stop()
    reason = f"exited with code {code}" if code is not None else f"did not answer within {timeout:g}s"
    raise ServerStartError(f"{name} at {url} {reason}; last log lines of {log_path}:\n{_tail(log_path)}")


def _start_with_port_retry(start: Callable[[int], RunningServer], port: int | None) -> RunningServer:
    # free_port() can race with other tests grabbing the same port; when we
    # picked the port ourselves, a failed start is retried on another one.
    if port is not None:
        return start(port)
    for attempt in range(3):
        try:
            return start(free_port())
        except ServerStartError as err:
            if attempt == 2 or "in use" not in str(err).lower():
                raise
    raise AssertionError("unreachable")


# --- pygeoapi --------------------------------------------------------------


def _pygeoapi_config(port: int, workdir: Path, nonce: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            # Used to build Location headers and links.
            "url": url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "pretty_print": True,
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
            # TinyDB: the only file-based manager with async support.
            "manager": {
                "name": "TinyDB",
                "connection": str(workdir / "pygeoapi-jobs.db"),
                "output_dir": str(workdir / "pygeoapi-outputs"),
            },
        },
        "logging": {"level": "INFO"},
        "metadata": {
            "identification": {
                "title": "OGC test processes (pygeoapi)",
                "description": f"Test server for airflow-provider-ogc (instance {nonce})",
                "keywords": ["test"],
                "keywords_type": "theme",
                "terms_of_service": "https://example.org/tos",
                "url": "https://example.org",
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "tests", "url": "https://example.org"},
            "contact": {"name": "tests", "email": "tests@example.org"},
        },
        "resources": {
            pid: {"type": "process", "processor": {"name": f"pygeoapi_processes.{cls}"}}
            for pid, cls in PYGEOAPI_PROCESSORS.items()
        },
    }


def start_pygeoapi(
    workdir: Path, bin_dir: Path, port: int | None = None, timeout: float = 60
) -> RunningServer:
    """Start pygeoapi (Flask dev server, TinyDB job manager) in `workdir`.

    Files written to `workdir`: pygeoapi-config.yml, pygeoapi-openapi.yml,
    pygeoapi-jobs.db (+ .lock), pygeoapi-outputs/, pygeoapi.log.  Jobs of an
    earlier run in the same workdir are removed, so every start begins with
    an empty job list (as wraptile, which keeps jobs in memory, does).
    """
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    python = _python(bin_dir)
    env = _server_env()
    for stale in ("pygeoapi-jobs.db", "pygeoapi-jobs.db.lock"):
        (workdir / stale).unlink(missing_ok=True)
    outputs = workdir / "pygeoapi-outputs"
    if outputs.is_dir():
        for f in outputs.iterdir():
            f.unlink()

    def start(port: int) -> RunningServer:
        deadline = time.monotonic() + timeout  # one budget for both steps
        config_path = workdir / "pygeoapi-config.yml"
        openapi_path = workdir / "pygeoapi-openapi.yml"
        log_path = workdir / "pygeoapi.log"
        outputs.mkdir(exist_ok=True)
        nonce = uuid.uuid4().hex
        # JSON is valid YAML, so no yaml library is needed here.
        config_path.write_text(json.dumps(_pygeoapi_config(port, workdir, nonce), indent=2))
        env.update(PYGEOAPI_CONFIG=str(config_path), PYGEOAPI_OPENAPI=str(openapi_path))
        # flask_app refuses to import without the OpenAPI document.  The venv's
        # console scripts are avoided (`python -c`/`-m`): their shebang breaks
        # for venv paths longer than the kernel's shebang limit.
        gen = subprocess.run(
            [
                str(python),
                "-c",
                "from pygeoapi import cli; cli()",
                "openapi",
                "generate",
                str(config_path),
                "--output-file",
                str(openapi_path),
            ],
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
        # `flask run`, not `pygeoapi serve`: the latter runs Flask in debug
        # mode with the reloader, i.e. a second process we would not own.
        cmd = [
            str(python),
            "-m",
            "flask",
            "--app",
            "pygeoapi.flask_app",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-reload",
            "--no-debugger",
            "--with-threads",
        ]
        return _spawn(
            "pygeoapi",
            cmd,
            f"http://127.0.0.1:{port}",
            log_path,
            workdir,
            env,
            max(deadline - time.monotonic(), 1.0),
            nonce,
        )

    return _start_with_port_retry(start, port)


# --- wraptile --------------------------------------------------------------


def start_wraptile(
    workdir: Path, bin_dir: Path, port: int | None = None, timeout: float = 60
) -> RunningServer:
    """Start wraptile (uvicorn, LocalService with the test processes).

    Only wraptile.log is written to `workdir`; jobs live in server memory.
    """
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    python = _python(bin_dir)
    env = _server_env()
    # The service is configured on the command line; nothing else to write.
    env.pop("EOZILLA_SERVICE", None)
    env.pop("EOZILLA_SERVER_HOST", None)
    env.pop("EOZILLA_SERVER_PORT", None)

    def start(port: int) -> RunningServer:
        nonce = uuid.uuid4().hex
        env["OGC_TEST_SERVER_NONCE"] = nonce  # read by wraptile_service
        cmd = [
            str(python),
            "-m",
            "wraptile.cli",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--",
            "wraptile_service:service",
            f"--max-workers={WRAPTILE_MAX_WORKERS}",
        ]
        return _spawn(
            "wraptile",
            cmd,
            f"http://127.0.0.1:{port}",
            workdir / "wraptile.log",
            workdir,
            env,
            timeout,
            nonce,
        )

    return _start_with_port_retry(start, port)


STARTERS: dict[str, Callable[..., RunningServer]] = {
    "pygeoapi": start_pygeoapi,
    "wraptile": start_wraptile,
}


# --- manual use ------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers.launch",
        description="Start one OGC API - Processes test server and keep it running.",
    )
    parser.add_argument("server", choices=sorted(STARTERS))
    parser.add_argument(
        "--bin-dir", type=Path, required=True, help="bin directory (or python) of the server's virtualenv"
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    t0 = time.monotonic()
    server = STARTERS[args.server](args.workdir, args.bin_dir, args.port, args.timeout)
    print(f"{server.name} ready in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    print(f"pid {server.pid}, log {server.log_path}", file=sys.stderr)
    print(server.url, flush=True)
    try:
        while not stop.wait(0.5):
            if not server.alive():
                print(f"{server.name} exited; log tail:\n{server.log_tail()}", file=sys.stderr)
                return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
