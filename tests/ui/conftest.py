"""Fixtures for the UI tests: Debian's Chromium driven by selenium, ``airflow standalone``, the dev stack.

* **Browser**: ``/usr/bin/chromium`` through ``/usr/bin/chromedriver`` (Debian's ``chromium`` and
  ``chromium-driver`` packages), driven by ``selenium`` with explicit paths, so selenium never
  downloads a browser or a driver. Headless, a fresh profile per test, no background networking.
* **Airflow**: ``airflow standalone`` (api-server, scheduler, dag-processor and triggerer under one
  parent process, LocalExecutor on SQLite, SimpleAuthManager with the admin password it generates
  into ``AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``), on a free 127.0.0.1 port,
  with ``example_dags/`` as its DAG folder.
* **OGC server**: the local water-bodies stack of ``dev/stack.py`` (moto S3, synthetic Landsat
  scenes, pygeoapi ``water-bodies``), slowed down so the job runs long enough to report progress.

Chromium is the only optional part: without ``/usr/bin/chromium`` the tests skip, except in CI
(``CI=true``), where they fail. Install: ``apt-get install -y chromium chromium-driver`` and
``pip install selenium``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.support.ci import unavailable
from tests.system.airflow_stack import ApiError, _descendants, _proc_start_time, free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from dev.stack import Stack

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
BIN_DIR = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver && pip install selenium"

# Seconds the water-bodies process pauses after each of its 11 progress reports: the job then runs
# ~17 s, so the trigger logs several "running" lines and fires well after the deferral
# (Airflow 3.3.2 fails a deferred task whose trigger fires within ~5 s of the deferral, #67287).
STEP_DELAY = 1.5
START_TIMEOUT = 240.0  # seconds for `airflow standalone` to report every component healthy
HTTP_TIMEOUT = 30.0
SECOND_TERM_AFTER = 2.0  # seconds between standalone's SIGTERM to its components and ours

T = TypeVar("T")


# --- the browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Path:
    """``/usr/bin/chromium``; skips without it (fails in CI). Its driver and selenium must be there too."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is absent: the UI tests need Debian's Chromium ({INSTALL_HINT})")
    # Chromium without its driver or selenium is a broken install, not an absent browser: fail.
    if not CHROMEDRIVER.exists():
        pytest.fail(f"{CHROMIUM} is installed but {CHROMEDRIVER} is not ({INSTALL_HINT})")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail(f"selenium is not installed in {sys.prefix} ({INSTALL_HINT})")
    return CHROMIUM


_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Lets the browser fixture know whether the test failed, to save what the browser showed.
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_CALL_REPORT] = report


