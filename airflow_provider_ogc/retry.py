"""The one retry policy: after a failed request, send it again, check the server first, or fail.

The hook's sync and async requests, the execute submission and the trigger's polls all ask this
module, so a failure is treated the same wherever it happens:

* **Permanent** (:attr:`Failure.PERMANENT`): a 4xx but 408, 425 and 429; an answer this client
  cannot use; a failed TLS certificate check; a request the client could not form; any other
  error. Sending the request again cannot help.
* **Not acted on** (:attr:`Failure.NOT_ACTED`): the server cannot have acted on the request: the
  connection was never made (connect error or timeout, pool timeout), or the server said "not
  now" (408, 425, 429, 503, or a 5xx with ``Retry-After``). Any request may be sent again.
* **Ambiguous** (:attr:`Failure.AMBIGUOUS`): the request may have reached the server and been
  acted on although no usable answer came back: 500, 502, 504, and any transport error once the
  connection was made (a reset, a read or write timeout, a connection closed before the answer).
  An idempotent request (GET, PUT, DELETE, ...) is sent again; a POST is not sent blindly, the
  server is checked first (:attr:`Action.RECONCILE`, see :mod:`airflow_provider_ogc.submission`).

Waits grow exponentially with up to a second of jitter and honour ``Retry-After``.

The sync side's transport errors are httpx's, the async side's (the triggers' polls) aiohttp's;
both are sorted into the same three kinds (:data:`AIOHTTP_NOT_SENT_ERRORS` and the tuples beside it
say how aiohttp's map onto httpx's).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import httpx

from airflow_provider_ogc.exceptions import (
    RETRYABLE_CLIENT_STATUSES,
    OGCProcessesAPIError,
    OGCProcessesError,
    describe_error,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")

__all__ = ["Action", "Decision", "Failure", "RetryPolicy", "classify", "is_transient", "retry_after_of"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Statuses that say the server did not act on the request and that it may be sent again.
NOT_ACTED_STATUSES = RETRYABLE_CLIENT_STATUSES | {503}
# Statuses after which a request may or may not have been acted on.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
# Transport errors raised before any byte of the request left.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport errors of a request the client could not form: nothing was sent, nothing will change.
UNSENDABLE_ERRORS: tuple[type[Exception], ...] = (httpx.LocalProtocolError, httpx.UnsupportedProtocol)

# aiohttp's exceptions, by aiohttp's hierarchy (aiohttp.client_exceptions), checked in this order:
#
# Permanent: sending again meets the same.
#   ClientConnectorCertificateError  the certificate check failed (also caught by is_certificate_error)
#   ServerFingerprintMismatch        a pinned certificate did not match (the hook pins none)
#   InvalidURL and its subclasses,   a URL that is not a URL, or not http(s):
#   NonHttpUrlClientError,           httpx's InvalidURL / UnsupportedProtocol
#   RedirectClientError              (aiohttp's own redirects, which the hook never asks for)
#   ContentTypeError                 response.json() on a non-JSON type (the hook decodes itself)
#   TooManyRedirects                 aiohttp's own redirects again
#   WSServerHandshakeError           websockets (unused)
#   ClientError and anything else    an error this table does not know: not a network blip
# Not acted on: no byte of the request left.
#   ClientConnectorError             connect failed: refused, unreachable, DNS
#                                    (ClientConnectorDNSError), the proxy refused the connection
#                                    (ClientProxyConnectionError), and a TLS handshake that failed
#                                    without a certificate verdict (ClientSSLError,
#                                    ClientConnectorSSLError: a handshake cut short), all of which
#                                    httpx raises as ConnectError
#   ConnectionTimeoutError           DNS + connect + TLS exceeded connect_timeout (httpx's ConnectTimeout)
# Ambiguous: the connection was made, the request may have been acted on.
#   ClientConnectionError            and its subclasses not above: ClientOSError (a reset or broken
#                                    pipe while sending or reading), ClientConnectionResetError,
#                                    ServerDisconnectedError (closed before the whole answer),
#                                    ServerConnectionError, ServerTimeoutError and SocketTimeoutError
#                                    (no byte for `timeout` seconds while reading): httpx's ReadError,
#                                    WriteError, RemoteProtocolError, ReadTimeout
#   ClientResponseError              an answer the parser rejected (bad status line, headers: httpx's
#                                    RemoteProtocolError); ClientHttpProxyError, the proxy's non-2xx
#                                    to CONNECT (httpx's ProxyError, ambiguous there too)
#   ClientPayloadError               the body broke off (truncated, bad chunking or encoding)
#   UploadAbortedError               the body was never fully sent (aiohttp 3.14)
#   asyncio.TimeoutError (bare)      an aiohttp timer fired mid-request
AIOHTTP_PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    aiohttp.ClientConnectorCertificateError,
    aiohttp.ServerFingerprintMismatch,
    aiohttp.InvalidURL,
    aiohttp.ContentTypeError,
    aiohttp.TooManyRedirects,
    aiohttp.WSServerHandshakeError,
    *(
        getattr(aiohttp, name)
        for name in ("NonHttpUrlClientError", "RedirectClientError")
        if hasattr(aiohttp, name)
    ),
)
AIOHTTP_NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
AIOHTTP_AMBIGUOUS_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientResponseError,
    aiohttp.ClientPayloadError,
    asyncio.TimeoutError,
    *(getattr(aiohttp, name) for name in ("UploadAbortedError",) if hasattr(aiohttp, name)),
)
# The longest ``Retry-After`` honoured between two attempts of one request.
RETRY_AFTER_CAP = 300.0


class Failure(str, Enum):
    """What a failed request's error says about the server's side."""

    NOT_ACTED = "not_acted"
    AMBIGUOUS = "ambiguous"
    PERMANENT = "permanent"


class Action(str, Enum):
    """What to do after a failed attempt."""

    RETRY = "retry"  # send the same request again after the delay
    RECONCILE = "reconcile"  # a POST that may have been acted on: check the server after the delay
    FAIL = "fail"  # raise the error


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0


def is_certificate_error(error: BaseException) -> bool:
    """Whether a transport error was a failed TLS certificate check: permanent, not a network blip."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify(error: BaseException) -> Failure:
    """Whether the server can have acted on the failed request, and whether trying again may help."""
    if isinstance(error, OGCProcessesAPIError) and not error.permanent:
        status = error.http_status
        if status in NOT_ACTED_STATUSES or (
            status is not None and status >= 500 and error.retry_after is not None
        ):
            return Failure.NOT_ACTED
        if status in AMBIGUOUS_STATUSES:
            return Failure.AMBIGUOUS
        return Failure.PERMANENT
    if isinstance(error, OGCProcessesError):
        return Failure.PERMANENT
    if isinstance(error, httpx.TransportError):
        if is_certificate_error(error) or isinstance(error, UNSENDABLE_ERRORS):
            return Failure.PERMANENT
        if isinstance(error, NOT_SENT_ERRORS):
            return Failure.NOT_ACTED
        return Failure.AMBIGUOUS
    if is_certificate_error(error) or isinstance(error, AIOHTTP_PERMANENT_ERRORS):
        return Failure.PERMANENT
    if isinstance(error, AIOHTTP_NOT_SENT_ERRORS):
        return Failure.NOT_ACTED
    if isinstance(error, AIOHTTP_AMBIGUOUS_ERRORS):
        return Failure.AMBIGUOUS
    return Failure.PERMANENT


