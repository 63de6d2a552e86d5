"""Secrets: tokens, passwords and S3 keys stay out of task logs, XComs and the metadata database; they
are sent to the connection's own origin only; and TLS certificates are verified unless a user says not.

Related tests elsewhere, not repeated here: ``tests/unit/test_connection_settings.py`` (credentials per
origin at the ``httpx.Auth`` level, the ``verify``/``ca_bundle`` parsing, the settings ``repr``),
``tests/wire/test_errors_and_retries.py`` (a ``next`` page link and a redirect to another host from
the sync hook, a same-origin redirect keeping credentials, no token in the hook's DEBUG logs) and
``tests/wire/test_trigger.py`` (the trigger's serialized arguments for a bearer connection).

The secrets are distinctive strings of ``[a-z0-9-]`` only, so JSON, URL or log escaping cannot
hide one from a plain substring search.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from airflow_provider_ogc._compat import TaskDeferred
from airflow_provider_ogc.exceptions import OGCConnectionConfigError, S3LocationError
from airflow_provider_ogc.hooks import OGCProcessesHook
from airflow_provider_ogc.hooks.ogc_processes import aclose_shared_clients
from airflow_provider_ogc.operators import ExecuteProcessOperator
from airflow_provider_ogc.s3 import S3Reader
from airflow_provider_ogc.sensors import JobStatusSensor
from airflow_provider_ogc.triggers import OGCJobTrigger
from tests.servers.launch import RunningServer
from tests.support.context import make_context, run_trigger
from tests.support.replay_server import ReplayServer, Reply
from tests.support.seed import SEED_JOB_ID, zoo_status_info

BIN_DIR = Path(sys.executable).parent
AIRFLOW = str(BIN_DIR / "airflow")
DAG_FILE = Path(__file__).parent / "dags" / "secrets_dags.py"

# A fresh tag per session, so a stale log or database of an earlier run can never match.
_TAG = os.urandom(4).hex()
LOGIN = "alice"
AWS_ACCESS_KEY_ID = f"akid-{_TAG}-0001"
SECRETS: dict[str, str] = {
    "bearer token": f"bearer-tok-{_TAG}-7f3a9c",
    "basic password": f"basic-pw-{_TAG}-51d2e8",
    "api key": f"apikey-{_TAG}-99b0c4",
    "auth header": f"hdr-tok-{_TAG}-3e6f21",
    "cookie": f"sid-{_TAG}-c00c1e",
    "aws secret key": f"aws-secret-{_TAG}-8c1d77",
    "aws session token": f"aws-session-{_TAG}-2a4b6c",
}
# Derived from a secret: the basic-auth header value is base64 of login:password.
BASIC_TOKEN = base64.b64encode(f"{LOGIN}:{SECRETS['basic password']}".encode()).decode()
# Must appear nowhere the provider writes by itself (the access key id is an identifier, like a
# login, and Airflow does not mask it; the provider must still never log or return it).
NEVER_WRITTEN = {**SECRETS, "basic token": BASIC_TOKEN, "aws access key id": AWS_ACCESS_KEY_ID}

# One connection per kind of credential, as ``airflow connections`` fields.
OGC_AUTH: dict[str, dict[str, Any]] = {
    "bearer": {"password": SECRETS["bearer token"], "extra": {"auth_type": "bearer"}},
    "basic": {"login": LOGIN, "password": SECRETS["basic password"]},
    "api_key": {
        "password": SECRETS["api key"],
        "extra": {
            "auth_type": "api_key",
            "api_key_header": "X-Api-Key",
            # X-Auth-Token is sensitive by Airflow's own key names; Cookie only by the provider's.
            "extra_headers": {
                "X-Auth-Token": SECRETS["auth header"],
                "Cookie": SECRETS["cookie"],
                "X-Tenant": "acme-tenant",
            },
        },
    },
}
# What each kind puts on requests to its own origin (lower-case names).
SENT_HEADERS: dict[str, dict[str, str]] = {
    "bearer": {"authorization": f"Bearer {SECRETS['bearer token']}"},
    "basic": {"authorization": f"Basic {BASIC_TOKEN}"},
    "api_key": {
        "x-api-key": SECRETS["api key"],
        "x-auth-token": SECRETS["auth header"],
        "cookie": SECRETS["cookie"],
        "x-tenant": "acme-tenant",
    },
}
CREDENTIAL_HEADER_NAMES = {
    "authorization",
    "x-api-key",
    "x-auth-token",
    "cookie",
    "x-tenant",
    "proxy-authorization",
}
DAG_CONN_IDS = {"bearer": "secrets_bearer", "basic": "secrets_basic", "api_key": "secrets_api_key"}
BEARER_CONN = DAG_CONN_IDS["bearer"]
S3_BUCKET, S3_KEY = "secrets-bucket", "catalog/item.json"


def leaks_in(data: str | bytes, secrets: Mapping[str, str] = NEVER_WRITTEN) -> list[str]:
    """Names of the secrets found in ``data``."""
    raw = data.encode() if isinstance(data, str) else data
    return sorted(name for name, value in secrets.items() if value.encode() in raw)


def ogc_conn(host: str, kind: str) -> dict[str, Any]:
    fields = json.loads(json.dumps(OGC_AUTH[kind]))
    fields.setdefault("extra", {}).update({"retry_wait_min": 0.05, "retry_wait_max": 0.2})
    return {"conn_type": "ogc_processes", "host": host, **fields}


def aws_conn(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "conn_type": "aws",
        "login": AWS_ACCESS_KEY_ID,
        "password": SECRETS["aws secret key"],
        "extra": {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_session_token": SECRETS["aws session token"],
            **extra,
        },
    }


def dag_connections(ogc_url: str, s3_url: str) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for the connections the DAGs in ``dags/secrets_dags.py`` use."""
    env = {
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(ogc_conn(ogc_url, kind))
        for kind, conn_id in DAG_CONN_IDS.items()
    }
    env["AIRFLOW_CONN_SECRETS_AWS"] = json.dumps(aws_conn(s3_url))
    return env


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@pytest.fixture
def s3_object(moto_server: str) -> str:
    """The object ``read_s3`` reads, put in the moto server with boto3 directly."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto_server,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
        region_name="us-east-1",
    )
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=S3_BUCKET)
    client.put_object(Bucket=S3_BUCKET, Key=S3_KEY, Body=json.dumps({"id": "item-1"}).encode())
    return f"s3://{S3_BUCKET}/{S3_KEY}"


# --------------------------------------------------------------------------------------------------
# 1. Task logs, XComs, the metadata database


def metadata_leaks(home: Path, fernet_key: str) -> tuple[dict[str, list[str]], int]:
    """
    Secrets found in the metadata database: in its files as bytes (freed pages and the WAL included)
    and in every cell of every table, Fernet-encrypted cells (variables) decrypted.

    :param home: the AIRFLOW_HOME holding ``airflow.db``.
    :param fernet_key: the key Airflow encrypted with.
    :return: where -> secret names, and the number of cells read.
    """
    from cryptography.fernet import Fernet, InvalidToken

    found: dict[str, list[str]] = {}
    for path in sorted(home.glob("airflow.db*")):
        if names := leaks_in(path.read_bytes()):
            found[path.name] = names
    fernet = Fernet(fernet_key.encode())
    cells = 0
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # table names from sqlite_master
                for value in row:
                    if not isinstance(value, (str, bytes)):
                        continue
                    cells += 1
                    raw = value.encode() if isinstance(value, str) else value
                    with contextlib.suppress(InvalidToken, ValueError):
                        if raw.startswith(b"gAAAA"):
                            raw = fernet.decrypt(raw)
                    if names := leaks_in(raw):
                        found.setdefault(table, []).extend(names)
    return found, cells


def trigger_rows(home: Path, fernet_key: str) -> list[tuple[str, str]]:
    """(classpath, decrypted kwargs) of the triggers in the database now."""
    from cryptography.fernet import Fernet

    fernet = Fernet(fernet_key.encode())
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        rows = db.execute("SELECT classpath, kwargs FROM trigger").fetchall()
    # A deferring task's trigger kwargs reach the table as plain JSON (the Execution API of 3.1 and
    # 3.3 stores them as the task sent them); rows Airflow creates itself are Fernet-encrypted.
    return [
        (classpath, fernet.decrypt(kwargs.encode()).decode() if kwargs.startswith("gAAAA") else kwargs)
        for classpath, kwargs in rows
    ]


def read_xcoms(db_path: Path) -> dict[tuple[str, str], Any]:
    """(task_id, key) -> value of the secrets DAGs' XComs, read from the database as Airflow stored them."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute("SELECT task_id, key, value FROM xcom WHERE dag_id LIKE 'secrets_%'").fetchall()
    return {(task_id, key): value for task_id, key, value in rows}