@pytest.fixture
def browser(
    chromium: Path, tmp_path: Path, ui_artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile, driven through Debian's chromedriver.

    When the test fails, the page it was on is saved as ``failure-<test>.png`` and ``.html``.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    # Explicit driver and browser paths: selenium-manager (which would download them) is not run.
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(120)
        yield driver
        report = request.node.stash.get(_CALL_REPORT, None)
        if report is not None and report.failed:
            name = re.sub(r"\W+", "_", request.node.name)
            with contextlib.suppress(Exception):  # the browser may be what broke
                driver.save_screenshot(str(ui_artifacts / f"failure-{name}.png"))
                (ui_artifacts / f"failure-{name}.html").write_text(driver.page_source)
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def ui_artifacts() -> Path:
    """Where screenshots go: ``$OGC_TEST_ARTIFACTS`` or ``<repo>/.artifacts/ui``, one folder per Airflow."""
    from airflow import __version__ as airflow_version

    base = Path(os.environ.get("OGC_TEST_ARTIFACTS") or REPO / ".artifacts" / "ui")
    folder = base / f"airflow-{airflow_version}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("*.png"), *folder.glob("failure-*.html")]:  # only this run's pages
        old.unlink()
    return folder


# --- the OGC server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def water_stack(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The dev stack (moto S3, synthetic scenes, pygeoapi ``water-bodies``), paced by ``STEP_DELAY``."""
    pygeoapi_bin = Path(os.environ.get("OGC_TEST_PYGEOAPI_BIN") or REPO / ".venv-pygeoapi" / "bin")
    if not pygeoapi_bin.is_dir():
        unavailable(f"pygeoapi is not installed ({pygeoapi_bin} missing); run the README's test command")
    from dev import stac_api
    from dev.stack import start_stack

    problem = stac_api.missing_requirements(
        Path(os.environ.get("OGC_TEST_STAC_BIN") or REPO / ".venv-stac" / "bin")
    )
    if problem:
        unavailable(problem)
    stack = start_stack(
        tmp_path_factory.mktemp("water-stack"),
        pygeoapi_bin=pygeoapi_bin,
        moto_bin=BIN_DIR,
        step_delay=STEP_DELAY,
    )
    try:
        yield stack
    finally:
        stack.stop()


# --- airflow standalone ----------------------------------------------------------------------------


class StandaloneError(RuntimeError):
    """``airflow standalone`` misbehaved; the message carries the end of its output."""


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _signal(processes: Mapping[int, str], sig: int) -> None:
    """Signal each process (pid -> start time) that is still the one we started, not a reused PID."""
    for pid, start in processes.items():
        if _proc_start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Standalone:
    """``airflow standalone`` on a free 127.0.0.1 port, with its own home, logged in as its admin.

    :param home: AIRFLOW_HOME (SQLite database, logs, the generated admin password file).
    :param dags_folder: the DAG folder.
    :param bin_dir: bin directory of the virtualenv with Airflow; it leads PATH, since standalone
        starts each component as ``airflow <component>`` from PATH.
    :param env: applied last (connections, extra settings).
    """

    def __init__(
        self, home: Path, dags_folder: Path, bin_dir: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.home = home.resolve()
        self.dags_folder = dags_folder.resolve()
        self.bin_dir = bin_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "standalone.log"
        self.env = self._build_env(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self._token: str | None = None

    def _build_env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AIRFLOW__") and k not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG", "PYTHONHOME")
        }
        env.update(
            PATH=os.pathsep.join([str(self.bin_dir), env.get("PATH", os.defpath)]),
            VIRTUAL_ENV=str(self.bin_dir.parent),
            PYTHONUNBUFFERED="1",
            NO_COLOR="1",
            NO_PROXY=",".join(filter(None, ["127.0.0.1,localhost", env.get("NO_PROXY")])),
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags_folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__PARALLELISM="4",  # 2 shared cores
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home / 'airflow.db'}",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__BASE_URL=self.url,
            AIRFLOW__API__WORKERS="1",
            # Every component signs or checks JWTs: one secret for all, fixed before they start.
            AIRFLOW__API__SECRET_KEY=os.urandom(16).hex(),
            AIRFLOW__API_AUTH__JWT_SECRET=os.urandom(32).hex(),
            # 3.1.0 with current PyJWT rejects every token without an issuer ("iss must be a string").
            AIRFLOW__API_AUTH__JWT_ISSUER="airflow-standalone-ui-test",
            # Only the run the test creates: no scheduled run of the @weekly DAG when it is unpaused.
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="2",
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="30",
            AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
            AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="1",
            # The scheduler's and triggerer's log servers default to the fixed ports 8793/8794,
            # which other Airflow instances on this machine may hold.
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__COLORED_CONSOLE_LOG="False",
        )
        env.update(extra)
        return env

    @property
    def password_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    def admin_password(self) -> str:
        """The admin password standalone generated (SimpleAuthManager's ``{"admin": "..."}`` file)."""
        password: str = json.loads(self.password_file.read_text())["admin"]
        return password

    # --- lifecycle ---

    def start(self, timeout: float = START_TIMEOUT) -> Standalone:
        self.home.mkdir(parents=True, exist_ok=True)
        # Migrating first lets the database switch to WAL before four components share it
        # (standalone's own migration then finds nothing to do).
        migrate = subprocess.run(
            [str(self.bin_dir / "airflow"), "db", "migrate"],
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if migrate.returncode != 0:
            raise StandaloneError(f"airflow db migrate failed:\n{(migrate.stdout + migrate.stderr)[-4000:]}")
        with contextlib.closing(sqlite3.connect(self.home / "airflow.db")) as db:
            db.execute("PRAGMA journal_mode=WAL")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin_dir / "airflow"), "standalone"],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for the final SIGKILL
                # Ctrl-C (SIGINT) is how standalone is stopped, but a shell that runs pytest in the
                # background starts it with SIGINT ignored, which the child would inherit.
                preexec_fn=_default_sigint,
            )
        try:
            self.wait_until("airflow standalone to be healthy", timeout, self._healthy, interval=1.0)
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise StandaloneError(f"airflow standalone exited with {self.proc.returncode}\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as response:
                health = json.load(response)
        except (OSError, ValueError):
            return None
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        up = all((health.get(c) or {}).get("status") == "healthy" for c in components)
        return (up and self.password_file.exists()) or None

    def stop(self, grace: float = 20.0) -> None:
        """Stop standalone as Ctrl-C does, then hurry its components; SIGKILL what is left. Idempotent.

        On SIGINT standalone SIGTERMs each component once and waits for them. A second SIGTERM is
        Airflow's "signal again if you don't want to wait" (the triggerer would otherwise wait 10 s
        for its runner subprocess), sent after ``SECOND_TERM_AFTER`` seconds.
        """
        proc = self.proc
        if proc is None:
            return
        tree = _descendants([proc.pid])  # before the leader exits and its descendants are re-parented
        components = {pid: start for pid, start in tree.items() if _parent(pid) == proc.pid}
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(SECOND_TERM_AFTER)
            except subprocess.TimeoutExpired:
                _signal(components, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # leader not reaped yet: the group id is still ours
                proc.wait(10)
        _signal(tree, signal.SIGKILL)
        self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no standalone log)"
        return f"--- last {lines} lines of {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Standalone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- REST API (setup and waiting only: the assertions are made in the browser) ---

    def token(self) -> str:
        """A JWT for the admin, from SimpleAuthManager's ``POST /auth/token``."""
        if self._token is None:
            body = {"username": "admin", "password": self.admin_password()}
            self._token = self._request("POST", "/auth/token", body)["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """``/api/v2{path}`` as the admin; JSON in and out."""
        return self._request(method, f"/api/v2{path}", body, params, auth=True)

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = False,
    ) -> Any:
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise ApiError(method, path, err.code, err.read().decode(errors="replace")) from err
        return json.loads(raw) if raw else None

    def wait_until(
        self, what: str, timeout: float, probe: Callable[[], T | None], interval: float = 1.0
    ) -> T:
        """Call ``probe`` until it returns something other than None (retrying 5xx and refused connections)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            try:
                result = probe()
                if result is not None:
                    return result
            except ApiError as err:
                if err.status < 500:
                    raise
                last = err
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                last = err
            if time.monotonic() > deadline:
                raise StandaloneError(
                    f"timed out after {timeout:g}s waiting for {what}"
                    + (f" (last error: {last})" if last else "")
                    + f"\n{self.log_tail()}"
                )
            time.sleep(interval)

    def trigger(
        self,
        dag_id: str,
        conf: Mapping[str, Any],
        parse_timeout: float = 120.0,
        logical_date: str | None = None,
    ) -> str:
        """Wait for the DAG to be parsed, unpause it, create a manual run; return its run_id.

        The run's data interval is the one the DAG's timetable infers for ``logical_date`` (or now).
        """
        quoted = urllib.parse.quote(dag_id, safe="")

        def parsed() -> bool | None:
            try:
                self.api("GET", f"/dags/{quoted}")
                return True
            except ApiError as err:
                if err.status != 404:
                    raise
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            if errors:
                raise StandaloneError(f"DAG {dag_id} not loaded: {errors}")
            return None

        self.wait_until(f"DAG {dag_id} to be parsed", parse_timeout, parsed)
        self.api("PATCH", f"/dags/{quoted}", {"is_paused": False})
        run = self.api("POST", f"/dags/{quoted}/dagRuns", {"logical_date": logical_date, "conf": dict(conf)})
        run_id: str = run["dag_run_id"]
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Wait until the run is finished; return its state ("success" or "failed")."""
        path = f"/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

        def finished() -> str | None:
            state: str = self.api("GET", path)["state"]
            return state if state in ("success", "failed") else None

        return self.wait_until(f"run {dag_id}/{run_id} to finish", timeout, finished)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        path = f"/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        tis = self.api("GET", f"{path}/taskInstances")["task_instances"]
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
            for ti in tis
        }


@pytest.fixture(scope="module")
def standalone(
    chromium: Path, water_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Standalone]:
    """``airflow standalone`` on ``example_dags/`` with the water stack's connections."""
    if not (BIN_DIR / "airflow").exists():
        pytest.fail(f"no airflow executable beside {sys.executable}")
    env = {k: v for k, v in water_stack.env().items() if k.startswith(("AIRFLOW_CONN_", "AWS_"))}
    with Standalone(
        tmp_path_factory.mktemp("airflow-standalone"), EXAMPLE_DAGS, BIN_DIR, env
    ).start() as airflow:
        yield airflow
