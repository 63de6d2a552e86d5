"""The one retry policy, table-driven: every httpx exception class and the HTTP statuses that matter,
for a GET and for an execute POST, through ``RetryPolicy.decide`` (what the hook and the submission
do) and ``is_transient`` (what the trigger does)."""

from __future__ import annotations

import inspect
import ssl

import httpx
import pytest

from airflow_provider_ogc.exceptions import (
    OGCAmbiguousSubmissionError,
    OGCConnectionConfigError,
    OGCInvalidResponseError,
    OGCProcessesAPIError,
    OGCSubmissionUncertainError,
)
from airflow_provider_ogc.retry import Action, Failure, RetryPolicy, classify, is_transient

RETRY, RECONCILE, FAIL = Action.RETRY, Action.RECONCILE, Action.FAIL
REQUEST = httpx.Request("GET", "http://127.0.0.1/jobs/j1")

# Every exception class httpx exports, with what a GET and an execute POST do after it.
HTTPX_ERRORS: dict[str, tuple[Action, Action]] = {
    # The connection was never made: nothing reached the server.
    "ConnectError": (RETRY, RETRY),
    "ConnectTimeout": (RETRY, RETRY),
    "PoolTimeout": (RETRY, RETRY),
    # The connection was made: the request may have been acted on.
    "ReadTimeout": (RETRY, RECONCILE),
    "WriteTimeout": (RETRY, RECONCILE),
    "ReadError": (RETRY, RECONCILE),
    "WriteError": (RETRY, RECONCILE),
    "CloseError": (RETRY, RECONCILE),
    "RemoteProtocolError": (RETRY, RECONCILE),
    "ProxyError": (RETRY, RECONCILE),
    "NetworkError": (RETRY, RECONCILE),
    "TimeoutException": (RETRY, RECONCILE),
    "ProtocolError": (RETRY, RECONCILE),
    "TransportError": (RETRY, RECONCILE),
    # The client could not form the request: nothing was sent and nothing will change.
    "LocalProtocolError": (FAIL, FAIL),
    "UnsupportedProtocol": (FAIL, FAIL),
    # Not transport failures: a retry meets the same.
    "DecodingError": (FAIL, FAIL),
    "TooManyRedirects": (FAIL, FAIL),
    "RequestError": (FAIL, FAIL),
    "HTTPError": (FAIL, FAIL),
    "HTTPStatusError": (FAIL, FAIL),
    "InvalidURL": (FAIL, FAIL),
    "CookieConflict": (FAIL, FAIL),
    "StreamError": (FAIL, FAIL),
    "StreamConsumed": (FAIL, FAIL),
    "StreamClosed": (FAIL, FAIL),
    "RequestNotRead": (FAIL, FAIL),
    "ResponseNotRead": (FAIL, FAIL),
}

# HTTP statuses (error answers), with what a GET and an execute POST do after them.
STATUSES: dict[int, tuple[Action, Action]] = {
    400: (FAIL, FAIL),
    401: (FAIL, FAIL),
    403: (FAIL, FAIL),
    404: (FAIL, FAIL),
    405: (FAIL, FAIL),
    409: (FAIL, FAIL),
    410: (FAIL, FAIL),
    415: (FAIL, FAIL),
    422: (FAIL, FAIL),
    408: (RETRY, RETRY),  # the request never fully arrived
    425: (RETRY, RETRY),
    429: (RETRY, RETRY),
    503: (RETRY, RETRY),  # unavailable: not acted on
    500: (RETRY, RECONCILE),  # may have been acted on
    502: (RETRY, RECONCILE),
    504: (RETRY, RECONCILE),
    501: (FAIL, FAIL),
    505: (FAIL, FAIL),
}


def make_httpx_error(name: str) -> Exception:
    cls = getattr(httpx, name)
    if name == "HTTPStatusError":
        return cls("boom", request=REQUEST, response=httpx.Response(500, request=REQUEST))
    if name in ("StreamError", "StreamConsumed", "StreamClosed", "RequestNotRead", "ResponseNotRead"):
        return cls() if not inspect.signature(cls).parameters else cls("boom")
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=REQUEST)
    return cls("boom")


def api_error(status: int, retry_after: float | None = None) -> OGCProcessesAPIError:
    return OGCProcessesAPIError(f"HTTP {status}", http_status=status, retry_after=retry_after)


def test_the_table_covers_every_httpx_exception_class() -> None:
    exported = {
        name
        for name in dir(httpx)
        if inspect.isclass(getattr(httpx, name)) and issubclass(getattr(httpx, name), Exception)
    }
    assert exported == set(HTTPX_ERRORS)


