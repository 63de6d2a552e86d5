"""A catalogue of bad inputs and bad server answers: each gives one clear error that names its cause.

Every case states the input or answer, the exception the task sees, a pattern its message must
match, how many requests the server saw for the failing call (1 for a permanent error: it was
not retried), and whether a task retry is allowed (only for causes that may go away). For errors
met while a job is watched, :class:`OGCJobTrigger` must yield an error event carrying the same
message rather than raise in the triggerer's loop; the operator (and the sensor) then fail with it.

Real pygeoapi and wraptile servers give most cases, through a counting proxy: the replay server
forwarding every request to the real one and recording what reached it. The replay server on its
own gives only answers no local server produces (an auth gateway's 401 and 403, a proxy's 502
page, broken bodies), copying the shape of a real server's answer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_ogc._compat import AirflowFailException, TaskDeferred
from airflow_provider_ogc.exceptions import OGCJobFailedError, OGCJobFailedPermanentlyError
from airflow_provider_ogc.operators import ExecuteProcessOperator
from airflow_provider_ogc.sensors import JobStatusSensor
from airflow_provider_ogc.triggers import OGCJobTrigger
from tests.support.context import make_context, run_trigger
from tests.support.replay_server import ReplayServer, Reply, forwarding_to

pytestmark = pytest.mark.integration

# ---------------------------------------------------------------------------------------------- servers


class Env:
    """What a case arranges itself with: servers (real ones behind counting proxies), connections, hooks."""

    def __init__(self, request: pytest.FixtureRequest, make_conn: Any, hook_for: Any) -> None:
        self._request = request
        self.conn = make_conn
        self.hook_for = hook_for
        self._proxies: dict[str, ReplayServer] = {}
        self._threads: list[threading.Thread] = []

    @property
    def replay(self) -> ReplayServer:
        server: ReplayServer = self._request.getfixturevalue("replay")
        return server

    def real(self, name: str) -> ReplayServer:
        """A counting proxy in front of the real ``pygeoapi`` or ``wraptile`` server: its ``count``
        counts the exchanges that reached the real server (recorded before the client saw the answer)."""
        if name not in self._proxies:
            self._proxies[name] = ReplayServer(handler=forwarding_to(self.upstream(name))).start()
        return self._proxies[name]

    def upstream(self, name: str) -> str:
        """The real server's own URL (requests sent there directly are not counted)."""
        url: str = self._request.getfixturevalue(f"{name}_server").url
        return url

    def in_background(self, action: Callable[[], None]) -> None:
        thread = threading.Thread(target=action, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        for thread in self._threads:
            thread.join(timeout=60)
        for proxy in self._proxies.values():
            proxy.stop()


@pytest.fixture
def env(request: pytest.FixtureRequest, make_conn: Any, hook_for: Any) -> Iterator[Env]:
    environment = Env(request, make_conn, hook_for)
    yield environment
    environment.close()


# ---------------------------------------------------------------------------------------------- cases


@dataclass
class Scenario:
    """
    One arranged case.

    :param act: the call that must raise; it gets the trigger's event for poll-time cases.
    :param requests: the requests the server saw for the failing call.
    :param trigger: for errors met while a job is watched: run first, it must yield an event.
    :param event_status: the status of that event.
    """

    act: Callable[[dict[str, Any] | None], object]
    requests: Callable[[], int]
    trigger: OGCJobTrigger | None = None
    event_status: str = "error"


@dataclass(frozen=True)
class Case:
    """
    :param id: the case's name.
    :param given: the bad input or answer, in words.
    :param raises: the exception the task (or DAG parse) sees.
    :param message: a pattern (``re.search``, dot matches newlines) naming the cause.
    :param requests: requests the server saw for the failing call; 1 for a permanent error.
    :param arrange: sets the case up.
    :param retryable: whether the task may be retried (``None``: not a task failure, e.g. a DAG error).
    """

    id: str
    given: str
    raises: type[BaseException]
    message: str
    requests: int
    arrange: Callable[[Env], Scenario]
    retryable: bool | None = False


CASES: list[Case] = []


def case(
    given: str,
    raises: type[BaseException],
    message: str,
    requests: int,
    retryable: bool | None = False,
) -> Callable[[Callable[[Env], Scenario]], Callable[[Env], Scenario]]:
    def register(arrange: Callable[[Env], Scenario]) -> Callable[[Env], Scenario]:
        CASES.append(Case(arrange.__name__, given, raises, message, requests, arrange, retryable))
        return arrange

    return register


REPLAY_JOB = "/ogc/jobs/j1"
CONN = r"'ogc_test_\d+'"


def operator(conn_id: str, **kwargs: Any) -> ExecuteProcessOperator:
    kwargs.setdefault("process_id", "echo")
    kwargs.setdefault("inputs", {"message": "hi"})
    return ExecuteProcessOperator(task_id="submit", ogc_conn_id=conn_id, poll_interval=0.05, **kwargs)


def fast_trigger(conn_id: str, job_id: str, **kwargs: Any) -> OGCJobTrigger:
    kwargs.setdefault("min_poll_interval", 0.05)
    kwargs.setdefault("max_poll_interval", 0.2)
    return OGCJobTrigger(job_id=job_id, ogc_conn_id=conn_id, **kwargs)


def submit(op: ExecuteProcessOperator, requests: Callable[[], int]) -> Scenario:
    """A case that fails while submitting: ``execute`` raises."""
    return Scenario(act=lambda _event: op.execute(make_context()), requests=requests)


def deferred(op: ExecuteProcessOperator, requests: Callable[[], int], event_status: str) -> Scenario:
    """A case that fails once the job ran: submit, run the trigger, then ``execute_complete`` raises."""
    context = make_context()
    with pytest.raises(TaskDeferred) as caught:
        op.execute(context)
    return Scenario(
        act=lambda event: op.execute_complete(context, event),
        requests=requests,
        trigger=caught.value.trigger,
        event_status=event_status,
    )


def polled(env: Env, reply: Reply, conn: dict[str, Any] | None = None, **trigger_kwargs: Any) -> Scenario:
    """A job on the replay server whose status answer is ``reply``: the trigger meets it, then the task."""
    env.replay.route("GET", REPLAY_JOB, reply)
    conn_id = env.conn(f"{env.replay.url}/ogc", **(conn or {}))
    op = operator(conn_id)
    return Scenario(
        act=lambda event: op.execute_complete(make_context(), event),
        requests=lambda: len(env.replay.hits("GET", REPLAY_JOB)),
        trigger=fast_trigger(conn_id, "j1", **trigger_kwargs),
    )


def succeeded_with(env: Env, results: Reply, **op_kwargs: Any) -> Scenario:
    """A successful job on the replay server whose results answer is ``results``."""
    env.replay.route("GET", REPLAY_JOB, Reply(200, {"jobID": "j1", "status": "successful"}))
    env.replay.route("GET", f"{REPLAY_JOB}/results", results)
    conn_id = env.conn(f"{env.replay.url}/ogc")
    op = operator(conn_id, **op_kwargs)
    return Scenario(
        act=lambda event: op.execute_complete(make_context(), event),
        requests=lambda: len(env.replay.hits("GET", f"{REPLAY_JOB}/results")),
        trigger=fast_trigger(conn_id, "j1"),
        event_status="successful",
    )


def replay_requests(env: Env) -> Callable[[], int]:
    return lambda: len(env.replay.requests)


# Answers copied from real servers (see tests/servers/WIRE.md and the sources named here).

# APISIX / OpenResty in front of an EOEPCA processing service, without or with a refused token
# (apache/apisix#3893): the stock nginx page, text/html, and a WWW-Authenticate challenge.
APISIX_401 = Reply(
    401,
    "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n"
    "<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>openresty</center>\r\n"
    "</body>\r\n</html>\r\n",
    content_type="text/html; charset=utf-8",
    headers={"WWW-Authenticate": 'Bearer realm="apisix", error="invalid_token"'},
)
# APISIX's authz-keycloak plugin when the token's user lacks the permission (apache/apisix#6460).
KEYCLOAK_403 = Reply(403, {"error": "access_denied", "error_description": "not_authorized"})
# nginx as a gateway whose upstream is down.
NGINX_502 = Reply(
    502,
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    content_type="text/html",
)
# An SSO proxy (oauth2-proxy, Keycloak) that answers an unauthenticated API call with its login page.
LOGIN_PAGE = Reply(
    200,
    "<!DOCTYPE html><html><head><title>Sign in to EOEPCA</title></head><body>"
    "<form id='kc-form-login'><label>Username or email</label><input name='username'>"
    "<label>Password</label><input name='password' type='password'></form></body></html>",
    content_type="text/html;charset=utf-8",
)
# A WPS endpoint (ZOO-Kernel's /cgi-bin/zoo_loader.cgi) configured where the OGC API root belongs.
WPS_EXCEPTION = Reply(
    200,
    '<?xml version="1.0" encoding="UTF-8"?>\n<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1"'
    ' version="1.1.0"><ows:Exception exceptionCode="MissingParameterValue" locator="request">'
    "<ows:ExceptionText>Parameter &lt;request&gt; was not specified</ows:ExceptionText>"
    "</ows:Exception></ows:ExceptionReport>",
    content_type="application/xml",
)
# pygeoapi's statusInfo (WIRE.md §3) with values no server should send.
PYGEOAPI_STATUS = {
    "type": "process",
    "processID": "echo",
    "jobID": "j1",
    "status": "running",
    "message": "Job accepted and ready for execution",
    "progress": 5,
    "parameters": None,
    "created": "2026-11-24T21:35:22.944634Z",
    "started": "2026-11-24T21:35:22.944667Z",
    "finished": None,
    "updated": "2026-11-24T21:35:22.951812Z",
}
# One STAC item as the water-stac process returns it (WIRE.md §4).
STAC_ITEM = {
    "type": "Feature",
    "stac_version": "1.0.0",
    "stac_extensions": [],
    "id": "S2A_MSIL2A_20240612T101031_N0510_R022_T32TQM_20240612T152150",
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[10.0, 45.0], [10.1, 45.0], [10.1, 45.1], [10.0, 45.0]]],
    },
    "bbox": [10.0, 45.0, 10.1, 45.1],
    "properties": {"datetime": "2024-06-12T10:10:31Z"},
    "links": [
        {
            "rel": "self",
            "href": "s3://results/j1/S2A_MSIL2A_20240612T101031_N0510_R022_T32TQM_20240612T152150/item.json",
            "type": "application/json",
        }
    ],
    "assets": {"data": {"href": "s3://results/j1/S2A/otsu.tif", "type": "image/tiff; application=geotiff"}},
}


