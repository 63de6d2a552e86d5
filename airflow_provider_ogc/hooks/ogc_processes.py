"""The hook over every OGC API - Processes endpoint (Part 1 core, Part 2 deploy/replace/undeploy)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import weakref
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote

import aiohttp
import httpx
import yarl
from airflow.sdk import BaseHook

from airflow_provider_ogc import __version__, submission
from airflow_provider_ogc.exceptions import (
    OGCInvalidResponseError,
    OGCProcessesAPIError,
    OGCProcessesError,
)
from airflow_provider_ogc.hooks._http import (
    JSON,
    MAX_REDIRECTS,
    AsyncReply,
    ConnectionSettings,
    Reply,
    decode_json,
    error_from_response,
    load_settings,
    origin_of,
    redirect_target,
    redirected_method,
)
from airflow_provider_ogc.models import (
    STATUS_LINK_RELS,
    ApplicationPackage,
    DeployedProcess,
    Execution,
    JobStatus,
    Link,
    StatusInfo,
    find_link,
    job_id_of,
    looks_like_status_info,
)
from airflow_provider_ogc.packages import encode_package

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from os import PathLike

__all__ = ["AsyncClient", "OGCProcessesHook", "aclose_shared_clients", "job_id_from_url"]

R = TypeVar("R", bound=Reply)

OPENAPI_ACCEPT = (
    "application/vnd.oai.openapi+json;version=3.0, application/openapi+json, application/json;q=0.9"
)
EXECUTION_MODES = ("async", "sync", "auto")
MAX_PAGES = 100

# Conformance classes worth naming in test_connection(), by their URI's last path segment.
CAPABILITIES = {
    "core": "core",
    "json": "JSON",
    "ogc-process-description": "OGC process description",
    "job-list": "job list",
    "dismiss": "dismiss",
    "callback": "callback",
    "deploy-replace-undeploy": "deploy/replace/undeploy (Part 2)",
    "cwl": "CWL application packages",
    "ogcapppkg": "OGC application packages",
    "oas30": "OpenAPI 3.0",
}


# One connection pool per (event loop, connection settings): all triggers of a triggerer
# process that talk to the same server reuse keep-alive connections instead of reconnecting.
_ASYNC_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], AsyncClient]]
_ASYNC_CLIENTS = weakref.WeakKeyDictionary()
# Requests in flight per shared client. Waiters queue on a semaphore rather than in the client's
# pool (httpcore's queue was rescanned against every connection on each event, O(queue x pool):
# with thousands of triggers that rescan, not HTTP, saturated the loop; see benchmarks/).
_ASYNC_GATES: weakref.WeakKeyDictionary[AsyncClient, asyncio.Semaphore]
_ASYNC_GATES = weakref.WeakKeyDictionary()
# httpx's keep-alive expiry: an idle connection is not reused after this many seconds.
KEEPALIVE_EXPIRY = 5.0


class AsyncClient:
    """
    The async side's client for one server on one event loop: an ``aiohttp.ClientSession`` and
    what the hook adds to it, with the sync side's (httpx's) behaviour.

    aiohttp, not httpx, because a status poll is the triggerer's whole cost and httpx's client layer
    alone costs more CPU per GET than aiohttp's whole request (issue 15, ``benchmarks/http_floor.py``).

    * Keep-alive pool of ``max_connections`` connections (idle ones kept 5 s, as httpx does).
    * Credentials (auth header, API key, extra headers) on requests to the connection's origin only:
      two sessions share the pool and the cookies, one with the credentials among its default
      headers for the origin, one without for any other host. A poll then adds no header of its
      own, which spares aiohttp a header merge per request (most of its cost above a bare GET).
    * TLS as ``verify`` says (:meth:`ConnectionSettings.ssl_context`: httpx's trust).
    * Timeouts: ``connect_timeout`` for DNS, connect and TLS; ``timeout`` between two reads
      (aiohttp has no write timeout: the async side sends no bodies but a dismiss's none).
    * Proxies from ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` less ``NO_PROXY``, read once, as
      httpx's ``trust_env`` does; aiohttp's own ``trust_env`` stays off, for it would also read
      ``~/.netrc`` and send its credentials to any host listed there.
    * Cookies kept, from any host (IP addresses too), as httpx does.
    * No redirects and no retries of its own: the hook follows redirects, the retry policy retries.
    """

    __slots__ = (
        "__weakref__",
        "_credential_names",
        "_origin",
        "_other_hosts",
        "_proxies",
        "_proxy_by_origin",
        "session",
    )

    def __init__(self, settings: ConnectionSettings) -> None:
        credentials = settings.auth().headers
        self._origin = settings.origin
        self._credential_names = {name.lower() for name in credentials}
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            keepalive_timeout=KEEPALIVE_EXPIRY,
            ssl=settings.ssl_context(),
        )
        shared: dict[str, Any] = {
            "timeout": aiohttp.ClientTimeout(
                total=None,
                connect=settings.connect_timeout,
                sock_connect=settings.connect_timeout,
                sock_read=settings.timeout,
            ),
            "cookie_jar": aiohttp.CookieJar(unsafe=True),
            "trust_env": False,
        }
        self.session = aiohttp.ClientSession(
            connector=connector, headers={**_default_headers(), **credentials}, **shared
        )
        self._other_hosts = aiohttp.ClientSession(
            connector=connector, connector_owner=False, headers=_default_headers(), **shared
        )
        if "_retry_connection" in getattr(aiohttp.ClientSession, "ATTRS", ()):
            # aiohttp resends a GET or DELETE once, at once, after a reset: one retry layer only.
            self.session._retry_connection = self._other_hosts._retry_connection = False
        self._proxies = {k: v for k, v in urllib.request.getproxies_environment().items() if v}
        self._proxy_by_origin: dict[tuple[str, str | None, int | None], str | None] = {}

    @property
    def is_closed(self) -> bool:
        return self.session.closed

    async def aclose(self) -> None:
        await self._other_hosts.close()
        await self.session.close()  # the owner of the shared connector: closes the pool

    def _proxy_for(self, url: yarl.URL) -> str | None:
        key = (url.scheme, url.host, url.port)
        if key not in self._proxy_by_origin:
            proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
            if proxy and url.host and urllib.request.proxy_bypass_environment(url.host, self._proxies):  # type: ignore[attr-defined]
                proxy = None
            self._proxy_by_origin[key] = proxy
        return self._proxy_by_origin[key]

    async def send(self, method: str, url: str, kwargs: dict[str, Any]) -> AsyncReply:
        """One request, answer read whole; ``kwargs`` as :func:`_request_kwargs` makes them."""
        target = yarl.URL(url)
        own = (target.scheme, target.host, target.port) == self._origin
        headers = kwargs["headers"]
        if own and headers:  # the connection's credentials win over a request's own, as with httpx
            headers = {k: v for k, v in headers.items() if k.lower() not in self._credential_names}
        params = kwargs.get("params")
        async with (self.session if own else self._other_hosts).request(
            method,
            target,
            headers=headers or None,
            params=_query_pairs(params) if params else None,
            data=kwargs.get("content"),
            allow_redirects=False,
            proxy=self._proxy_for(target) if self._proxies else None,
        ) as response:
            body = await response.read()
            return AsyncReply(method, response.url, response.status, response.reason, response.headers, body)


class OGCProcessesHook(BaseHook):
    """
    Client for an OGC API - Processes server, configured by an Airflow connection.

    Sync methods use one pooled :class:`httpx.Client` per hook; async methods (``a*``) use an
    :class:`AsyncClient` (an ``aiohttp.ClientSession``, for the triggerer's CPU) shared by every hook
    on the same event loop with the same connection settings, so one triggerer process keeps one
    pool per server. Both sides follow the same rules (credentials, TLS, redirects, retries).

    GET, PUT and DELETE requests retry connection errors, timeouts, resets, 5xx and 429 with
    exponential backoff, honouring ``Retry-After``. A POST is sent again only when the server cannot
    have acted on it (connection never made, 429, 503, or a 5xx with ``Retry-After``). When an
    execute request fails after it may have reached the server (500, 502, 504, a reset or a
    timeout), :meth:`execute_process` reconciles with the server's job list before anything else:
    it adopts the job the lost request created, resends only when no such job exists, and raises
    :class:`~airflow_provider_ogc.exceptions.OGCAmbiguousSubmissionError` when it cannot tell,
    so a job is never submitted twice by one hook. Credentials are sent to the connection's own
    origin only.

    :param ogc_conn_id: the Airflow connection of type ``ogc_processes``.
    """

    conn_name_attr = "ogc_conn_id"
    default_conn_name = "ogc_processes_default"
    conn_type = "ogc_processes"
    hook_name = "OGC API - Processes"

    def __init__(self, ogc_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ogc_conn_id = ogc_conn_id
        self._settings: ConnectionSettings | None = None
        self._client: httpx.Client | None = None
        # The shared async client last used and its loop: a trigger's next poll skips the lookup.
        self._aclient: tuple[asyncio.AbstractEventLoop, AsyncClient] | None = None

    @classmethod
    def from_connection(cls, conn: Any) -> OGCProcessesHook:
        """A hook on a connection already read (the api-server reads them its own way)."""
        hook = cls(ogc_conn_id=conn.conn_id)
        hook._settings = load_settings(conn)
        return hook

    # ------------------------------------------------------------------ connection

    @property
    def settings(self) -> ConnectionSettings:
        """The validated connection settings (read from Airflow once per hook)."""
        if self._settings is None:
            self._settings = load_settings(self.get_connection(self.ogc_conn_id))
        return self._settings

    async def asettings(self) -> ConnectionSettings:
        """Async variant of :attr:`settings`, safe to call in the triggerer's event loop."""
        if self._settings is None:
            try:
                conn = await self.aget_connection(self.ogc_conn_id)
            except ImportError:
                # Airflow 3.1.0 has no async lookup outside a supervised process (tests, scripts).
                from asgiref.sync import sync_to_async

                conn = await sync_to_async(self.get_connection)(self.ogc_conn_id)
            self._settings = load_settings(conn)
        return self._settings

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def get_conn(self) -> httpx.Client:
        """The hook's pooled sync client (created on first use)."""
        if self._client is None:
            settings = self.settings
            self._client = httpx.Client(
                auth=settings.auth(),
                headers=_default_headers(),
                timeout=settings.httpx_timeout(),
                verify=settings.verify,
                follow_redirects=False,  # redirects are followed by hand so credentials stay per-origin
            )
        return self._client

    async def aget_client(self) -> AsyncClient:
        """The async client shared on this event loop by hooks with the same settings."""
        loop = asyncio.get_running_loop()
        if self._aclient is not None and self._aclient[0] is loop and not self._aclient[1].is_closed:
            return self._aclient[1]
        settings = await self.asettings()
        clients = _ASYNC_CLIENTS.setdefault(loop, {})
        key = settings.fingerprint()
        client = clients.get(key)
        if client is None or client.is_closed:
            client = AsyncClient(settings)
            clients[key] = client
            _ASYNC_GATES[client] = asyncio.Semaphore(settings.max_connections)
        self._aclient = (loop, client)
        return client

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> OGCProcessesHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _target(self, target: str) -> str:
        return target if "://" in target else self.settings.url(target)

    def request(
        self,
        method: str,
        target: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        accept: str = JSON,
    ) -> httpx.Response:
        """
        Send one request (with retries where safe) and return the successful response.

        :param method: HTTP method.
        :param target: a path below the API root, or an absolute URL (e.g. a link).
        :param params: query parameters.
        :param json_body: a JSON-serialisable body.
        :param content: a raw body (with ``headers`` giving its Content-Type).
        :param headers: extra request headers.
        :param accept: the ``Accept`` header.
        :raises OGCProcessesAPIError: for an error response, once retries are exhausted.
        """
        client = self.get_conn()
        url = self._target(target)
        kwargs = _request_kwargs(params, json_body, content, headers, accept)
        return self.settings.retry_policy().call(
            method, lambda: self._send_following_redirects(client, method, url, kwargs), self.log
        )

    def _send_following_redirects(
        self, client: httpx.Client, method: str, url: str, kwargs: dict[str, Any]
    ) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            response = client.request(method, url, **kwargs)
            self.log.debug("%s %s -> %s", method, url, response.status_code)
            target = redirect_target(response)
            if target is None:
                return _raise_for_status(response)
            method, url, kwargs = _follow(method, response, target, kwargs)
        raise _redirect_loop(method, url)

    async def arequest(
        self,
        method: str,
        target: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        accept: str = JSON,
    ) -> AsyncReply:
        """Async variant of :meth:`request`, on the shared async client (aiohttp)."""
        client = await self.aget_client()
        settings = await self.asettings()
        url = target if "://" in target else settings.url(target)
        kwargs = _request_kwargs(params, json_body, content, headers, accept)
        gate = _ASYNC_GATES[client]

        async def attempt() -> AsyncReply:
            async with gate:  # held for one attempt only, never across a backoff sleep
                return await self._asend_following_redirects(client, method, url, kwargs)

        return await settings.retry_policy().acall(method, attempt, self.log)

    async def _asend_following_redirects(
        self, client: AsyncClient, method: str, url: str, kwargs: dict[str, Any]
    ) -> AsyncReply:
        for _ in range(MAX_REDIRECTS + 1):
            response = await client.send(method, url, kwargs)
            self.log.debug("%s %s -> %s", method, url, response.status_code)
            target = redirect_target(response)
            if target is None:
                return _raise_for_status(response)
            method, url, kwargs = _follow(method, response, target, kwargs)
        raise _redirect_loop(method, url)

    def _get_json(self, target: str, *, params: Mapping[str, Any] | None = None, accept: str = JSON) -> Any:
        return decode_json(self.request("GET", target, params=params, accept=accept))

    # ------------------------------------------------------------------ Part 1: discovery

    def get_landing_page(self) -> dict[str, Any]:
        """``GET /``: the landing page with links to the API's resources."""
        return _expect_object(self._get_json(""), "landing page")

    def get_conformance(self) -> list[str]:
        """``GET /conformance``: the URIs of the conformance classes the server implements."""
        body = _expect_object(self._get_json("conformance"), "conformance declaration")
        classes = body.get("conformsTo")
        if not isinstance(classes, list):
            raise OGCInvalidResponseError(
                "The conformance declaration has no 'conformsTo' list", title="Invalid conformance"
            )
        return [str(uri) for uri in classes]

    def get_api_definition(self) -> dict[str, Any]:
        """
        The server's OpenAPI document.

        Servers publish it in different places: the landing page's ``service-desc`` link
        (pygeoapi: ``/openapi``), ``/api`` (the standard's example), or ``/openapi.json`` (FastAPI
        servers such as wraptile). The first that answers with a JSON object wins.
        """
        landing = self.get_landing_page()
        links = Link.parse_list(landing.get("links"))
        described = find_link(links, ("service-desc",))
        candidates = ([described.href] if described else []) + ["api", "openapi.json", "openapi"]
        last_error: OGCProcessesAPIError | None = None
        for target in candidates:
            try:
                body = self._get_json(target, accept=OPENAPI_ACCEPT)
            except OGCProcessesAPIError as err:
                if err.http_status not in (404, 405, 406) and not isinstance(err, OGCInvalidResponseError):
                    raise
                last_error = err
                continue
            if isinstance(body, dict) and ("openapi" in body or "swagger" in body or "paths" in body):
                return body
        raise OGCInvalidResponseError(
            f"No OpenAPI document found at {', '.join(candidates)} below {self.base_url}"
            + (f" (last error: {last_error})" if last_error else ""),
            title="No API definition",
        )

    def list_processes(self, limit: int | None = None) -> list[dict[str, Any]]:
        """
        ``GET /processes``: summaries of every process, following ``next`` links.

        :param limit: page size to ask the server for (it may use its own).
        """
        params = {"limit": limit} if limit else None
        return list(self._paginate("processes", "processes", params))

    def get_process(self, process_id: str) -> dict[str, Any]:
        """``GET /processes/{processId}``: the process description (inputs, outputs, job control)."""
        return _expect_object(self._get_json(_process_path(process_id)), "process description")

    # ------------------------------------------------------------------ Part 1: execution and jobs

    def execute_process(
        self,
        process_id: str,
        inputs: Mapping[str, Any] | None,
        outputs: Mapping[str, Any] | None = None,
        response: str | None = None,
        mode: str = "async",
        subscriber: Mapping[str, str] | None = None,
        *,
        reconcile: bool = True,
    ) -> Execution:
        """
        ``POST /processes/{processId}/execution``: create a job.

        Asks for asynchronous execution with ``Prefer: respond-async`` (pygeoapi executes
        synchronously on any other value) and understands every answer servers give: 201 with a
        ``Location`` and an empty body (pygeoapi), 201 with a statusInfo and a ``monitor`` link
        (ZOO-Project-DRU), 201 with a statusInfo and no ``Location`` (wraptile), and 200 with the
        results (synchronous servers).

        **Failures and resubmission.** The request is sent at most ``max_retries + 1`` times:

        * When the server cannot have acted on it (the connection was never made; 429, 503, 408,
          425, or a 5xx with ``Retry-After``), it is sent again after the backoff or
          the ``Retry-After`` wait.
        * When it may have been acted on (500, 502, 504; a reset, a read timeout or a connection
          closed after the request was sent), the hook waits the same backoff (so a slow server can
          finish creating the job), then **reconciles**: it reads the whole job list
          (``GET /jobs?processID=...``, following ``next`` links; servers that ignore the filter
          are filtered here) and looks at the jobs of ``process_id`` that no submission of this
          process already owns, created since the request was first sent, in the server's time
          (bounds of its clock's offset come from the job list pages' ``Date`` headers, with
          a quarter second of slack; ``Date`` has a one-second resolution, so jobs
          created up to a second or two before the request count as created since). Exactly one
          created while the request was in flight (up to its failure) and none since: it is
          **adopted** (the response to the submission was lost) and returned. None at all: the
          request is sent again. Anything else (several; one created after the failure, which
          may be a slow server's or another client's; a job whose process or creation time the
          list does not give): no resend,
          :class:`~airflow_provider_ogc.exceptions.OGCAmbiguousSubmissionError` names them.
          No readable job list (404, 405, an error): no resend,
          :class:`~airflow_provider_ogc.exceptions.OGCSubmissionUncertainError` says the job may
          or may not exist and why.
        * Anything else (4xx, an invalid answer) is raised at once.

        The rules are :mod:`airflow_provider_ogc.retry`'s; the protocol and its limits (a job list
        does not say who submitted a job) are :mod:`airflow_provider_ogc.submission`'s.

        :param process_id: the process to run.
        :param inputs: the execute request's ``inputs``.
        :param outputs: the execute request's ``outputs`` selection, if any.
        :param response: ``document`` or ``raw`` (OGC 1.0 servers), if any.
        :param mode: ``async`` (ask for a job), ``sync`` (ask for the results) or ``auto`` (no preference).
        :param subscriber: callback URLs (``successUri``, ``failedUri``, ``inProgressUri``).
        :param reconcile: reconcile with the job list after an ambiguous failure (the default);
            ``False`` raises that failure as it is, without resending.
        :return: the job (``job_id``, ``job_url``, ``status``) or the synchronous results. An
            adopted job comes back as an asynchronous job with the status the job list gave.
        :raises OGCAmbiguousSubmissionError: several jobs may be this submission's.
        :raises OGCSubmissionUncertainError: the job list could not be read to tell.
        """
        if mode not in EXECUTION_MODES:
            raise ValueError(f"mode must be one of {', '.join(EXECUTION_MODES)}, got {mode!r}")
        body: dict[str, Any] = {"inputs": dict(inputs or {})}
        if outputs is not None:
            body["outputs"] = dict(outputs)
        if response is not None:
            body["response"] = response
        if subscriber is not None:
            body["subscriber"] = dict(subscriber)
        headers = (
            {"Prefer": "respond-async"} if mode == "async" else {"Prefer": "wait"} if mode == "sync" else {}
        )
        path = f"{_process_path(process_id)}/execution"
        kwargs = _request_kwargs(None, body, None, headers, JSON)
        execution = submission.submit(self, process_id, self._target(path), kwargs, reconcile_lost=reconcile)
        if execution.job_id:
            self.log.info("Submitted %s: job %s (%s)", process_id, execution.job_id, execution.job_url)
        return execution

    def _parse_execution(self, reply: httpx.Response) -> Execution:
        body = decode_json(reply)
        location = reply.headers.get("location")
        location = str(reply.url.join(location)) if location else None
        if looks_like_status_info(body):
            provisional = StatusInfo.from_dict(body)
            link = find_link(provisional.links, STATUS_LINK_RELS)
            job_url = self._job_url(provisional.job_id, link.href if link else location)
            status = StatusInfo.from_dict(body, job_url=job_url)
            return Execution(job_id=status.job_id, job_url=job_url, status=status)
        if reply.status_code in (201, 202):
            if not location:
                raise OGCInvalidResponseError(
                    f"The server accepted the execute request (HTTP {reply.status_code}) but gave "
                    "neither a Location header nor a statusInfo with a job id",
                    http_status=reply.status_code,
                    title="No job id",
                    method="POST",
                    url=str(reply.request.url),
                )
            job_id = job_id_from_url(location)
            job_url = self._job_url(job_id, location)
            status = StatusInfo(job_id=job_id, status=JobStatus.ACCEPTED, job_url=job_url)
            return Execution(job_id=job_id, job_url=job_url, status=status)
        # 200 (or 204): the server ran the process synchronously and answered with its results.
        if not location:
            return Execution(job_id=None, job_url=None, status=None, results=body, synchronous=True)
        sync_id = job_id_from_url(location)
        sync_url = self._job_url(sync_id, location)
        done = StatusInfo(job_id=sync_id, status=JobStatus.SUCCESSFUL, job_url=sync_url)
        return Execution(job_id=sync_id, job_url=sync_url, status=done, results=body, synchronous=True)

    def _job_url(self, job_id: str, advertised: str | None) -> str:
        """The job's status URL: the server's own link if it is on our origin, else the canonical one."""
        canonical = self.settings.url(_job_path(job_id))
        if advertised and origin_of(advertised) == self.settings.origin:
            return advertised
        if advertised:
            self.log.info("The server advertised job URL %s on another host; using %s", advertised, canonical)
        return canonical

    def get_job_status(self, job_id: str) -> StatusInfo:
        """``GET /jobs/{jobId}``: the job's statusInfo."""
        url = self.settings.url(_job_path(job_id))
        return StatusInfo.from_dict(self._get_json(url), job_url=url, job_id=job_id)

    def get_job_results(self, job_id: str) -> Any:
        """``GET /jobs/{jobId}/results``: the results document, asked for as JSON."""
        return self._get_json(f"{_job_path(job_id)}/results")

    def list_jobs(
        self,
        process_id: str | list[str] | None = None,
        status: str | JobStatus | list[str | JobStatus] | None = None,
        limit: int | None = None,
        **params: Any,
    ) -> list[StatusInfo]:
        """
        ``GET /jobs``: jobs known to the server, following ``next`` links.

        :param process_id: only jobs of this process (or these processes).
        :param status: only jobs in this status (or these statuses).
        :param limit: page size to ask the server for.
        :param params: further query parameters (``type``, ``datetime``, ...).
        """
        query: dict[str, Any] = dict(params)
        if process_id:
            query["processID"] = process_id
        if status:
            values = status if isinstance(status, list) else [status]
            query["status"] = [JobStatus(s).value if isinstance(s, JobStatus) else s for s in values]
        if limit:
            query["limit"] = limit
        jobs = []
        for raw in self._paginate("jobs", "jobs", query or None):
            job_id = job_id_of(raw)
            url = self.settings.url(_job_path(job_id)) if job_id is not None else None
            jobs.append(StatusInfo.from_dict(raw, job_url=url))
        return jobs

    def dismiss_job(self, job_id: str) -> StatusInfo | None:
        """
        ``DELETE /jobs/{jobId}``: cancel a running job, or delete a finished one and its results.

        :return: the statusInfo the server answered with, if it sent one.
        """
        body = decode_json(self.request("DELETE", _job_path(job_id)))
        url = self.settings.url(_job_path(job_id))
        return (
            StatusInfo.from_dict(body, job_url=url, job_id=job_id) if looks_like_status_info(body) else None
        )

    async def aget_job_status(self, job_id: str) -> StatusInfo:
        """Async :meth:`get_job_status`."""
        settings = await self.asettings()
        url = settings.url(_job_path(job_id))
        body = decode_json(await self.arequest("GET", url))
        return StatusInfo.from_dict(body, job_url=url, job_id=job_id)

    async def aget_job_results(self, job_id: str) -> Any:
        """Async :meth:`get_job_results`."""
        return decode_json(await self.arequest("GET", f"{_job_path(job_id)}/results"))

    async def adismiss_job(self, job_id: str) -> StatusInfo | None:
        """Async :meth:`dismiss_job`."""
        settings = await self.asettings()
        body = decode_json(await self.arequest("DELETE", _job_path(job_id)))
        url = settings.url(_job_path(job_id))
        return (
            StatusInfo.from_dict(body, job_url=url, job_id=job_id) if looks_like_status_info(body) else None
        )

    # ------------------------------------------------------------------ Part 2: deploy, replace, undeploy

    def deploy_process(
        self,
        package: Mapping[str, Any] | str | bytes | PathLike[str],
        content_type: str | None = None,
        workflow_id: str | None = None,
    ) -> DeployedProcess:
        """
        ``POST /processes``: deploy an application package as a new process (Part 2).

        :param package: a CWL document or OGC application package, as a dict, a YAML/JSON
            string or bytes, or a path to a file.
        :param content_type: ``application/cwl+yaml``, ``application/cwl+json`` or
            ``application/ogcapppkg+json``; inferred from the package when omitted.
        :param workflow_id: the ``w`` query parameter: which workflow of a multi-workflow CWL to deploy.
        """
        body, media_type = encode_package(package, content_type)
        params = {"w": workflow_id} if workflow_id else None
        reply = self.request(
            "POST", "processes", content=body, params=params, headers={"Content-Type": media_type}
        )
        return _parse_deployment(reply, fallback_id=workflow_id)

    def replace_process(
        self,
        process_id: str,
        package: Mapping[str, Any] | str | bytes | PathLike[str],
        content_type: str | None = None,
    ) -> DeployedProcess:
        """``PUT /processes/{processId}``: replace a deployed process with a new package (Part 2)."""
        body, media_type = encode_package(package, content_type)
        reply = self.request(
            "PUT", _process_path(process_id), content=body, headers={"Content-Type": media_type}
        )
        return _parse_deployment(reply, fallback_id=process_id)

    def undeploy_process(self, process_id: str) -> None:
        """``DELETE /processes/{processId}``: remove a deployed process (Part 2)."""
        self.request("DELETE", _process_path(process_id))

    def get_process_package(self, process_id: str, media_type: str | None = None) -> ApplicationPackage:
        """
        ``GET /processes/{processId}/package``: the application package of a deployed process.

        :param process_id: the deployed process.
        :param media_type: the representation to ask for (e.g. ``application/cwl+yaml``); by
            default the server's own, usually the one the package was deployed with.
        """
        reply = self.request("GET", f"{_process_path(process_id)}/package", accept=media_type or "*/*")
        content_type = reply.headers.get("content-type", "").split(";")[0].strip()
        content: Any = reply.text
        if "json" in content_type:
            content = decode_json(reply)
        return ApplicationPackage(content_type=content_type or "application/octet-stream", content=content)

    # ------------------------------------------------------------------ helpers

    def _paginate(
        self,
        path: str,
        key: str,
        params: Mapping[str, Any] | None,
        *,
        max_pages: int = MAX_PAGES,
        replies: list[tuple[httpx.Response, float]] | None = None,
    ) -> Iterator[Any]:
        """
        Items of a paged list, following ``next`` links.

        :param max_pages: pages to read at most; with ``replies`` given, a list longer than that
            raises instead of being cut short.
        :param replies: collects each page's response and its arrival time (epoch seconds).
        """
        target: str | None = path
        seen: set[str] = set()
        for _ in range(max_pages):
            if target is None:
                return
            reply = self.request("GET", target, params=params)
            if replies is not None:
                replies.append((reply, time.time()))
            body = _expect_object(decode_json(reply), f"{key} list")
            items = body.get(key)
            if not isinstance(items, list):
                raise OGCInvalidResponseError(
                    f"The {key} list from {reply.request.url} has no '{key}' array", title="Invalid list"
                )
            yield from items
            seen.add(str(reply.request.url))
            next_link = find_link(Link.parse_list(body.get("links")), ("next",))
            target = str(reply.url.join(next_link.href)) if next_link else None
            if target in seen or not items:
                return
            params = None  # the next link carries the query
        if target is not None and replies is not None:
            raise OGCInvalidResponseError(
                f"The {key} list has more than {max_pages} pages; stopped at {target}",
                title="List too long",
            )

    def test_connection(self) -> tuple[bool, str]:
        """Read the landing page and conformance; say what the server supports."""
        try:
            landing = self.get_landing_page()
            classes = self.get_conformance()
        except (OGCProcessesError, httpx.HTTPError, ValueError) as err:
            return False, f"Cannot use {self._safe_base_url()}: {err}"
        supported = sorted(
            {
                CAPABILITIES[c]
                for c in (uri.rstrip("/").rsplit("/", 1)[-1] for uri in classes)
                if c in CAPABILITIES
            }
        )
        title = landing.get("title") or "OGC API - Processes"
        if not any("ogcapi-processes" in uri for uri in classes):
            return False, f"{title} at {self.base_url} does not declare OGC API - Processes conformance"
        return True, f"Connected to {title} at {self.base_url}; supports: {', '.join(supported) or 'core'}"

    def _safe_base_url(self) -> str:
        try:
            return self.base_url
        except Exception:
            return f"connection {self.ogc_conn_id!r}"


# ---------------------------------------------------------------------- module helpers


def _redirect_loop(method: str, url: str) -> OGCInvalidResponseError:
    # The same request would loop again: an unusable answer, not a transient failure.
    return OGCInvalidResponseError(
        f"Too many redirects ({MAX_REDIRECTS + 1}) from {method} {url} (a redirect loop?)",
        title="Redirect loop",
        method=method,
        url=url,
    )


async def aclose_shared_clients() -> None:
    """Close the async clients of the running event loop (for short-lived loops, e.g. on a worker)."""
    clients = _ASYNC_CLIENTS.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()


def _default_headers() -> dict[str, str]:
    """Headers on every request; a request's own ``Accept`` replaces the JSON default."""
    return {"User-Agent": f"airflow-provider-ogc/{__version__}", "Accept": JSON}


def _request_kwargs(
    params: Mapping[str, Any] | None,
    json_body: Any,
    content: bytes | None,
    headers: Mapping[str, str] | None,
    accept: str,
) -> dict[str, Any]:
    # Only what differs from the client's default headers: a poll then sends no headers of its own.
    own_headers = {"Accept": accept} if accept != JSON else {}
    kwargs: dict[str, Any] = {"headers": {**own_headers, **(headers or {})}}
    if params:
        kwargs["params"] = {k: v for k, v in params.items() if v is not None}
    if json_body is not None:
        kwargs["content"] = json.dumps(json_body).encode()
        kwargs["headers"].setdefault("Content-Type", JSON)
    elif content is not None:
        kwargs["content"] = content
    return kwargs


def _follow(
    method: str, response: Reply, target: httpx.URL, kwargs: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    new_method = redirected_method(method, response.status_code)
    if new_method != method:
        kwargs = {k: v for k, v in kwargs.items() if k != "content"}
        kwargs["headers"] = {k: v for k, v in kwargs["headers"].items() if k.lower() != "content-type"}
    return new_method, str(target), {**kwargs, "params": None}


def _raise_for_status(response: R) -> R:
    if response.status_code >= 400:
        raise error_from_response(response)
    return response


def _query_pairs(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query parameters as httpx encodes them: a list repeats its key, booleans are lower case."""
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            text = "true" if item is True else "false" if item is False else "" if item is None else str(item)
            pairs.append((str(key), text))
    return pairs


def _expect_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OGCInvalidResponseError(
            f"Expected the {what} as a JSON object, got {type(body).__name__}", title=f"Invalid {what}"
        )
    return body


def _segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value.strip(), safe="")


def _process_path(process_id: str) -> str:
    return f"processes/{_segment(process_id, 'process_id')}"


def _job_path(job_id: str) -> str:
    return f"jobs/{_segment(job_id, 'job_id')}"


def job_id_from_url(url: str) -> str:
    """The job id in a job URL such as ``.../jobs/{jobId}`` (query and trailing slash ignored)."""
    path = httpx.URL(url).path.rstrip("/")
    path = path.rsplit("/jobs/", 1)[1].split("/", 1)[0] if "/jobs/" in path else path.rsplit("/", 1)[-1]
    if not path:
        raise OGCInvalidResponseError(f"Cannot find a job id in {url!r}", title="No job id")
    return unquote(path)


def _parse_deployment(reply: httpx.Response, fallback_id: str | None) -> DeployedProcess:
    body = decode_json(reply) if reply.content else None
    location = reply.headers.get("location")
    location = str(reply.url.join(location)) if location else None
    summary = body if isinstance(body, dict) else None
    process_id: Any = None
    if summary:
        inner = summary.get("processSummary") or summary.get("processDescription") or summary
        process_id = inner.get("id") if isinstance(inner, dict) else None
    if not process_id and location:
        process_id = unquote(httpx.URL(location).path.rstrip("/").rsplit("/", 1)[-1])
    process_id = process_id or fallback_id
    if not process_id:
        raise OGCInvalidResponseError(
            "The server deployed the package but named no process id (no body id, no Location)",
            http_status=reply.status_code,
            title="No process id",
        )
    return DeployedProcess(process_id=str(process_id), location=location, summary=summary)
