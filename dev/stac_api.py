"""The dev stack's STAC API: stac-fastapi-pgstac over PostgreSQL 15 + PostGIS 3 + pgstac, on 127.0.0.1.

Like the seed's Planetary Computer (whose STAC API is stac-fastapi over pgstac), it serves the
collection ``landsat-c2-l2`` with the synthetic scenes of :mod:`dev.scenes` as items, so a client
finds them with an ordinary STAC API search (bbox, datetime, CQL2 ``filter``, paging) and reads
each at ``{api}/collections/landsat-c2-l2/items/{id}``.

* **PostgreSQL**: Debian's ``postgresql-15`` with ``postgresql-15-postgis-3`` (``make postgis``
  installs them), a throwaway cluster made by ``initdb`` in ``WORKDIR/pgstac`` (or, when the
  ``postgres`` user cannot reach the workdir, e.g. under pytest's private ``/tmp/pytest-of-root``,
  in a fresh ``/tmp/ogc-dev-pgstac-*``), a random password (scram-sha-256), TCP on a free
  127.0.0.1 port only, no Unix socket, ``fsync`` off. As root, ``initdb`` and ``pg_ctl`` run as
  the ``postgres`` user (PostgreSQL refuses root); otherwise as the current user.
* **pgstac**: ``pypgstac``'s migration, then the collection and items written by :mod:`dev.synth`
  are loaded (``python -m dev.stac_api load``, in ``.venv-stac``).
* **API**: ``uvicorn stac_fastapi.pgstac.app:create_app --factory`` from ``.venv-stac`` on a free
  127.0.0.1 port, all its default extensions (query, sort, fields, filter, token pagination,
  collection search), no transactions.

Stopping: the API by its PID (SIGTERM), PostgreSQL with ``pg_ctl stop -m fast`` (SIGINT to the
postmaster's PID when ``pg_ctl`` cannot), then its data directory is removed.

The stack side is stdlib only; ``load`` runs in ``.venv-stac`` (pypgstac, psycopg).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.servers.launch import (
    RunningServer,
    ServerStartError,
    _python,
    _server_env,
    _spawn,
    _start_with_port_retry,
    _tail,
    free_port,
)

REPO = Path(__file__).resolve().parent.parent
PG_VERSION = "15"
PG_BIN = Path(os.environ.get("OGC_DEV_PG_BIN") or f"/usr/lib/postgresql/{PG_VERSION}/bin")
POSTGIS_CONTROL = Path(f"/usr/share/postgresql/{PG_VERSION}/extension/postgis.control")
PG_USER = "postgres"  # the database superuser (pgstac's migration creates its own roles)
PG_DATABASE = "postgres"
PG_LOG = "postgres.log"
LOAD_LOG = "stac-load.log"
API_LOG = "stac-api.log"
INSTALL_HINT = (
    f"the STAC API needs Debian's postgresql-{PG_VERSION} and postgresql-{PG_VERSION}-postgis-3: "
    f"run `make postgis` as root (apt-get install -y postgresql-{PG_VERSION} "
    f"postgresql-{PG_VERSION}-postgis-3)"
)


class StacApiError(RuntimeError):
    """PostgreSQL, pgstac or the API did not come up (the message includes the log tail)."""


def missing_requirements(stac_bin: Path | None = None) -> str | None:
    """Why the STAC API cannot start here (a sentence with the fix), or None."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return f"{PG_BIN}/initdb not found: {INSTALL_HINT}"
    if not POSTGIS_CONTROL.exists():
        return f"PostGIS is not installed ({POSTGIS_CONTROL} missing): {INSTALL_HINT}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root, but there is no `{PG_USER}` user to run PostgreSQL: {INSTALL_HINT}"
    if stac_bin is not None and not (Path(stac_bin) / "python").exists():
        return f"the STAC API's virtualenv is missing ({stac_bin}): run `make .venv-stac/.stamp`"
    return None


# --- PostgreSQL ---------------------------------------------------------------------------------


def _as_pg_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run `cmd` as the postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *cmd]
    return cmd


def _pg_owned_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)
    return path