# -- the connection and the operator's own arguments (nothing is sent) ------------------------------


@case(
    "connection without a host",
    AirflowFailException,
    rf"Connection {CONN} has no host: set it to the API root URL",
    requests=0,
)
def no_host(env: Env) -> Scenario:
    return submit(operator(env.conn("")), replay_requests(env))


@case(
    "connection with auth_type 'oauth2'",
    AirflowFailException,
    rf"Connection {CONN}: auth_type 'oauth2' is not one of none, basic, bearer, api_key",
    requests=0,
)
def bad_auth_type(env: Env) -> Scenario:
    conn_id = env.conn(env.replay.url, password="t", extra={"auth_type": "oauth2"})
    return submit(operator(conn_id), replay_requests(env))


@case(
    "poll_interval=0",
    ValueError,
    r"0 < poll_interval <= max_poll_interval, got 0 and 120",
    requests=0,
    retryable=None,  # a DAG import error, before any task runs
)
def zero_poll_interval(env: Env) -> Scenario:
    return Scenario(
        act=lambda _e: ExecuteProcessOperator(task_id="t", process_id="echo", poll_interval=0),
        requests=replay_requests(env),
    )


@case(
    "process_id templated to an empty string",
    AirflowFailException,
    r"process_id must be a non-empty string, got '' \(did its template render nothing\?\)",
    requests=0,
)
def empty_process_id(env: Env) -> Scenario:
    return submit(operator(env.conn(env.replay.url), process_id=""), replay_requests(env))