def is_transient(error: BaseException) -> bool:
    """Whether the failure may go away by itself (for a status poll: keep watching)."""
    return classify(error) is not Failure.PERMANENT


def retry_after_of(error: BaseException) -> float | None:
    """Seconds the server asked to wait before trying again (``Retry-After``), if it did."""
    return error.retry_after if isinstance(error, OGCProcessesAPIError) else None


@dataclass(frozen=True)
class RetryPolicy:
    """
    How often and how patiently one request is tried.

    :param max_retries: attempts after the first (for an execute request: how many times it may be
        sent again).
    :param wait_min: the first wait, in seconds; doubled after each failed attempt.
    :param wait_max: the longest wait between two attempts, in seconds (``Retry-After`` aside).
    """

    max_retries: int = 3
    wait_min: float = 1.0
    wait_max: float = 30.0

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def decide(self, method: str, error: BaseException, attempt: int) -> Decision:
        """
        What to do after attempt ``attempt`` (1-based) of ``method`` failed with ``error``.

        A POST that may have been acted on always gets :attr:`Action.RECONCILE`, even on its last
        attempt: whether a job exists must be known before giving up.
        """
        failure = classify(error)
        if failure is Failure.PERMANENT:
            return Decision(Action.FAIL)
        if failure is Failure.AMBIGUOUS and method.upper() not in IDEMPOTENT_METHODS:
            return Decision(Action.RECONCILE, self.delay(error, attempt))
        if attempt >= self.attempts:
            return Decision(Action.FAIL)
        return Decision(Action.RETRY, self.delay(error, attempt))

    def delay(self, error: BaseException, attempt: int) -> float:
        """The wait after failed attempt ``attempt``: ``Retry-After`` (capped), else the backoff."""
        retry_after = retry_after_of(error)
        if retry_after is not None:
            return float(min(retry_after, RETRY_AFTER_CAP))
        try:
            value = self.wait_min * 2 ** (attempt - 1) + random.uniform(0, 1)
        except OverflowError:
            value = self.wait_max
        return max(0.0, min(value, self.wait_max))

    def call(self, method: str, send: Callable[[], T], log: Any) -> T:
        """Run ``send`` (one attempt of a ``method`` request) until it succeeds or may not be retried."""
        attempt = 1
        while True:
            try:
                return send()
            except Exception as err:
                time.sleep(self._delay_or_raise(method, err, attempt, log))
            attempt += 1

    async def acall(self, method: str, send: Callable[[], Awaitable[T]], log: Any) -> T:
        """Async :meth:`call`."""
        attempt = 1
        while True:
            try:
                return await send()
            except Exception as err:
                await asyncio.sleep(self._delay_or_raise(method, err, attempt, log))
            attempt += 1

    def _delay_or_raise(self, method: str, error: Exception, attempt: int, log: Any) -> float:
        decision = self.decide(method, error, attempt)
        if decision.action is not Action.RETRY:
            raise error  # a POST that may have been acted on is not resent here: only a submission reconciles
        log.warning(
            "Attempt %d failed (%s); retrying in %.1f s", attempt, describe_error(error), decision.delay
        )
        return decision.delay