def check_xcoms(xcoms: Mapping[tuple[str, str], Any]) -> None:
    # Every kind of XCom the provider writes is there (so the scan below read something real) ...
    for expected in (
        ("bearer_job", "job_id"),
        ("bearer_job", "job_url"),
        ("bearer_job", "return_value"),
        ("basic_job", "return_value"),
        ("basic_job", "asset_hrefs"),
        ("api_key_job", "job_id"),
        ("api_key_sensor", "return_value"),
        ("read_s3", "return_value"),
    ):
        assert expected in xcoms, f"missing XCom {expected}; have {sorted(xcoms)}"
    assert json.loads(xcoms[("read_s3", "return_value")]) == "item-1"
    # ... and none holds a secret.
    leaked = {key: leaks_in(str(value)) for key, value in xcoms.items() if leaks_in(str(value))}
    assert leaked == {}


def clean_env(home: Path, dags: Path, fernet_key: str, connections: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": fernet_key,
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            **connections,
        }
    )
    return env


def private_dags_folder(tmp_path: Path) -> Path:
    """Only our DAG file: other DAGs of tests/reliability/dags need connections we do not set."""
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    return dags


@pytest.mark.integration
def test_dags_test_output_xcoms_and_database_hold_no_secret(
    tmp_path: Path, pygeoapi_server: RunningServer, moto_server: str, s3_object: str
) -> None:
    """
    ``airflow dags test`` runs the tasks in its own process and masks nothing (Airflow 3.1 and 3.3
    print a connection's password in clear there), so its output shows whether the provider itself
    ever writes a secret: it must not, with bearer, basic, API-key and AWS credentials.
    """
    from cryptography.fernet import Fernet

    home = tmp_path / "home"
    home.mkdir()
    fernet_key = Fernet.generate_key().decode()
    env = clean_env(
        home, private_dags_folder(tmp_path), fernet_key, dag_connections(pygeoapi_server.url, moto_server)
    )
    migrate = subprocess.run([AIRFLOW, "db", "migrate"], capture_output=True, text=True, env=env, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    run = subprocess.run(
        [AIRFLOW, "dags", "test", "secrets_provider", "-c", json.dumps({"job_seconds": 1})],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "state=success" in output, output[-5000:]
    # The provider did talk to the servers (and logged about it) with each connection.
    assert "Submitted sleep: job" in output and "Submitted water-stac: job" in output
    assert "2 STAC item(s) from output(s) stac_catalog" in output
    assert leaks_in(output) == [], "a secret reached the (unmasked) task output"

    check_xcoms(read_xcoms(home / "airflow.db"))
    leaked, cells = metadata_leaks(home, fernet_key)
    assert cells > 100 and leaked == {}


@pytest.mark.system
def test_task_logs_mask_secrets_under_a_real_scheduler_and_triggerer(
    tmp_path: Path, pygeoapi_server: RunningServer, moto_server: str, s3_object: str
) -> None:
    """
    The production path: api-server, scheduler (LocalExecutor), dag-processor and triggerer as
    separate processes writing task and trigger logs under AIRFLOW_HOME/logs. A task that logs
    every secret on purpose gets ``***`` in its log; no task or trigger log file holds a secret, no
    component log holds one either (but for the forced lines Airflow 3.3 echoes there); neither do
    the trigger rows, the XComs and the rest of the database.
    """
    from tests.system.airflow_stack import AirflowStack

    if not (BIN_DIR / "airflow").exists():
        pytest.skip(f"no airflow executable beside {sys.executable}")
    stack = AirflowStack(
        tmp_path / "home",
        private_dags_folder(tmp_path),
        BIN_DIR,
        env=dag_connections(pygeoapi_server.url, moto_server),
        parallelism=4,
    )
    with stack.start():
        provider_run = stack.trigger_dag("secrets_provider")
        forced_run = stack.trigger_dag("secrets_forced_logs")
        # While the bearer job's task is deferred, its trigger is a row of the database: its kwargs
        # name the connection and hold no secret.
        stack.wait_for_task_state("secrets_provider", provider_run, "bearer_job", {"deferred"}, timeout=180)
        triggers = trigger_rows(stack.home, stack.env["AIRFLOW__CORE__FERNET_KEY"])
        assert any("OGCJobTrigger" in classpath and BEARER_CONN in kwargs for classpath, kwargs in triggers)
        assert [leaks_in(kwargs) for _, kwargs in triggers] == [[] for _ in triggers]
        for dag_id, run_id in (("secrets_forced_logs", forced_run), ("secrets_provider", provider_run)):
            state = stack.wait_for_run(dag_id, run_id, timeout=300)
            assert state == "success", f"{dag_id}: {stack.task_states(dag_id, run_id)}\n{stack.logs_tail()}"
        forced = stack.task_log("secrets_forced_logs", forced_run, "force_leaks")
        trigger_logs = {
            task_id: "\n".join(stack.trigger_logs("secrets_provider", provider_run, task_id).values())
            for task_id in ("bearer_job", "api_key_sensor")
        }

    # Each forced line is there, with the secret replaced by ***.
    for conn_id in DAG_CONN_IDS.values():
        assert f"FORCED {conn_id} password: ***" in forced, forced[-3000:]
        assert f"FORCED {conn_id} print: ***" in forced
        assert f"FORCED {conn_id} connection: Connection(" in forced
    assert "FORCED secrets_bearer header authorization: Bearer ***" in forced
    assert "FORCED secrets_basic header authorization: Basic ***" in forced
    assert "FORCED secrets_api_key header x-api-key: ***" in forced
    assert "FORCED secrets_api_key header x-auth-token: ***" in forced
    assert "FORCED secrets_api_key header cookie: ***" in forced  # masked by the provider, not Airflow
    assert "FORCED secrets_api_key header x-tenant: acme-tenant" in forced  # masking is targeted
    assert "FORCED secrets_aws secret key: ***" in forced
    assert "FORCED secrets_aws session token: ***" in forced
    assert "FORCED secrets_aws print: ***" in forced
    # The triggers ran in the triggerer, which logged the jobs' progress beside the task logs.
    assert all("successful, progress 100%" in text for text in trigger_logs.values()), trigger_logs

    # No task or trigger log file holds a secret, not even the forced task's.
    files = [p for p in stack.logs_dir.rglob("*") if p.is_file()]
    task_files = [p for p in files if "dag_id=" in str(p)]
    assert any("secrets_forced_logs" in str(p) for p in task_files)
    assert any(".trigger." in p.name for p in task_files)
    leaked = {str(p.relative_to(stack.logs_dir)): leaks_in(p.read_bytes()) for p in task_files}
    assert {k: v for k, v in leaked.items() if v} == {}
    # The components' own logs hold none either, apart from the lines the forced task logged on
    # purpose: Airflow 3.3's LocalExecutor also echoes task logs to the scheduler's stdout, unmasked
    # (``subprocess_logs_to_stdout=True``); 3.1 does not echo them.
    for path in set(files) - set(task_files):
        lines = path.read_text(errors="replace").splitlines()
        leaking = [line[:200] for line in lines if leaks_in(line) and "FORCED " not in line]
        assert leaking == [], path.name

    check_xcoms(read_xcoms(stack.home / "airflow.db"))
    leaked_db, cells = metadata_leaks(stack.home, stack.env["AIRFLOW__CORE__FERNET_KEY"])
    assert cells > 100 and leaked_db == {}


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(OGC_AUTH))
def test_deferred_trigger_kwargs_hold_no_secret(
    kind: str, pygeoapi_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    What Airflow stores for a deferred task (the trigger's ``serialize()`` kwargs, and the trigger's
    repr that the triggerer logs) names the connection by id only; revived from that JSON, the
    trigger still reads the credentials itself and follows the job to its end.
    """
    conn_id = f"secrets_trigger_{kind}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(ogc_conn(pygeoapi_server.url, kind)))

    operator = ExecuteProcessOperator(
        task_id="submit", ogc_conn_id=conn_id, process_id="sleep", inputs={"seconds": 1}, poll_interval=0.2
    )
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    triggers = [deferred.value.trigger]

    with OGCProcessesHook(ogc_conn_id=conn_id) as hook:
        job_id = hook.execute_process("sleep", {"seconds": 3}).job_id
    sensor = JobStatusSensor(task_id="sense", ogc_conn_id=conn_id, job_id=str(job_id), poke_interval=0.2)
    with pytest.raises(TaskDeferred) as sensed:
        sensor.execute(make_context())
    triggers.append(sensed.value.trigger)

    for trigger in triggers:
        classpath, kwargs = trigger.serialize()
        assert classpath == "airflow_provider_ogc.triggers.ogc_processes.OGCJobTrigger"
        assert kwargs["ogc_conn_id"] == conn_id
        assert leaks_in(json.dumps(kwargs)) == [] and leaks_in(repr(trigger)) == []
        assert run_trigger(trigger)["status"] == "successful"
    assert leaks_in(json.dumps(context["ti"].xcoms)) == []


def test_hook_registers_every_secret_with_the_masker(make_conn: Any) -> None:
    """Loading a connection registers its password and each sensitive header value with Airflow's
    masker, a ``Cookie`` too (which Airflow's own list of sensitive names misses)."""
    from airflow.sdk._shared.secrets_masker import redact

    for fields in OGC_AUTH.values():
        hook = OGCProcessesHook(
            ogc_conn_id=make_conn("http://127.0.0.1:1/ogc", **json.loads(json.dumps(fields)))
        )
        assert hook.settings.secret in SECRETS.values()  # reading the settings registers the secrets
    for name in ("bearer token", "basic password", "api key", "auth header", "cookie"):
        assert redact(f"before {SECRETS[name]} after") == "before *** after", name
    assert redact("X-Tenant: acme-tenant") == "X-Tenant: acme-tenant"  # not a secret, not masked


def test_basic_auth_header_value_is_masked(make_conn: Any) -> None:
    """A task that logs the hook's request headers must not reveal base64(login:password)."""
    from airflow.sdk._shared.secrets_masker import redact

    hook = OGCProcessesHook(ogc_conn_id=make_conn("http://127.0.0.1:1/ogc", **OGC_AUTH["basic"]))
    request = next(hook.settings.auth().auth_flow(httpx.Request("GET", hook.settings.url(""))))
    assert request.headers["Authorization"] == f"Basic {BASIC_TOKEN}"
    assert BASIC_TOKEN not in redact(f"Authorization: {request.headers['Authorization']}")


def test_credentials_in_the_host_url_never_reach_a_url_the_provider_publishes(
    replay: ReplayServer, make_conn: Any
) -> None:
    secret = SECRETS["basic password"]
    replay.route(
        "POST", "/ogc/processes/p/execution", Reply(201, None, headers={"Location": "{base}/ogc/jobs/j1"})
    )
    host = replay.url.replace("http://", f"http://{LOGIN}:{secret}@") + "/ogc"
    hook = OGCProcessesHook(ogc_conn_id=make_conn(host))
    # Refused outright: such a URL would travel on in job URLs, XCom and logs.
    with pytest.raises(OGCConnectionConfigError, match=r"holds credentials \(user:password@\)") as caught:
        _ = hook.settings
    assert secret not in str(caught.value)
    assert not replay.requests


# --------------------------------------------------------------------------------------------------
# 2. Credentials go to the connection's origin only


def check_origins(own: ReplayServer, other: ReplayServer, kind: str) -> None:
    assert own.requests and other.requests
    for request in own.requests:
        headers = lower(request.headers)
        for name, value in SENT_HEADERS[kind].items():
            assert headers.get(name) == value, (request.method, request.path, name)
    for request in other.requests:
        headers = lower(request.headers)
        assert not CREDENTIAL_HEADER_NAMES & set(headers), (request.path, sorted(headers))
        assert leaks_in(json.dumps(headers)) == [], request.path


@pytest.mark.parametrize("kind", list(OGC_AUTH))
def test_operator_sends_credentials_only_to_the_connections_origin(kind: str, make_conn: Any) -> None:
    """
    A whole deferrable run where the server points elsewhere at every step: its statusInfo
    advertises ``monitor`` and results links on another host, the results redirect to object
    storage there, and they link a STAC catalog and item on that host. The operator polls its own
    origin (foreign job links are not followed), follows the redirect and the STAC links, and the
    other origin never sees an Authorization, API key or extra header.
    """
    own, other = ReplayServer().start(), ReplayServer().start()
    try:
        api, elsewhere = "/acme/ogc-api", f"{other.url}/acme/ogc-api"
        job = f"{api}/jobs/{SEED_JOB_ID}"
        own.route(
            "GET",
            f"{api}/processes/water-bodies",
            Reply(200, {"id": "water-bodies", "inputs": {}, "outputs": {}}),
        )
        own.route(
            "POST",
            f"{api}/processes/water-bodies/execution",
            Reply(201, zoo_status_info(elsewhere, "accepted")),
        )
        done = zoo_status_info(elsewhere, "successful")
        done["links"].append(
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/results",
                "href": f"{elsewhere}/jobs/{SEED_JOB_ID}/results",
            }
        )
        own.route("GET", job, Reply(200, zoo_status_info(elsewhere, "running")), Reply(200, done))
        own.route(
            "GET",
            f"{job}/results",
            Reply(302, None, headers={"Location": f"{other.url}/store/j1/results.json"}),
        )
        # The other host would answer the foreign job links too, so following them would show.
        other.route("GET", job, Reply(200, done))
        other.route(
            "GET", f"{job}/results", Reply(200, {"stac_catalog": {"href": "{base}/store/j1/catalog.json"}})
        )
        other.route(
            "GET",
            "/store/j1/results.json",
            Reply(
                200, {"stac_catalog": {"href": "{base}/store/j1/catalog.json", "type": "application/json"}}
            ),
        )
        other.route(
            "GET",
            "/store/j1/catalog.json",
            Reply(
                200,
                {
                    "type": "Catalog",
                    "stac_version": "1.0.0",
                    "id": "j1",
                    "description": "Job results",
                    "links": [{"rel": "item", "href": "./item-1.json", "type": "application/json"}],
                },
            ),
        )
        other.route("GET", "/store/j1/item-1.json", Reply(200, stac_item("{base}/store/j1/item-1.json")))
        conn_id = make_conn(f"{own.url}{api}", **json.loads(json.dumps(OGC_AUTH[kind])))

        operator = ExecuteProcessOperator(
            task_id="submit", ogc_conn_id=conn_id, process_id="water-bodies", inputs={}, poll_interval=0.05
        )
        context = make_context()
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context)
        assert context["ti"].xcoms["job_url"] == f"{own.url}{job}"  # not the advertised other host
        event = run_trigger(deferred.value.trigger)
        assert event["status"] == "successful"
        hrefs = operator.execute_complete(context, event)

        assert hrefs == [f"{other.url}/store/j1/item-1.json"]
        assert [r.path for r in other.requests] == [
            "/store/j1/results.json",
            "/store/j1/catalog.json",
            "/store/j1/item-1.json",
        ]
        assert len(own.hits("GET", job)) >= 2  # the trigger polled its own origin, with credentials
        check_origins(own, other, kind)
    finally:
        own.stop()
        other.stop()


def stac_item(self_href: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "item-1",
        "geometry": {"type": "Point", "coordinates": [10.0, 45.0]},
        "bbox": [10.0, 45.0, 10.0, 45.0],
        "properties": {"datetime": "2024-06-12T10:10:31Z"},
        "links": [{"rel": "self", "href": self_href, "type": "application/json"}],
        "assets": {"data": {"href": "./otsu.tif", "type": "image/tiff; application=geotiff"}},
    }


@pytest.mark.parametrize("kind", list(OGC_AUTH))
def test_trigger_follows_a_redirect_to_another_origin_without_credentials(kind: str, make_conn: Any) -> None:
    """The async client (the triggerer's) drops credentials on a cross-origin redirect, like the sync one."""
    own, other = ReplayServer().start(), ReplayServer().start()
    try:
        own.route("GET", "/ogc/jobs/j1", Reply(307, None, headers={"Location": f"{other.url}/moved/jobs/j1"}))
        other.route(
            "GET", "/moved/jobs/j1", Reply(200, {"jobID": "j1", "status": "successful", "progress": 100})
        )
        conn_id = make_conn(f"{own.url}/ogc", **json.loads(json.dumps(OGC_AUTH[kind])))
        event = run_trigger(OGCJobTrigger(job_id="j1", ogc_conn_id=conn_id, min_poll_interval=0.05))
        assert event["status"] == "successful"
        assert len(own.requests) == 1 and len(other.requests) == 1
        check_origins(own, other, kind)
    finally:
        own.stop()
        other.stop()


@contextlib.contextmanager
def recorded_connections() -> Iterator[list[tuple[str, int]]]:
    """Every TCP connection this process opens, as (host, port); anything but loopback is refused."""
    seen: list[tuple[str, int]] = []
    original = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            seen.append((address[0], address[1]))
            assert ipaddress.ip_address(address[0]).is_loopback, f"network access to {address}"
        original(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


@pytest.mark.integration
def test_s3_reader_connects_only_to_its_endpoint(
    moto_server: str, s3_object: str, replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 reader talks to the connection's endpoint only; an href on another host is refused unread."""
    monkeypatch.setenv("AIRFLOW_CONN_SECRETS_S3", json.dumps(aws_conn(moto_server)))
    replay.route("GET", "/results/item.json", Reply(200, {"id": "elsewhere"}))
    reader = S3Reader("secrets_s3")
    endpoint = httpx.URL(moto_server)
    with recorded_connections() as seen:
        assert reader.read_json(s3_object) == {"id": "item-1"}
        for href in (
            f"{replay.url}/results/item.json",
            "https://secrets-bucket.s3.amazonaws.com/catalog/item.json",
        ):
            with pytest.raises(S3LocationError, match="Not an s3://bucket/key URL"):
                reader.read_bytes(href)
    assert seen and set(seen) == {(endpoint.host, endpoint.port)}
    assert replay.requests == []


def test_s3_redirect_to_another_host_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    An S3 ``PermanentRedirect`` naming another endpoint (AWS's answer for a bucket in another region)
    makes boto3 sign again for the new region, but it still sends to the configured endpoint:
    the other host receives nothing.
    """
    endpoint, other = ReplayServer().start(), ReplayServer().start()
    try:
        error = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PermanentRedirect</Code><Message>The bucket you are '
            "attempting to access must be addressed using the specified endpoint. Please send all future requests "
            f"to this endpoint.</Message><Endpoint>{other.url.removeprefix('http://')}</Endpoint>"
            "<Bucket>results</Bucket><RequestId>4442587FB7D0A2F9</RequestId><HostId>x</HostId></Error>"
        )
        endpoint.route(
            "GET",
            "/results/j1/item.json",
            Reply(
                301,
                error,
                content_type="application/xml",
                headers={"x-amz-bucket-region": "eu-west-1", "Location": f"{other.url}/results/j1/item.json"},
            ),
            Reply(200, {"id": "item-1"}),
        )
        other.route("GET", "/results/j1/item.json", Reply(200, {"id": "wrong"}))
        monkeypatch.setenv("AIRFLOW_CONN_SECRETS_S3", json.dumps(aws_conn(endpoint.url)))
        with recorded_connections() as seen:
            assert S3Reader("secrets_s3").read_json("s3://results/j1/item.json") == {"id": "item-1"}
        regions = [lower(r.headers)["authorization"].split("/")[2] for r in endpoint.requests]
        assert regions == ["us-east-1", "eu-west-1"]  # re-signed for the bucket's region, same endpoint
        assert all(
            lower(r.headers)["x-amz-security-token"] == SECRETS["aws session token"]
            for r in endpoint.requests
        )
        assert other.requests == [] and {port for _, port in seen} == {httpx.URL(endpoint.url).port}
    finally:
        endpoint.stop()
        other.stop()


# --------------------------------------------------------------------------------------------------
# 3. TLS


@dataclass
class Pki:
    """A private CA and server certificates it signed, as PEM files."""

    ca: Path
    localhost: tuple[Path, Path]  # cert and key valid for 127.0.0.1 and localhost
    other_name: tuple[Path, Path]  # cert and key valid for other.example only


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)

    def write_key(key: ec.EllipticCurvePrivateKey, name: str) -> Path:
        path = folder / name
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return path

    def write_cert(cert: x509.Certificate, name: str) -> Path:
        path = folder / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secrets test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def server(name: str, sans: list[x509.GeneralName]) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return write_cert(cert, f"{name}.pem"), write_key(key, f"{name}.key")

    return Pki(
        ca=write_cert(ca_cert, "ca.pem"),
        localhost=server(
            "localhost", [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        ),
        other_name=server("other.example", [x509.DNSName("other.example")]),
    )


def tls_server_for(cert: tuple[Path, Path]) -> ReplayServer:
    """An HTTPS server on 127.0.0.1 answering a landing page, conformance and a job; records what reached it."""
    server = ReplayServer(tls=cert).start()
    server.route("GET", "/ogc/", Reply(200, {"title": "TLS test server", "links": []}))
    server.route(
        "GET",
        "/ogc/conformance",
        Reply(200, {"conformsTo": ["http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core"]}),
    )
    server.route("GET", "/ogc/jobs/j1", Reply(200, {"jobID": "j1", "status": "successful", "progress": 100}))
    server.route("GET", "/results/j1/item.json", Reply(200, {"id": "item-1"}))
    return server


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[ReplayServer]:
    server = tls_server_for(pki.localhost)
    yield server
    server.stop()


def bearer(**extra: Any) -> dict[str, Any]:
    return {"password": SECRETS["bearer token"], "extra": {"auth_type": "bearer", "max_retries": 1, **extra}}


def test_tls_verification_is_on_by_default(make_conn: Any) -> None:
    """A connection that says nothing about TLS verifies certificates, whatever its kind of credential."""
    from airflow.sdk import BaseHook

    from airflow_provider_ogc.hooks._http import ConnectionSettings

    for fields in OGC_AUTH.values():
        conn = BaseHook.get_connection(
            make_conn("https://processing.example.org/ogc", **json.loads(json.dumps(fields)))
        )
        assert ConnectionSettings.from_connection(conn).verify is True


def test_self_signed_server_is_refused_and_gets_nothing(tls_server: ReplayServer, hook_for: Any) -> None:
    """By default a certificate no trusted CA signed fails the request, naming certificate verification,
    before any request line, header (the token) or body is sent."""
    hook = hook_for(f"{tls_server.url}/ogc", **bearer())
    ok, message = hook.test_connection()
    assert not ok and "certificate verify failed" in message.lower(), message
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        hook.execute_process("p", {"secret-free": "body"})
    operator = ExecuteProcessOperator(
        task_id="submit", ogc_conn_id=hook.ogc_conn_id, process_id="p", inputs={}
    )
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        operator.execute(make_context())
    assert tls_server.requests == []


async def test_async_client_and_trigger_verify_too(tls_server: ReplayServer, make_conn: Any) -> None:
    conn_id = make_conn(f"{tls_server.url}/ogc", **bearer())
    # The async side is aiohttp: its certificate error, with the same verdict.
    with pytest.raises(aiohttp.ClientConnectorCertificateError, match="CERTIFICATE_VERIFY_FAILED"):
        await OGCProcessesHook(ogc_conn_id=conn_id).aget_job_status("j1")
    run = OGCJobTrigger(job_id="j1", ogc_conn_id=conn_id, max_transient_errors=0).run()
    event = (await anext(run)).payload
    await run.aclose()
    await aclose_shared_clients()
    assert event["status"] == "error" and "certificate verify failed" in event["message"].lower()
    assert tls_server.requests == []


async def test_ca_bundle_trusts_a_private_ca(tls_server: ReplayServer, pki: Pki, make_conn: Any) -> None:
    """With the ``ca_bundle`` extra the same server is trusted, by the sync and the async client, and
    only then does the token travel (over the verified connection)."""
    hook = OGCProcessesHook(ogc_conn_id=make_conn(f"{tls_server.url}/ogc", **bearer(ca_bundle=str(pki.ca))))
    assert hook.settings.verify == str(pki.ca)
    ok, message = await asyncio.to_thread(hook.test_connection)
    assert ok, message
    assert (await hook.aget_job_status("j1")).status.value == "successful"
    hook.close()
    await aclose_shared_clients()
    assert [r.target for r in tls_server.requests] == ["/ogc/", "/ogc/conformance", "/ogc/jobs/j1"]
    assert all(
        lower(r.headers)["authorization"] == f"Bearer {SECRETS['bearer token']}" for r in tls_server.requests
    )


def test_certificate_for_another_name_is_refused_even_from_the_trusted_ca(pki: Pki, hook_for: Any) -> None:
    """Verification checks the host name too, not only the signature chain."""
    server = tls_server_for(pki.other_name)
    try:
        hook = hook_for(f"{server.url}/ogc", **bearer(ca_bundle=str(pki.ca)))
        ok, message = hook.test_connection()
        assert not ok and "mismatch" in message.lower() and "127.0.0.1" in message, message
        assert server.requests == []
    finally:
        server.stop()


@pytest.mark.parametrize("value", [False, "false"])
def test_verify_false_only_when_explicitly_set(value: Any, tls_server: ReplayServer, hook_for: Any) -> None:
    """``verify: false`` (a JSON boolean, or the string the UI form gives) turns verification off."""
    hook = hook_for(f"{tls_server.url}/ogc", **bearer(verify=value))
    assert hook.settings.verify is False
    assert hook.get_job_status("j1").status.value == "successful"
    assert len(tls_server.requests) == 1


def test_s3_reader_verifies_tls_by_default(
    tls_server: ReplayServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 reader also refuses an unverified endpoint (boto3's default, and with ``verify`` null or
    empty) and trusts the CA bundle a ``verify`` path names."""
    from botocore.exceptions import SSLError

    for extra in ({}, {"verify": None}, {"verify": ""}, {"verify": "true"}):
        monkeypatch.setenv("AIRFLOW_CONN_SECRETS_S3_TLS", json.dumps(aws_conn(tls_server.url, **extra)))
        with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            S3Reader("secrets_s3_tls").read_json("s3://results/j1/item.json")
    assert tls_server.requests == []

    monkeypatch.setenv(
        "AIRFLOW_CONN_SECRETS_S3_TLS", json.dumps(aws_conn(tls_server.url, verify=str(pki.ca)))
    )
    assert S3Reader("secrets_s3_tls").read_json("s3://results/j1/item.json") == {"id": "item-1"}
    assert [r.target for r in tls_server.requests] == ["/results/j1/item.json"]


@pytest.mark.parametrize("value", [False, "false", " False "])
def test_s3_reader_verify_false_only_when_explicitly_set(
    value: Any, tls_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``verify`` false turns verification off, also as the string the connection form gives (which
    boto3 itself would take for the path of a CA bundle)."""
    monkeypatch.setenv("AIRFLOW_CONN_SECRETS_S3_TLS", json.dumps(aws_conn(tls_server.url, verify=value)))
    assert S3Reader("secrets_s3_tls").read_json("s3://results/j1/item.json") == {"id": "item-1"}


def test_s3_reader_refuses_a_verify_value_it_cannot_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SECRETS_S3_TLS", json.dumps(aws_conn("https://127.0.0.1:1", verify=0)))
    with pytest.raises(OGCConnectionConfigError, match="verify must be a boolean or a CA bundle path, got 0"):
        S3Reader("secrets_s3_tls").client  # noqa: B018 - building the client reads the connection