# -- inputs --------------------------------------------------------------------------------------------


@case(
    "unknown process (pygeoapi)",
    AirflowFailException,
    r"Process 'water-bodie' does not exist on http://127\.0\.0\.1:\d+ \(HTTP 404 .*NoSuchProcess",
    requests=1,
)
def unknown_process(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    return submit(operator(env.conn(proxy.url), process_id="water-bodie"), proxy.count)


@case(
    "unknown process, inputs not validated (wraptile answers the POST)",
    AirflowFailException,
    r"HTTP 404 Not Found from POST http://\S+/processes/nope/execution \[\S+no-such-process\]: "
    r"Not Found — Process 'nope' does not exist",
    requests=1,
)
def unknown_process_unvalidated(env: Env) -> Scenario:
    proxy = env.real("wraptile")
    op = operator(env.conn(proxy.url), process_id="nope", validate_inputs=False)
    return submit(op, proxy.count)


@case(
    "missing required input (pygeoapi)",
    AirflowFailException,
    r"Invalid inputs for process 'echo':\n  - 'message' is required but missing",
    requests=1,  # the process description; nothing is submitted
)
def missing_input(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    return submit(operator(env.conn(proxy.url), inputs={"count": 2}), proxy.count)


@case(
    "input of the wrong type (wraptile)",
    AirflowFailException,
    r"Invalid inputs for process 'echo':\n  - 'count': 'abc' is not of type 'integer'",
    requests=1,
)
def wrong_type(env: Env) -> Scenario:
    proxy = env.real("wraptile")
    return submit(operator(env.conn(proxy.url), inputs={"message": "hi", "count": "abc"}), proxy.count)


@case(
    "input out of range (pygeoapi)",
    AirflowFailException,
    r"'count': 11 is greater than the maximum of 10",
    requests=1,
)
def out_of_range(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    return submit(operator(env.conn(proxy.url), inputs={"message": "hi", "count": 11}), proxy.count)


@case(
    "unknown input name (wraptile, which would silently ignore it)",
    AirflowFailException,
    r"'mesage' is not an input of this process \(inputs: count, message\).*'message' is required",
    requests=1,
)
def unknown_input(env: Env) -> Scenario:
    proxy = env.real("wraptile")
    return submit(operator(env.conn(proxy.url), inputs={"mesage": "hi"}), proxy.count)


@case(
    "inputs rejected by the server (wraptile, validate_inputs=False)",
    AirflowFailException,
    r"HTTP 400 Bad Request from POST \S+/processes/echo/execution .*"
    r"Invalid parameterization for process 'echo'.*message\s+Field required",
    requests=1,
)
def rejected_by_server(env: Env) -> Scenario:
    proxy = env.real("wraptile")
    op = operator(env.conn(proxy.url), inputs={"count": 1}, validate_inputs=False)
    return submit(op, proxy.count)


@case(
    "a set among the inputs (a template rendered a Python object)",
    AirflowFailException,
    r"Invalid inputs for process 'echo':\n  - 'message' is a set \(\{'hi'\}\), which has no JSON form "
    r"\(use a list\)",
    requests=0,
)
def set_input(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    return submit(operator(env.conn(proxy.url), inputs={"message": {"hi"}}), proxy.count)


@case(
    "NaN input",
    AirflowFailException,
    r"'seconds' is nan, which JSON cannot represent",
    requests=0,
)
def nan_input(env: Env) -> Scenario:
    proxy = env.real("wraptile")
    op = operator(env.conn(proxy.url), process_id="sleep", inputs={"seconds": float("nan")})
    return submit(op, proxy.count)


@case(
    "inputs rendered as text instead of a dict",
    AirflowFailException,
    r"inputs must be a JSON object, got str \"\{'message': 'hi'\}\" \(a template rendered as text\?",
    requests=0,
)
def text_inputs(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    return submit(operator(env.conn(proxy.url), inputs="{'message': 'hi'}"), proxy.count)


# -- credentials ---------------------------------------------------------------------------------------


@case(
    "401 from an auth gateway, no credentials configured",
    AirflowFailException,
    rf"The server wants credentials and connection {CONN} sends none \(auth_type none\).*"
    r"HTTP 401 Unauthorized from GET \S+/ogc/processes/echo \(text/html; charset=utf-8\): "
    r"401 Authorization Required",
    requests=1,
)
def unauthorized_without_credentials(env: Env) -> Scenario:
    env.replay.route("GET", "/ogc/processes/echo", APISIX_401)
    return submit(operator(env.conn(f"{env.replay.url}/ogc")), replay_requests(env))


@case(
    "401 while polling: the token was revoked",
    OGCJobFailedPermanentlyError,
    rf"Polling job j1 failed \(permanent error\): the server refused the credentials of connection {CONN} "
    r"\(auth_type bearer\): check its Login/Password and auth_type: HTTP 401 Unauthorized",
    requests=1,
)
def unauthorized_while_polling(env: Env) -> Scenario:
    return polled(env, APISIX_401, conn={"password": "expired-token", "extra": {"auth_type": "bearer"}})


@case(
    "403 while polling: the user lacks the permission",
    OGCJobFailedPermanentlyError,
    rf"the server forbids this request to connection {CONN}: check its credentials.*HTTP 403 Forbidden from GET "
    r"\S+/ogc/jobs/j1: \{\"error\": \"access_denied\", \"error_description\": \"not_authorized\"\}",
    requests=1,
)
def forbidden_while_polling(env: Env) -> Scenario:
    return polled(env, KEYCLOAK_403, conn={"login": "u", "password": "p"})


# -- the execute answer --------------------------------------------------------------------------------


@case(
    "201 with neither a Location header nor a statusInfo",
    AirflowFailException,
    r"accepted the execute request \(HTTP 201\) but gave neither a Location header nor a statusInfo "
    r"with a job id",
    requests=1,
)
def created_without_job(env: Env) -> Scenario:
    env.replay.route("POST", "/ogc/processes/echo/execution", Reply(201, None))
    op = operator(env.conn(f"{env.replay.url}/ogc"), validate_inputs=False)
    return submit(op, replay_requests(env))


@case(
    "201 statusInfo without jobID (wraptile's JobInfo, id missing)",
    AirflowFailException,
    r"neither a Location header nor a statusInfo with a job id",
    requests=1,
)
def created_status_without_job_id(env: Env) -> Scenario:
    info = {"processID": "echo", "status": "accepted", "created": "2026-11-24T21:35:57.505562Z"}
    env.replay.route("POST", "/ogc/processes/echo/execution", Reply(201, info))
    op = operator(env.conn(f"{env.replay.url}/ogc"), validate_inputs=False)
    return submit(op, replay_requests(env))


# -- the status answer, met by the trigger -------------------------------------------------------------


@case(
    "unknown job id (pygeoapi)",
    OGCJobFailedPermanentlyError,
    r"Polling job no-such-job failed \(permanent error\): job 'no-such-job' was not found on the server "
    r"\(dismissed or deleted there, or never created\): HTTP 404 NOT FOUND from GET \S+/jobs/no-such-job",
    requests=1,
)
def unknown_job(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    conn_id = env.conn(proxy.url)
    op = operator(conn_id)
    return Scenario(
        act=lambda event: op.execute_complete(make_context(), event),
        requests=proxy.count,
        trigger=fast_trigger(conn_id, "no-such-job"),
    )


@case(
    "job deleted while it is polled (pygeoapi removes a dismissed job: 404)",
    OGCJobFailedPermanentlyError,
    r"Polling job \S+ failed \(permanent error\): job '\S+' was not found on the server "
    r"\(dismissed or deleted there, or never created\): HTTP 404",
    requests=1,  # 404 answers: the first one ends the watch
)
def deleted_mid_poll(env: Env) -> Scenario:
    return _removed_mid_poll(env, "pygeoapi", status=404, body=None)


@case(
    "job dismissed by someone else (wraptile keeps it as dismissed)",
    OGCJobFailedPermanentlyError,
    # The server's last message depends on how far the job got: "Sleeping 30s" or "Slept 0.1s of 30s".
    r"Job job_\d+ of process 'sleep' was dismissed on the server \(not by this task\): Sl(eeping|ept \S+ of) 30s "
    r"\(status: http://\S+/jobs/job_\d+\)",
    requests=1,  # 'dismissed' answers: the first one ends the watch
)
def dismissed_by_someone_else(env: Env) -> Scenario:
    scenario = _removed_mid_poll(env, "wraptile", status=200, body='"dismissed"')
    scenario.event_status = "dismissed"
    return scenario


def _removed_mid_poll(env: Env, server: str, status: int, body: str | None) -> Scenario:
    proxy = env.real(server)
    op = operator(env.conn(proxy.url), process_id="sleep", inputs={"seconds": 30})
    scenario = deferred(op, lambda: 0, "error")
    assert scenario.trigger is not None
    job_id = scenario.trigger.job_id

    def dismiss_after_first_poll() -> None:
        proxy.wait_for("GET", f"/jobs/{job_id}", 200)
        env.hook_for(env.upstream(server)).dismiss_job(job_id)  # someone else, straight to the server

    env.in_background(dismiss_after_first_poll)
    scenario.requests = lambda: proxy.count("GET", f"/jobs/{job_id}", status=status, answer=body)
    return scenario


@case(
    "HTML 502 page from a gateway, again and again",
    OGCJobFailedError,
    r"Polling job j1 failed \(3 consecutive transient errors\): HTTP 502 Bad Gateway from GET "
    r"\S+/ogc/jobs/j1 \(text/html\): 502 Bad Gateway .*nginx",
    requests=3,  # transient: polled again, up to max_transient_errors
    retryable=True,
)
def gateway_502(env: Env) -> Scenario:
    return polled(env, NGINX_502, conn={"extra": {"max_retries": 0}}, max_transient_errors=2)


@case(
    "429 with a malformed Retry-After ('soon')",
    OGCJobFailedError,
    r"Polling job j1 failed \(transient error, max_transient_errors=0\): HTTP 429 Too Many Requests",
    requests=2,  # the hook retried once after its own backoff, the header being unusable
    retryable=True,
)
def malformed_retry_after(env: Env) -> Scenario:
    reply = Reply(429, {"title": "Too Many Requests"}, headers={"Retry-After": "soon"})
    return polled(env, reply, conn={"extra": {"max_retries": 1}}, max_transient_errors=0)


@case(
    "invalid JSON in a 200 status",
    OGCJobFailedPermanentlyError,
    r"Expected JSON from GET \S+/ogc/jobs/j1 \(HTTP 200\), got application/json: \{'jobID': 'j1', status",
    requests=1,
)
def invalid_json(env: Env) -> Scenario:
    return polled(env, Reply(200, "{'jobID': 'j1', status: running", content_type="application/json"))


@case(
    "text/html 200 for a status: an SSO login page",
    OGCJobFailedPermanentlyError,
    r"Expected JSON from GET \S+/ogc/jobs/j1 \(HTTP 200\), got text/html;charset=utf-8: Sign in to EOEPCA",
    requests=1,
)
def login_page(env: Env) -> Scenario:
    return polled(env, LOGIN_PAGE)


@case(
    "application/xml 200 for a status: a WPS endpoint's ExceptionReport",
    OGCJobFailedPermanentlyError,
    r"Expected JSON from GET \S+/ogc/jobs/j1 \(HTTP 200\), got application/xml: "
    r"Parameter &lt;request&gt; was not specified",
    requests=1,
)
def xml_status(env: Env) -> Scenario:
    return polled(env, WPS_EXCEPTION)


@case(
    "empty 200 body for a status",
    OGCJobFailedPermanentlyError,
    r"Expected a statusInfo JSON object from \S+/ogc/jobs/j1, got an empty body",
    requests=1,
)
def empty_status(env: Env) -> Scenario:
    return polled(env, Reply(200, b"", content_type="application/json"))


@case(
    "unknown status value",
    OGCJobFailedPermanentlyError,
    r"Unknown job status 'queued' in the statusInfo of job j1 from \S+/ogc/jobs/j1 "
    r"\(expected one of: accepted, running, successful, failed, dismissed\)",
    requests=1,
)
def unknown_status(env: Env) -> Scenario:
    return polled(env, Reply(200, {**PYGEOAPI_STATUS, "status": "queued"}))


@case(
    "statusInfo without a status",
    OGCJobFailedPermanentlyError,
    r"The server's statusInfo for job j1 from \S+/ogc/jobs/j1 has no status; it has: created, finished, "
    r"jobID",
    requests=1,
)
def status_missing(env: Env) -> Scenario:
    body = {k: v for k, v in PYGEOAPI_STATUS.items() if k != "status"}
    return polled(env, Reply(200, body))


@case(
    "redirect loop on the status URL",
    OGCJobFailedPermanentlyError,
    r"Polling job j1 failed \(permanent error\): Too many redirects \(6\) from GET \S+/ogc/jobs/j1 "
    r"\(a redirect loop\?\)",
    requests=6,  # one request and 5 redirects, each followed once: the loop is not retried
)
def redirect_loop(env: Env) -> Scenario:
    return polled(env, Reply(302, None, headers={"Location": "{base}/ogc/jobs/j1"}))


# -- a job that fails on the server --------------------------------------------------------------------


@case(
    "process that fails on the server (pygeoapi 'fail')",
    OGCJobFailedError,
    r"Job \S+ of process 'fail' ended failed: InvalidParameterValue: Error executing process: "
    r"no cloud-free pixels \(status: http://\S+/jobs/\S+\)",
    requests=1,  # one submission, no results fetched
    retryable=True,  # a new job may succeed: a retry submits one
)
def failed_job(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    op = operator(env.conn(proxy.url), process_id="fail", inputs={"message": "no cloud-free pixels"})
    return deferred(op, lambda: proxy.count("POST") + proxy.count("GET", r".*/results"), "failed")


@case(
    "inputs the server rejects after accepting the job (pygeoapi, validate_inputs=False)",
    OGCJobFailedError,
    r"Job \S+ of process 'echo' ended failed: InvalidParameterValue: Error executing process: "
    r"missing required input 'message'",
    requests=1,
    retryable=True,
)
def failed_on_server_validation(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    op = operator(env.conn(proxy.url), inputs={}, validate_inputs=False)
    return deferred(op, lambda: proxy.count("POST") + proxy.count("GET", r".*/results"), "failed")


# -- results -------------------------------------------------------------------------------------------


@case(
    "results without the expected output (stac_output='stac_catalog' on echo, pygeoapi)",
    AirflowFailException,
    r"The results have no output 'stac_catalog' \(outputs: echo\)",
    requests=1,
)
def missing_output(env: Env) -> Scenario:
    proxy = env.real("pygeoapi")
    op = operator(env.conn(proxy.url), stac_output="stac_catalog")
    return deferred(op, lambda: proxy.count("GET", r"/jobs/[^/]+/results"), "successful")


@case(
    "oversized results (wraptile, max_result_bytes=1000)",
    AirflowFailException,
    r"The results of process 'echo' are \d+ bytes, more than max_result_bytes \(1000\); XCom is for "
    r"references",
    requests=1,
)
def oversized_results(env: Env) -> Scenario:
    proxy = env.real("wraptile")
    op = operator(env.conn(proxy.url), inputs={"message": "x" * 200, "count": 10}, max_result_bytes=1000)
    return deferred(op, lambda: proxy.count("GET", r"/jobs/[^/]+/results"), "successful")


@case(
    "STAC items without a self link",
    AirflowFailException,
    r"STAC item 'S2A_MSIL2A_20240612T101031_N0510_R022_T32TQM_20240612T152150' has no 'self' link, so it "
    r"cannot be passed to downstream tasks by href",
    requests=1,
)
def items_without_self(env: Env) -> Scenario:
    item = {**STAC_ITEM, "links": []}
    return succeeded_with(
        env, Reply(200, {"stac_catalog": {"type": "FeatureCollection", "features": [item]}})
    )


@case(
    "results as an HTML page",
    AirflowFailException,
    r"Expected JSON from GET \S+/ogc/jobs/j1/results \(HTTP 200\), got text/html: Job result",
    requests=1,
)
def html_results(env: Env) -> Scenario:
    page = "<html><head><title>Job result</title></head><body><pre>{}</pre></body></html>"
    return succeeded_with(env, Reply(200, page, content_type="text/html"))


@case(
    "results linking a STAC catalog that is not there",
    AirflowFailException,
    r"Cannot read the STAC document http://\S+/stac/j1/catalog\.json linked from the results: HTTP 404 "
    r"Not Found from GET \S+/stac/j1/catalog\.json \(text/html\): 404 Not Found",
    requests=1,
)
def missing_catalog(env: Env) -> Scenario:
    link = {"href": "{base}/stac/j1/catalog.json", "rel": "root", "type": "application/json"}
    page = "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>"
    env.replay.route("GET", "/stac/j1/catalog.json", Reply(404, page, content_type="text/html"))
    scenario = succeeded_with(env, Reply(200, {"stac_catalog": link}))
    scenario.requests = lambda: len(env.replay.hits("GET", "/stac/j1/catalog.json"))
    return scenario


# -- the sensor ----------------------------------------------------------------------------------------


@case(
    "sensor on an unknown job id (wraptile)",
    AirflowFailException,
    r"Job 'no-such-job' was not found on the server \(dismissed or deleted there, or never created\): "
    r"HTTP 404 Not Found from GET \S+/jobs/no-such-job .*Job 'no-such-job' does not exist",
    requests=1,
)
def sensor_unknown_job(env: Env) -> Scenario:
    proxy = env.real("wraptile")
    sensor = JobStatusSensor(task_id="wait", job_id="no-such-job", ogc_conn_id=env.conn(proxy.url))
    return Scenario(act=lambda _e: sensor.execute(make_context()), requests=proxy.count)


@case(
    "sensor with a job_id templated to an empty string",
    AirflowFailException,
    r"job_id must be a non-empty string, got '' \(did its template, e\.g\. an xcom_pull, render nothing\?\)",
    requests=0,
)
def sensor_empty_job_id(env: Env) -> Scenario:
    sensor = JobStatusSensor(task_id="wait", job_id="", ogc_conn_id=env.conn(env.replay.url))
    return Scenario(act=lambda _e: sensor.execute(make_context()), requests=replay_requests(env))


# ---------------------------------------------------------------------------------------------- the test


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_a_clear_error(bad: Case, env: Env, record_property: Any) -> None:
    scenario = bad.arrange(env)
    event = None
    if scenario.trigger is not None:
        # Any exception out of the trigger's loop would be a traceback in the triggerer: it must yield.
        event = run_trigger(scenario.trigger)
        assert event["status"] == scenario.event_status, event
        if event["status"] == "error":
            assert re.search(bad.message, event["message"], re.S), event["message"]
            assert event["permanent"] is (not bad.retryable)
            # The sensor fails on the same event with the same message, never retried.
            sensor = JobStatusSensor(task_id="wait", job_id=event["job_id"], ogc_conn_id="unused")
            with pytest.raises(AirflowFailException) as sensed:
                sensor.execute_complete(make_context(), event)
            assert re.search(bad.message, str(sensed.value), re.S)

    with pytest.raises(bad.raises) as caught:
        scenario.act(event)

    message = str(caught.value)
    record_property("error", f"{type(caught.value).__name__}: {message}")  # in --junitxml reports
    assert re.search(bad.message, message, re.S), message
    assert "Traceback" not in message and len(message) < 2000, "one readable message, not a dump"
    if bad.retryable is not None:
        assert isinstance(caught.value, AirflowFailException) is (not bad.retryable), (
            "a permanent cause fails the task without retries; a transient one leaves them to Airflow"
        )
    assert scenario.requests() == bad.requests, "requests the server saw for the failing call"


def test_the_catalogue_is_complete() -> None:
    assert len(CASES) >= 26 and len({c.id for c in CASES}) == len(CASES)


# ---------------------------------------------------------------------------------------------- handled well


def test_job_url_on_another_host_is_replaced_and_gets_no_credentials(env: Env) -> None:
    """ZOO-Project-DRU advertises its cluster-internal name: the job is polled on the connection's host."""
    from tests.support.seed import SEED_JOB_ID, zoo_status_info

    own, other = env.replay, ReplayServer().start()
    try:
        own.route(
            "POST", "/ogc/processes/water-bodies/execution", Reply(201, zoo_status_info(f"{other.url}/ogc"))
        )
        own.route(
            "GET", f"/ogc/jobs/{SEED_JOB_ID}", Reply(200, zoo_status_info(f"{other.url}/ogc", "successful"))
        )
        # The results link a STAC catalog on the other host: read there, without credentials.
        own.route(
            "GET",
            f"/ogc/jobs/{SEED_JOB_ID}/results",
            Reply(200, {"stac": {"href": f"{other.url}/stac/catalog.json", "type": "application/json"}}),
        )
        other.route(
            "GET",
            "/stac/catalog.json",
            Reply(
                200,
                {
                    "type": "Catalog",
                    "stac_version": "1.0.0",
                    "id": "c",
                    "description": "d",
                    "links": [{"rel": "item", "href": "./item.json"}],
                },
            ),
        )
        other.route("GET", "/stac/item.json", Reply(200, {**STAC_ITEM, "links": []}))
        conn_id = env.conn(f"{own.url}/ogc", password="s3cr3t", extra={"auth_type": "bearer"})
        op = operator(conn_id, process_id="water-bodies", inputs={}, validate_inputs=False)
        context = make_context()
        with pytest.raises(TaskDeferred) as caught:
            op.execute(context)
        assert context["ti"].xcoms["job_url"] == f"{own.url}/ogc/jobs/{SEED_JOB_ID}"
        event = run_trigger(caught.value.trigger)
        assert op.execute_complete(context, event) == [f"{other.url}/stac/item.json"]
        assert [r.path for r in other.requests] == ["/stac/catalog.json", "/stac/item.json"]
        assert all("Authorization" not in r.headers for r in other.requests)
        assert all(r.headers.get("Authorization") == "Bearer s3cr3t" for r in own.requests)
    finally:
        other.stop()


@pytest.mark.parametrize("shape", ["feature_collection", "single_item", "catalog_link"])
def test_stac_results_of_every_shape_give_item_hrefs(env: Env, shape: str) -> None:
    """A FeatureCollection (real wraptile), a single Item and a link to a catalog give the same kind of hrefs."""
    if shape == "feature_collection":
        proxy = env.real("wraptile")
        op = operator(env.conn(proxy.url), process_id="water-stac", inputs={"item_ids": ["A", "B"]})
        context = make_context()
        with pytest.raises(TaskDeferred) as caught:
            op.execute(context)
        hrefs = op.execute_complete(context, run_trigger(caught.value.trigger))
        assert [h.rsplit("/", 2)[1:] for h in hrefs] == [["A", "A.json"], ["B", "B.json"]]
        return
    if shape == "single_item":
        results: dict[str, Any] = {"stac_item": {"value": STAC_ITEM, "mediaType": "application/geo+json"}}
        expected = [STAC_ITEM["links"][0]["href"]]  # type: ignore[index]
    else:
        results = {"stac_catalog": {"href": "{base}/stac/catalog.json", "type": "application/json"}}
        env.replay.route(
            "GET",
            "/stac/catalog.json",
            Reply(
                200,
                {
                    "type": "Catalog",
                    "stac_version": "1.0.0",
                    "id": "c",
                    "description": "d",
                    "links": [{"rel": "item", "href": "items/one.json"}],
                },
            ),
        )
        env.replay.route("GET", "/stac/items/one.json", Reply(200, {**STAC_ITEM, "links": []}))
        expected = [f"{env.replay.url}/stac/items/one.json"]
    scenario = succeeded_with(env, Reply(200, results))
    assert scenario.trigger is not None
    assert scenario.act(run_trigger(scenario.trigger)) == expected


def test_a_huge_retry_after_does_not_park_the_trigger(env: Env) -> None:
    """A server asking to wait a day is honoured only up to max_poll_interval."""
    env.replay.route(
        "GET",
        REPLAY_JOB,
        Reply(503, {"title": "maintenance"}, headers={"Retry-After": "86400"}),
        Reply(200, {"jobID": "j1", "status": "successful"}),
    )
    conn_id = env.conn(f"{env.replay.url}/ogc", extra={"max_retries": 0})
    event = run_trigger(fast_trigger(conn_id, "j1"), timeout=30)  # a bound: uncapped, it would wait a day
    assert event["status"] == "successful" and len(env.replay.hits("GET", REPLAY_JOB)) == 2


def test_a_status_without_job_id_is_tolerated_when_polling(env: Env) -> None:
    """Unlike the execute answer, a status read from /jobs/{id} needs no jobID: the id is known."""
    body = {k: v for k, v in PYGEOAPI_STATUS.items() if k != "jobID"}
    env.replay.route("GET", REPLAY_JOB, Reply(200, {**body, "status": "successful", "message": "done"}))
    event = run_trigger(fast_trigger(env.conn(f"{env.replay.url}/ogc"), "j1"))
    assert (event["status"], event["job"]["job_id"], event["message"]) == ("successful", "j1", "done")


def test_tuples_in_the_inputs_are_sent_as_json_arrays(env: Env) -> None:
    """A tuple (e.g. from a native-object template) is what json.dumps sends anyway: a list, checked as one."""
    env.replay.route(
        "POST", "/ogc/processes/p/execution", Reply(201, None, headers={"Location": "{base}/ogc/jobs/j1"})
    )
    op = operator(
        env.conn(f"{env.replay.url}/ogc"),
        process_id="p",
        inputs={"bands": ("green", "nir08"), "aoi": {"bbox": (1.0, 2.0, 3.0, 4.0)}},
        validate_inputs=False,
        wait_for_completion=False,
    )
    assert op.execute(make_context()) == "j1"
    sent = env.replay.hits("POST", "/ogc/processes/p/execution")[0].json()
    assert sent == {"inputs": {"bands": ["green", "nir08"], "aoi": {"bbox": [1.0, 2.0, 3.0, 4.0]}}}


def test_an_output_by_reference_that_is_not_stac_is_not_downloaded(env: Env) -> None:
    """A GeoTIFF passed by reference is a link too; it is returned as it is, never read as JSON."""
    results = {"mask": {"href": "{base}/out/otsu.tif", "type": "image/tiff; application=geotiff"}}
    scenario = succeeded_with(env, Reply(200, results))
    assert scenario.trigger is not None
    returned = scenario.act(run_trigger(scenario.trigger))
    assert returned == {
        "mask": {"href": f"{env.replay.url}/out/otsu.tif", "type": "image/tiff; application=geotiff"}
    }
    assert not env.replay.hits("GET", "/out/otsu.tif")