@pytest.mark.parametrize("name", sorted(HTTPX_ERRORS))
def test_each_httpx_error_for_get_and_for_execute(name: str) -> None:
    assert_decisions(make_httpx_error(name), *HTTPX_ERRORS[name])


def assert_decisions(error: BaseException, on_get: Action, on_post: Action) -> None:
    """What the policy decides for ``error`` on a GET and on an execute POST."""
    policy = RetryPolicy(max_retries=3, wait_min=0.5, wait_max=4)
    assert policy.decide("GET", error, 1).action is on_get
    assert policy.decide("POST", error, 1).action is on_post
    # The trigger keeps watching after exactly the failures a GET retries.
    assert is_transient(error) is (on_get is RETRY)


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_each_status_for_get_and_for_execute(status: int) -> None:
    policy = RetryPolicy()
    on_get, on_post = STATUSES[status]
    assert policy.decide("GET", api_error(status), 1).action is on_get
    assert policy.decide("DELETE", api_error(status), 1).action is on_get
    assert policy.decide("PUT", api_error(status), 1).action is on_get
    assert policy.decide("POST", api_error(status), 1).action is on_post
    assert is_transient(api_error(status)) is (on_get is RETRY)
    # A task fails without retries exactly on the client errors.
    assert api_error(status).permanent is (400 <= status < 500 and on_get is FAIL)


@pytest.mark.parametrize("status", [500, 501, 502, 504])
def test_a_5xx_with_retry_after_is_an_explicit_not_now(status: int) -> None:
    error = api_error(status, retry_after=7)
    assert classify(error) is Failure.NOT_ACTED
    decision = RetryPolicy().decide("POST", error, 1)
    assert (decision.action, decision.delay) == (RETRY, 7.0)


def test_retry_after_is_honoured_up_to_its_cap() -> None:
    policy = RetryPolicy(wait_min=1, wait_max=2)
    assert policy.decide("GET", api_error(429, retry_after=42), 1).delay == 42.0
    assert policy.decide("GET", api_error(429, retry_after=86400), 1).delay == 300.0


def test_backoff_doubles_with_jitter_and_stays_under_the_ceiling() -> None:
    policy = RetryPolicy(max_retries=10, wait_min=1, wait_max=5)
    error = httpx.ConnectError("refused")
    for attempt, base in [(1, 1), (2, 2), (3, 4)]:
        delays = [policy.decide("GET", error, attempt).delay for _ in range(50)]
        assert all(base <= d <= base + 1 for d in delays), (attempt, delays)
        assert max(delays) > min(delays)  # jitter: retries of many clients do not line up
    assert policy.decide("GET", error, 9).delay == 5
    assert policy.delay(error, 10_000) == 5  # no overflow


def test_attempts_are_bounded_but_an_ambiguous_post_is_always_reconciled() -> None:
    policy = RetryPolicy(max_retries=2)
    reset = httpx.ReadError("reset")
    assert [policy.decide("GET", reset, n).action for n in (1, 2, 3)] == [RETRY, RETRY, FAIL]
    assert [policy.decide("POST", httpx.ConnectError("x"), n).action for n in (1, 2, 3)] == [
        RETRY,
        RETRY,
        FAIL,
    ]
    # Whether a job exists must be known before giving up, even on the last attempt.
    assert policy.decide("POST", reset, 3).action is RECONCILE
    assert RetryPolicy(max_retries=0).decide("GET", reset, 1).action is FAIL


def test_a_failed_certificate_check_is_never_retried() -> None:
    error = httpx.ConnectError("certificate verify failed")
    error.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
    assert classify(error) is Failure.PERMANENT
    assert RetryPolicy().decide("GET", error, 1).action is FAIL


