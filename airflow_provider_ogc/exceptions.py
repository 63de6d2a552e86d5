"""Exceptions raised by the provider.

One type, :class:`OGCProcessesAPIError`, carries what a server said about a failed request
(HTTP status plus the OGC exception / RFC 7807 ``type``, ``title`` and ``detail``), so callers
never have to parse a server's error format themselves.
"""

from __future__ import annotations

from airflow_provider_ogc._compat import AirflowException

# Statuses worth retrying: the request may succeed later without any change by the user.
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class OGCProcessesError(AirflowException):
    """Base class of every error raised by this provider."""


class OGCConnectionConfigError(OGCProcessesError):
    """The Airflow connection cannot be used as it is (missing host, bad extras, ...)."""


class OGCProcessesAPIError(OGCProcessesError):
    """
    A request to an OGC API - Processes server failed.

    :param message: a one-line summary for humans.
    :param http_status: the HTTP status, or ``None`` when no response was received.
    :param type: the OGC exception / RFC 7807 ``type`` URI (or a server's error ``code``).
    :param title: the short, human-readable summary the server gave.
    :param detail: the server's explanation of this occurrence.
    :param method: the HTTP method of the failed request.
    :param url: the URL of the failed request.
    :param retry_after: seconds the server asked us to wait (``Retry-After``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.type = type
        self.title = title
        self.detail = detail
        self.method = method
        self.url = url
        self.retry_after = retry_after

    @property
    def is_transient(self) -> bool:
        """Whether repeating the same request later may succeed (5xx, 429, 408, ...)."""
        return self.http_status in TRANSIENT_HTTP_STATUSES

    @property
    def is_not_found(self) -> bool:
        return self.http_status == 404


class OGCInvalidResponseError(OGCProcessesAPIError):
    """The server answered with a body this client cannot use (HTML, invalid JSON, unknown status)."""


class OGCSubmissionUncertainError(OGCProcessesAPIError):
    """
    An execute request failed after it may have reached the server, and whether it created a job
    cannot be told: the server's job list could not be read (none at all, or an error). Nothing was
    resubmitted, so no duplicate job exists because of this client; a job may exist, or none.

    ``http_status`` is ``None``: the error is not transient, since repeating the request blindly is
    what it avoids.

    :param message: a one-line summary for humans.
    :param process_id: the process the request asked to execute.
    :param cause: the failure of the execute request.
    :param candidates: the status URLs of the jobs that may be this submission's, if any are known.
    """

    def __init__(
        self,
        message: str,
        *,
        process_id: str,
        cause: BaseException | None = None,
        candidates: list[str] | None = None,
        method: str | None = "POST",
        url: str | None = None,
    ) -> None:
        super().__init__(message, title="Submission outcome unknown", method=method, url=url)
        self.process_id = process_id
        self.cause = cause
        self.candidates = list(candidates or [])


class OGCAmbiguousSubmissionError(OGCSubmissionUncertainError):
    """
    An execute request failed after it may have reached the server, and the server's job list shows
    more than one job of that process created since the request was first sent (and not submitted by
    this process), so which one is this submission's cannot be told. Nothing was resubmitted;
    :attr:`candidates` holds the status URLs of those jobs.
    """


class OGCCrossOriginError(OGCProcessesError):
    """A link pointed to another host; credentials are never sent there."""
