"""HTTP plumbing shared by the sync and async halves of :class:`OGCProcessesHook`.

Kept apart from the hook so the request/response rules (connection settings, credentials per
origin, error parsing, redirects) are written once and used by both the sync side (``httpx.Client``)
and the async side (``aiohttp.ClientSession``, whose answers come as :class:`AsyncReply`). Whether
to retry is :mod:`airflow_provider_ogc.retry`'s to say.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from airflow_provider_ogc.exceptions import (
    OGCConnectionConfigError,
    OGCInvalidResponseError,
    OGCProcessesAPIError,
)
from airflow_provider_ogc.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping

    from airflow.sdk import Connection

JSON = "application/json"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
AUTH_TYPES = ("none", "basic", "bearer", "api_key")
EXCERPT_CHARS = 200
# Headers whose values must never show up in logs.
SENSITIVE_HEADER = re.compile(r"(?i)auth|token|key|secret|cookie|session|password")


def origin_of(url: str | httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports made explicit, so equal origins compare equal."""
    parsed = httpx.URL(str(url))
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host.lower(), port


@dataclass(frozen=True)
class ConnectionSettings:
    """
    Everything the hook needs from an Airflow connection, validated once.

    :param base_url: the API root (landing page URL) without a trailing slash.
    :param auth_type: ``none``, ``basic``, ``bearer`` or ``api_key``.
    :param login: username for basic auth.
    :param secret: password, bearer token or API key (masked in logs by Airflow).
    :param api_key_header: header carrying the API key.
    :param headers: extra headers, sent only to the API's own origin.
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param timeout: read/write timeout in seconds.
    :param connect_timeout: connect timeout in seconds.
    :param max_retries: retries of a request on transient failures (for an execute request: how
        many times it may be sent again, see ``OGCProcessesHook.execute_process``).
    :param retry_wait_min: the first wait between retries, in seconds (doubled each time).
    :param retry_wait_max: upper bound of one wait between retries, in seconds.
    :param max_connections: connections (and requests in flight) of the async pool that a
        triggerer process shares per server.
    """

    base_url: str
    auth_type: str = "none"
    login: str | None = None
    secret: str | None = field(default=None, repr=False)
    api_key_header: str = "X-API-Key"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    verify: bool | str = True
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_retries: int = 3
    retry_wait_min: float = 1.0
    retry_wait_max: float = 30.0
    max_connections: int = 10

    @classmethod
    def from_connection(cls, conn: Connection) -> ConnectionSettings:
        """Build settings from an Airflow connection; errors name the field at fault."""
        extra = conn.extra_dejson or {}
        conn_id = conn.conn_id
        host = (conn.host or "").strip()
        if not host:
            raise OGCConnectionConfigError(
                f"Connection {conn_id!r} has no host: set it to the API root URL, "
                "e.g. https://processing.example.org/acme/ogc-api"
            )
        if "://" not in host:
            scheme = str(extra.get("scheme") or "https")
            path = f"/{conn.schema.strip('/')}" if conn.schema else ""
            host = f"{scheme}://{host}{path}"
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OGCConnectionConfigError(
                f"Connection {conn_id!r}: host {host!r} is not an http(s) URL of the API root"
            )
        if parts.username is not None or parts.password is not None:
            # They would travel on in job URLs, XCom and logs; the Login/Password fields are masked.
            raise OGCConnectionConfigError(
                f"Connection {conn_id!r}: the host URL holds credentials (user:password@); put them "
                "in the Login and Password fields, which Airflow masks in logs"
            )
        netloc = parts.netloc
        if conn.port and parts.port is None:
            netloc = f"{netloc}:{conn.port}"
        base_url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

        login = conn.login or None
        secret = conn.password or None
        auth_type = str(extra.get("auth_type") or "").strip().lower()
        if not auth_type:
            # Infer the obvious cases so a URI like https://user:pw@host works as expected.
            auth_type = "basic" if login and secret else "bearer" if secret else "none"
        if auth_type not in AUTH_TYPES:
            raise OGCConnectionConfigError(
                f"Connection {conn_id!r}: auth_type {auth_type!r} is not one of {', '.join(AUTH_TYPES)}"
            )
        if auth_type != "none" and not secret:
            raise OGCConnectionConfigError(
                f"Connection {conn_id!r}: auth_type {auth_type!r} needs the Password field "
                "(password, token or API key)"
            )
        if auth_type == "basic" and not login:
            raise OGCConnectionConfigError(f"Connection {conn_id!r}: basic auth needs a Login")

        return cls(
            base_url=base_url,
            auth_type=auth_type,
            login=login,
            secret=secret,
            api_key_header=str(extra.get("api_key_header") or "X-API-Key"),
            headers=_parse_headers(extra.get("extra_headers", extra.get("headers")), conn_id),
            verify=_parse_verify(extra, conn_id),
            timeout=_positive_number(extra, "timeout", 30.0, conn_id),
            connect_timeout=_positive_number(extra, "connect_timeout", 10.0, conn_id),
            max_retries=int(_positive_number(extra, "max_retries", 3, conn_id, allow_zero=True)),
            retry_wait_min=_positive_number(extra, "retry_wait_min", 1.0, conn_id, allow_zero=True),
            retry_wait_max=_positive_number(extra, "retry_wait_max", 30.0, conn_id, allow_zero=True),
            max_connections=int(_positive_number(extra, "max_connections", 10, conn_id)),
        )

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return origin_of(self.base_url)

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` below the API root (``""`` is the landing page)."""
        return f"{self.base_url}/{path.lstrip('/')}" if path else f"{self.base_url}/"

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.retry_wait_min, self.retry_wait_max)

    def httpx_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    def ssl_context(self) -> ssl.SSLContext:
        """The async side's TLS context, trusting what httpx trusts for the same ``verify``."""
        return ssl_context(self.verify)

    def auth(self) -> OriginBoundAuth:
        credentials: dict[str, str] = dict(self.headers)
        if self.auth_type == "basic":
            token = base64.b64encode(f"{self.login}:{self.secret}".encode()).decode()
            credentials["Authorization"] = f"Basic {token}"
        elif self.auth_type == "bearer":
            credentials["Authorization"] = f"Bearer {self.secret}"
        elif self.auth_type == "api_key":
            credentials[self.api_key_header] = self.secret or ""
        return OriginBoundAuth(self.origin, credentials)

    def fingerprint(self) -> tuple[Any, ...]:
        """Identity of the settings, to share one async connection pool per distinct configuration."""
        return (
            self.base_url,
            self.auth_type,
            self.login,
            self.secret,
            self.api_key_header,
            tuple(sorted(self.headers.items())),
            self.verify,
            self.timeout,
            self.connect_timeout,
            self.max_connections,
        )


def load_settings(conn: Connection) -> ConnectionSettings:
    """A connection's settings, with every secret in them registered with Airflow's log masker."""
    from airflow.sdk.log import mask_secret

    settings = ConnectionSettings.from_connection(conn)
    if settings.secret:
        mask_secret(settings.secret)
    if settings.auth_type == "basic" and settings.secret:
        # The header carries base64(login:password), which the masker cannot derive by itself.
        mask_secret(base64.b64encode(f"{settings.login}:{settings.secret}".encode()).decode())
    for name, value in settings.headers.items():
        if SENSITIVE_HEADER.search(name):
            mask_secret(value)
    return settings


class OriginBoundAuth(httpx.Auth):
    """
    Adds credentials (auth header, API key, extra headers) only to requests for one origin.

    Links in OGC documents (``monitor``, ``next``, results, redirects) may point anywhere;
    requests to another scheme/host/port go out without any of these headers.
    """

    def __init__(self, origin: tuple[str, str, int | None], headers: Mapping[str, str]) -> None:
        self._origin = origin
        self._headers = dict(headers)

    @property
    def headers(self) -> dict[str, str]:
        """The credential headers (the async side adds them itself, to the same origin only)."""
        return dict(self._headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin_of(request.url) == self._origin:
            request.headers.update(self._headers)
        yield request


def _parse_headers(raw: Any, conn_id: str) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as err:
            raise OGCConnectionConfigError(
                f"Connection {conn_id!r}: extra_headers is not a JSON object: {err}"
            ) from None
    if not isinstance(raw, dict):
        raise OGCConnectionConfigError(f"Connection {conn_id!r}: extra_headers must be a JSON object")
    return {str(k): str(v) for k, v in raw.items()}


def _parse_verify(extra: Mapping[str, Any], conn_id: str) -> bool | str:
    if extra.get("ca_bundle"):
        return str(extra["ca_bundle"])
    try:
        return tls_verify_option(extra.get("verify"))
    except ValueError as err:
        raise OGCConnectionConfigError(f"Connection {conn_id!r}: {err}") from None


def tls_verify_option(value: Any) -> bool | str:
    """
    A connection's ``verify`` extra: TLS verification on or off, or a CA bundle path.

    Connection forms give strings, and a client would take ``"false"`` for a (missing) CA bundle
    file: boolean words become booleans; no value keeps verification on.

    :param value: the extra's value.
    :raises ValueError: a value that is neither a boolean nor a path.
    """
    if value is None or isinstance(value, bool):
        return value is not False  # null keeps the default: verification on
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("", "true", "1", "yes"):
            return True
        if word in ("false", "0", "no"):
            return False
        return value.strip()
    raise ValueError(f"verify must be a boolean or a CA bundle path, got {value!r}")


def _positive_number(
    extra: Mapping[str, Any], key: str, default: float, conn_id: str, *, allow_zero: bool = False
) -> float:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OGCConnectionConfigError(
            f"Connection {conn_id!r}: {key} must be a number, got {value!r}"
        ) from None
    if number < 0 or (number == 0 and not allow_zero):
        raise OGCConnectionConfigError(f"Connection {conn_id!r}: {key} must be positive, got {value!r}")
    return number


def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """
    A TLS context with httpx's trust for ``verify`` (``httpx.create_ssl_context``, written out
    because httpx 0.28 deprecates a CA bundle path there).

    ``True``: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` from the environment, else certifi's bundle (not
    the system store: the sync side trusts certifi's, both sides must trust the same); ``False``:
    no verification; a path: that CA bundle file (or directory).
    """
    if verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class SentRequest(Protocol):
    """What error messages say of the request: its method and URL."""

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> httpx.URL: ...


class Reply(Protocol):
    """What the error parsing, JSON decoding and redirects read of an answer (``httpx.Response`` or
    :class:`AsyncReply`)."""

    @property
    def status_code(self) -> int: ...

    @property
    def reason_phrase(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...

    @property
    def url(self) -> httpx.URL: ...

    @property
    def request(self) -> SentRequest: ...

    def json(self) -> Any: ...


_CHARSET = re.compile(r"(?i)charset=[\"']?([\w.:-]+)")


class AsyncReply:
    """
    An answer of the async side (aiohttp), read whole: status, headers and body, plus the
    request's method and URL (``request`` is the reply itself), as :class:`Reply` asks.

    The URL stays aiohttp's (yarl) until a redirect or an error message asks for it, so a status
    poll parses no URL of its own.
    """

    __slots__ = ("_url", "content", "headers", "method", "reason_phrase", "status_code")

    def __init__(
        self,
        method: str,
        url: Any,
        status_code: int,
        reason: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> None:
        self.method = method
        self._url = url
        self.status_code = status_code
        self.reason_phrase = reason or ""
        self.headers = headers
        self.content = body

    @property
    def url(self) -> httpx.URL:
        return httpx.URL(str(self._url))

    @property
    def request(self) -> AsyncReply:
        return self

    @property
    def text(self) -> str:
        """The body as text: the Content-Type's charset, else UTF-8 (as httpx), bad bytes replaced."""
        found = _CHARSET.search(self.headers.get("content-type", ""))
        try:
            return self.content.decode(found.group(1) if found else "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


def retry_after_seconds(response: Reply, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After`` (delta-seconds or HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line excerpt of a body: HTML tags dropped, whitespace folded."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_request(response: Reply) -> str:
    return f"{response.request.method} {response.request.url}"


def error_from_response(response: Reply) -> OGCProcessesAPIError:
    """Turn an error response (OGC exception, RFC 7807, a server's own shape or HTML) into one error."""
    status = response.status_code
    reason = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    where = describe_request(response)
    retry_after = retry_after_seconds(response)
    body: Any = None
    with contextlib.suppress(ValueError):
        body = response.json()
    kind = title = detail = None
    if isinstance(body, dict):
        # OGC exception / RFC 7807: type, title, status, detail; ZOO and older pygeoapi: code, description;
        # FastAPI: detail (str or list of validation errors).
        kind = _str_or_none(body.get("type") or body.get("code"))
        title = _str_or_none(body.get("title"))
        raw_detail = body.get("detail", body.get("description"))
        detail = raw_detail if isinstance(raw_detail, str) or raw_detail is None else json.dumps(raw_detail)
    if body is None:
        content_type = response.headers.get("content-type", "unknown content type")
        snippet = excerpt(response.text) if response.content else "(empty body)"
        return OGCProcessesAPIError(
            f"HTTP {status} {reason} from {where} ({content_type}): {snippet}",
            http_status=status,
            title=reason,
            detail=snippet,
            method=response.request.method,
            url=str(response.request.url),
            retry_after=retry_after,
        )
    summary = " — ".join(part for part in (title, detail) if part) or excerpt(response.text)
    type_note = f" [{kind}]" if kind else ""
    return OGCProcessesAPIError(
        f"HTTP {status} {reason} from {where}{type_note}: {summary}",
        http_status=status,
        type=kind,
        title=title or reason,
        detail=detail,
        method=response.request.method,
        url=str(response.request.url),
        retry_after=retry_after,
    )


def decode_json(response: Reply) -> Any:
    """The JSON body of a successful response, or a clear error naming what came instead."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        content_type = response.headers.get("content-type", "no content type")
        raise OGCInvalidResponseError(
            f"Expected JSON from {describe_request(response)} (HTTP {response.status_code}), "
            f"got {content_type}: {excerpt(response.text)}",
            http_status=response.status_code,
            title="Invalid JSON response",
            detail=excerpt(response.text),
            method=response.request.method,
            url=str(response.request.url),
        ) from None


def redirect_target(response: Reply) -> httpx.URL | None:
    if response.status_code not in REDIRECT_STATUSES or "location" not in response.headers:
        return None
    return response.url.join(response.headers["location"])


def redirected_method(method: str, status: int) -> str:
    """RFC 9110 redirect semantics: 303 becomes GET; 301/302 turn POST into GET, as browsers do."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