@pytest.mark.parametrize(
    "error",
    [
        OGCInvalidResponseError("HTML instead of JSON", http_status=200),
        OGCInvalidResponseError("redirect loop"),
        OGCSubmissionUncertainError("cannot tell", process_id="p"),
        OGCAmbiguousSubmissionError("two candidates", process_id="p"),
        OGCConnectionConfigError("no host"),
        OGCProcessesAPIError("no status"),
        ValueError("not a request failure"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_provider_errors_and_others_are_permanent_for_requests(error: Exception) -> None:
    assert classify(error) is Failure.PERMANENT
    assert RetryPolicy().decide("GET", error, 1).action is FAIL
    assert not is_transient(error)


# Every exception class aiohttp exports (the async side's transport), with what a GET and an execute
# POST would do after it; the reasons are in airflow_provider_ogc/retry.py, beside the tuples.
AIOHTTP_ERRORS: dict[str, tuple[Action, Action]] = {
    # No byte of the request left: httpx's ConnectError / ConnectTimeout.
    "ClientConnectorError": (RETRY, RETRY),
    "ClientConnectorDNSError": (RETRY, RETRY),
    "ClientProxyConnectionError": (RETRY, RETRY),
    "ClientSSLError": (RETRY, RETRY),
    "ClientConnectorSSLError": (RETRY, RETRY),  # a handshake cut short, no certificate verdict
    "ConnectionTimeoutError": (RETRY, RETRY),
    # The connection was made: the request may have been acted on.
    "ClientConnectionError": (RETRY, RECONCILE),
    "ClientOSError": (RETRY, RECONCILE),
    "ClientConnectionResetError": (RETRY, RECONCILE),
    "ServerConnectionError": (RETRY, RECONCILE),
    "ServerDisconnectedError": (RETRY, RECONCILE),
    "ServerTimeoutError": (RETRY, RECONCILE),
    "SocketTimeoutError": (RETRY, RECONCILE),
    "ClientResponseError": (RETRY, RECONCILE),  # an answer the parser rejected
    "ClientHttpProxyError": (RETRY, RECONCILE),
    "ClientPayloadError": (RETRY, RECONCILE),
    "UploadAbortedError": (RETRY, RECONCILE),
    # Sending again meets the same.
    "ClientConnectorCertificateError": (FAIL, FAIL),
    "ServerFingerprintMismatch": (FAIL, FAIL),
    "InvalidURL": (FAIL, FAIL),
    "InvalidUrlClientError": (FAIL, FAIL),
    "InvalidUrlRedirectClientError": (FAIL, FAIL),
    "NonHttpUrlClientError": (FAIL, FAIL),
    "NonHttpUrlRedirectClientError": (FAIL, FAIL),
    "RedirectClientError": (FAIL, FAIL),
    "ContentTypeError": (FAIL, FAIL),
    "TooManyRedirects": (FAIL, FAIL),
    "WSServerHandshakeError": (FAIL, FAIL),
    "ClientError": (FAIL, FAIL),
    # Not request failures (websockets, multipart): never raised by a request of the hook.
    "WebSocketError": (FAIL, FAIL),
    "WSMessageTypeError": (FAIL, FAIL),
    "EofStream": (FAIL, FAIL),
    "BadContentDispositionHeader": (FAIL, FAIL),
    "BadContentDispositionParam": (FAIL, FAIL),
}


def aiohttp_exception_classes() -> set[str]:
    import aiohttp

    return {
        name
        for name in dir(aiohttp)
        if inspect.isclass(getattr(aiohttp, name, None)) and issubclass(getattr(aiohttp, name), Exception)
    }


def make_aiohttp_error(name: str) -> Exception:
    import types

    import aiohttp

    cls = getattr(aiohttp, name)
    key = types.SimpleNamespace(host="127.0.0.1", port=8443, ssl=True)
    if issubclass(cls, aiohttp.ClientConnectorCertificateError):
        return cls(key, ssl.SSLCertVerificationError("certificate verify failed"))
    if issubclass(cls, aiohttp.ClientConnectorError):
        return cls(key, ConnectionRefusedError(111, "Connect call failed"))
    if issubclass(cls, (aiohttp.ClientResponseError, aiohttp.WSServerHandshakeError)):
        return cls(None, (), status=400, message="Invalid response status")
    if issubclass(cls, aiohttp.InvalidURL):
        return cls("http://[bad")
    if name == "ServerFingerprintMismatch":
        return cls(b"a", b"b", "127.0.0.1", 8443)
    if name == "WebSocketError":
        return cls(1002, "protocol error")
    return cls("boom")


def test_the_table_covers_every_aiohttp_exception_class() -> None:
    # Classes added by a later aiohttp than the floor's are in the table too; none may be missing.
    assert aiohttp_exception_classes() - set(AIOHTTP_ERRORS) == set()


@pytest.mark.parametrize("name", sorted(AIOHTTP_ERRORS))
def test_each_aiohttp_error_for_get_and_for_execute(name: str) -> None:
    if name not in aiohttp_exception_classes():
        pytest.skip(f"this aiohttp has no {name}")
    assert_decisions(make_aiohttp_error(name), *AIOHTTP_ERRORS[name])


def test_a_bare_asyncio_timeout_is_ambiguous() -> None:
    # aiohttp's timers may raise the bare asyncio.TimeoutError mid-request.
    import asyncio

    assert classify(asyncio.TimeoutError()) is Failure.AMBIGUOUS
