"""PostgreSQL and Redis from Debian's packages on 127.0.0.1, for the production-shaped Airflow (stdlib only).

Each runs as a direct child of the test process (no daemonising), on a free port, with its data
in a directory of its own, and is stopped by its PID::

    with PostgresServer(tmp / "pg") as pg, RedisServer(tmp / "redis") as redis:
        AirflowStack(..., database_url=pg.sqlalchemy_url, broker_url=redis.url)

PostgreSQL refuses to run as root: as root, ``initdb`` and ``postgres`` run as the ``postgres``
user (``Popen(user=...)``) on a data directory it owns. pytest keeps its temporary tree private to
root (mode 0700), where ``postgres`` cannot enter, so as root the data directory is a private
(0700) ``/tmp/ogc-test-pg-*`` directory owned by ``postgres``, linked from the given directory as
``data`` and deleted on stop. Durability is switched off (``fsync``, ``synchronous_commit``,
``full_page_writes``): the database lives as long as one test module.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from tests.servers.launch import free_port, stop_process

PG_BIN = Path(os.environ.get("OGC_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = Path(os.environ.get("OGC_TEST_REDIS_SERVER", "/usr/bin/redis-server"))
START_TIMEOUT = 60.0
STOP_GRACE = 10.0

_LIVE: set[_Service] = set()


@atexit.register
def _stop_all() -> None:
    for service in list(_LIVE):
        service.stop()


class ServiceError(RuntimeError):
    pass


def missing() -> list[str]:
    """The Debian programs these services need that are not installed (``make system-packages``)."""
    return [str(p) for p in (PG_BIN / "postgres", PG_BIN / "initdb", REDIS_SERVER) if not p.exists()]


class _Service:
    name = "service"

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def _popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, **kwargs
        )

    def _wait_port(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.name} not listening after {START_TIMEOUT:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM (PostgreSQL: SIGINT, its fast shutdown) to our process, SIGKILL after STOP_GRACE."""
        proc, self.proc = self.proc, None
        stop_process(proc, self._stop_signal, STOP_GRACE)
        if self._log is not None:
            self._log.close()
            self._log = None
        _LIVE.discard(self)

    _stop_signal = signal.SIGTERM

    def __enter__(self) -> _Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresServer(_Service):
    """PostgreSQL (Debian's ``postgresql-15``) with a database ``airflow`` owned by superuser ``airflow``."""

    name = "postgres"
    _stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, exit
    user = "airflow"
    password = "airflow"
    database = "airflow"

    def __init__(self, workdir: Path, max_connections: int = 300) -> None:
        super().__init__(workdir)
        self.max_connections = max_connections
        self._as_root = os.geteuid() == 0
        self._private: Path | None = None
        if self._as_root:
            self._private = Path(tempfile.mkdtemp(prefix="ogc-test-pg-"))
            pw = pwd.getpwnam("postgres")
            os.chown(self._private, pw.pw_uid, pw.pw_gid)
            self.data_dir = self._private / "data"
            link = self.workdir / "data"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(self.data_dir)
        else:
            self.data_dir = self.workdir / "data"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self) -> dict[str, Any]:
        return {"user": "postgres", "group": "postgres", "extra_groups": []} if self._as_root else {}

    def start(self) -> PostgresServer:
        _LIVE.add(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        pwfile = (self._private or self.workdir) / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        init = subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            cwd="/",
            **self._run_as(),
        )
        (self.workdir / "initdb.log").write_text(init.stdout + init.stderr)
        if init.returncode != 0:
            raise ServiceError(f"initdb failed:\n{init.stdout}{init.stderr}")
        settings = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.data_dir),
            "max_connections": str(self.max_connections),
            "shared_buffers": "128MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        argv = [str(PG_BIN / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.proc = self._popen(argv, cwd="/", **self._run_as())
        self._wait_port()
        # The server listens before it accepts logins; createdb retries until it does.
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            created = subprocess.run(
                [
                    str(PG_BIN / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    self.user,
                    self.database,
                ],
                env={**os.environ, "PGPASSWORD": self.password},
                capture_output=True,
                text=True,
            )
            if created.returncode == 0:
                return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise ServiceError(f"createdb failed: {created.stderr}\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        super().stop()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None


class RedisServer(_Service):
    """Redis (Debian's ``redis-server``) without persistence, as the Celery broker."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        _LIVE.add(self)
        try:
            argv = [
                str(REDIS_SERVER),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--daemonize",
                "no",
                "--maxclients",
                "1000",
            ]
            self.proc = self._popen(argv, cwd=self.workdir)
            self._wait_port()
        except BaseException:
            self.stop()
            raise
        return self