def _pg_can_use(path: Path) -> bool:
    """Whether the postgres user can reach and write `path` (every parent must be traversable)."""
    if os.geteuid() != 0:
        return os.access(path, os.W_OK | os.X_OK)
    check = subprocess.run(
        _as_pg_user(["test", "-w", str(path), "-a", "-x", str(path)]),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    return check.returncode == 0


def _pg_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC")
    return env


_LIVE: set[PostgresServer] = set()


@atexit.register
def _stop_all() -> None:
    """Never leave a cluster running when the process that started it exits (e.g. a test run)."""
    for server in list(_LIVE):
        server.stop()


@dataclass(eq=False)
class PostgresServer:
    """A PostgreSQL cluster started with ``pg_ctl``; duck-types :class:`RunningServer`."""

    name: str
    url: str  # postgresql://user@127.0.0.1:port/db (no password)
    pid: int  # the postmaster
    port: int
    password: str
    data_dir: Path
    log_path: Path  # initdb, pg_ctl and (after stop) the server's own log
    server_log: Path  # the server's log while it runs (in its data's folder, owned by postgres)
    remove_dir: Path | None = None  # the directory to delete after stopping
    _stopped: bool = field(default=False, repr=False)

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def libpq_env(self) -> dict[str, str]:
        return {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": PG_USER,
            "PGPASSWORD": self.password,
            "PGDATABASE": PG_DATABASE,
        }

    def alive(self) -> bool:
        return not self._stopped and pid_alive(self.pid)

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` (SIGINT to the postmaster if that fails); remove the data. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        _LIVE.discard(self)
        stop_postgres(self.data_dir, self.pid, self.log_path)
        keep_server_log(self.server_log, self.log_path)
        if self.remove_dir is not None:
            shutil.rmtree(self.remove_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.server_log if self.server_log.exists() else self.log_path, lines)


def keep_server_log(server_log: Path, log_path: Path) -> None:
    """Append the server's log to `log_path` (the server's own is deleted with the data)."""
    try:
        text = server_log.read_bytes()
    except OSError:
        return
    with open(log_path, "ab") as log:
        log.write(b"--- server log ---\n" + text)


def pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stop_postgres(data_dir: Path, pid: int | None, log_path: Path, timeout: float = 30.0) -> None:
    """Fast shutdown (rolls back open transactions, disconnects clients) of the cluster in `data_dir`."""
    if data_dir.is_dir():
        with open(log_path, "ab") as log:
            subprocess.run(
                _as_pg_user([str(PG_BIN / "pg_ctl"), "stop", "-D", str(data_dir), "-m", "fast", "-w"]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_pg_env(),
                timeout=timeout + 5,
                check=False,
            )
    if pid is None or not pid_alive(pid):
        return
    os.kill(pid, signal.SIGINT)  # what `pg_ctl stop -m fast` sends
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown


def start_postgres(workdir: Path, timeout: float = 60.0) -> PostgresServer:
    """initdb a fresh cluster and start it on a free 127.0.0.1 port; return once it accepts connections."""
    problem = missing_requirements()
    if problem:
        raise StacApiError(problem)
    workdir = Path(workdir).absolute()
    log_path = workdir / PG_LOG
    log_path.unlink(missing_ok=True)
    base = workdir / "pgstac"
    if base.exists():
        shutil.rmtree(base)
    (workdir / "pgstac-location").unlink(missing_ok=True)
    remove_dir: Path | None = base
    _pg_owned_dir(base)
    if not _pg_can_use(base):
        # e.g. pytest's /tmp/pytest-of-root is 0700: the postgres user cannot reach below it.
        shutil.rmtree(base)
        base = Path(tempfile.mkdtemp(prefix="ogc-dev-pgstac-"))
        _pg_owned_dir(base)
        remove_dir = base
        (workdir / "pgstac-location").write_text(f"{base}\n")
    data_dir = base / "data"
    server_log = base / "server.log"  # written by the server itself, as the postgres user
    password = secrets.token_urlsafe(18)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_USER)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    pwfile.chmod(0o600)
    deadline = time.monotonic() + timeout

    def run(cmd: list[str], what: str) -> None:
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.run(
                _as_pg_user(cmd),
                cwd=base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_pg_env(),
                timeout=max(deadline - time.monotonic(), 5.0),
                check=False,
            )
        if proc.returncode != 0:
            # The server's own words (e.g. "Address already in use") into the error and our log.
            keep_server_log(server_log, log_path)
            server_log.unlink(missing_ok=True)
            raise StacApiError(f"{what} failed ({proc.returncode}); {log_path}:\n{_tail(log_path)}")

    initdb = [str(PG_BIN / "initdb"), "-D", str(data_dir), "-U", PG_USER, "--pwfile", str(pwfile)]
    initdb += ["--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"]
    run(initdb, "initdb")
    pwfile.unlink()
    for attempt in range(3):
        port = free_port()
        options = [
            f"-p {port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",  # TCP only: no socket path length or permission issues
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",  # throwaway data
            "-c max_connections=50 -c shared_buffers=32MB",
        ]
        start = [str(PG_BIN / "pg_ctl"), "start", "-D", str(data_dir), "-l", str(server_log), "-w"]
        start += ["-t", str(int(max(deadline - time.monotonic(), 5))), "-o", " ".join(options)]
        try:
            run(start, "pg_ctl start")
            break
        except StacApiError as err:
            if attempt == 2 or "in use" not in str(err).lower():
                raise
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    server = PostgresServer(
        name="postgres",
        url=f"postgresql://{PG_USER}@127.0.0.1:{port}/{PG_DATABASE}",
        pid=pid,
        port=port,
        password=password,
        data_dir=data_dir,
        log_path=log_path,
        server_log=server_log,
        remove_dir=remove_dir,
    )
    _LIVE.add(server)
    return server


# --- pgstac and the API -------------------------------------------------------------------------


def _stac_env(postgres: PostgresServer) -> dict[str, str]:
    env = _server_env()
    env = {k: v for k, v in env.items() if not k.startswith("PG")}
    env.update(postgres.libpq_env())
    env["PYTHONPATH"] = str(REPO)
    return env


def _run_in_stac_venv(
    workdir: Path, stac_bin: Path, postgres: PostgresServer, args: list[str], timeout: float
) -> dict[str, Any]:
    cmd = [str(_python(stac_bin)), "-m", "dev.stac_api", *args]
    log_path = Path(workdir) / LOAD_LOG
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=_stac_env(postgres),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    with open(log_path, "ab") as log:
        log.write(b"$ " + " ".join(cmd).encode() + b"\n" + proc.stderr + proc.stdout)
    if proc.returncode != 0:
        raise StacApiError(
            f"`dev.stac_api {args[0]}` failed ({proc.returncode}); {log_path}:\n{_tail(log_path)}"
        )
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def migrate_pgstac(workdir: Path, stac_bin: Path, postgres: PostgresServer, timeout: float) -> str:
    """Install pgstac (PostGIS, btree_gist, its schema and roles) with pypgstac; return its version."""
    return str(_run_in_stac_venv(workdir, stac_bin, postgres, ["migrate"], timeout)["pgstac_version"])


def load_pgstac(
    workdir: Path, stac_bin: Path, postgres: PostgresServer, collection: Path, items: Path, timeout: float
) -> int:
    """Load (upsert) the collection and the items into pgstac; return the number of items stored."""
    args = ["load", "--collection", str(collection), "--items", str(items)]
    return int(_run_in_stac_venv(workdir, stac_bin, postgres, args, timeout)["items"])


def start_api(workdir: Path, stac_bin: Path, postgres: PostgresServer, timeout: float) -> RunningServer:
    """stac-fastapi-pgstac under uvicorn on a free 127.0.0.1 port; return once its landing page answers."""
    python = _python(stac_bin)
    env = _stac_env(postgres)
    for var in ("ENABLED_EXTENSIONS", "ENABLE_TRANSACTIONS_EXTENSIONS", "ROOT_PATH", "PREFIX_PATH"):
        env.pop(var, None)
    env.update(DB_MIN_CONN_SIZE="1", DB_MAX_CONN_SIZE="5")

    def start(port: int) -> RunningServer:
        nonce = uuid.uuid4().hex
        env.update(
            STAC_FASTAPI_TITLE="airflow-provider-ogc dev stack STAC API",
            STAC_FASTAPI_DESCRIPTION=(
                f"Synthetic Landsat C2 L2 scenes (stac-fastapi-pgstac over pgstac; instance {nonce})"
            ),
            STAC_FASTAPI_LANDING_ID="ogc-dev-stac",
        )
        cmd = [str(python), "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-server-header"]
        url = f"http://127.0.0.1:{port}"
        return _spawn("stac", cmd, url, Path(workdir) / API_LOG, Path(workdir), env, timeout, nonce)

    try:
        return _start_with_port_retry(start, None)
    except ServerStartError as err:
        raise StacApiError(str(err)) from err


# --- inside .venv-stac: migrate and load ---------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    t0 = time.monotonic()
    with PgstacDB() as db:  # libpq's PG* environment variables
        version = Migrate(db).run_migration()
    print(f"pgstac {version}: migrated in {time.monotonic() - t0:.2f}s", file=sys.stderr)
    print(json.dumps({"pgstac_version": version}))
    return 0


def _load(args: argparse.Namespace) -> int:
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods

    t0 = time.monotonic()
    with PgstacDB() as db:
        loader = Loader(db)
        loader.load_collections(str(args.collection), Methods.upsert)
        loader.load_items(str(args.items), Methods.upsert)
        count = int(db.query_one("SELECT count(*) FROM pgstac.items") or 0)  # one column: the value
    print(f"{count} item(s) loaded in {time.monotonic() - t0:.2f}s", file=sys.stderr)
    print(json.dumps({"items": count}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.stac_api", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="install or upgrade pgstac in the database of the PG* environment")
    load = sub.add_parser("load", help="upsert a collection (JSON) and items (ndjson) into pgstac")
    load.add_argument("--collection", type=Path, required=True)
    load.add_argument("--items", type=Path, required=True)
    args = parser.parse_args(argv)
    return {"migrate": _migrate, "load": _load}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
