"""Every error the provider raises, and how each is explained to a user.

One tree, rooted at :class:`OGCProcessesError`. Each class says whether trying again could help
(:attr:`OGCProcessesError.permanent`); a task fails without retries on a permanent error
(:func:`fail_permanent_errors`), so nothing reads a list of types to decide that.
:class:`OGCProcessesAPIError` carries what a server said about a failed request (HTTP status
plus the OGC exception / RFC 7807 ``type``, ``title`` and ``detail``), so callers never parse a
server's error format themselves.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_ogc._compat import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_ogc.events import JobEvent

__all__ = [
    "InvalidInputsError",
    "OGCAmbiguousSubmissionError",
    "OGCConnectionConfigError",
    "OGCInvalidEventError",
    "OGCInvalidResponseError",
    "OGCJobFailedError",
    "OGCJobFailedPermanentlyError",
    "OGCProcessesAPIError",
    "OGCProcessesError",
    "OGCSubmissionUncertainError",
    "S3LocationError",
    "StacResultsError",
    "describe_error",
    "describe_failure",
    "explain_error",
    "fail_permanent_errors",
    "user_hint",
]

# Client errors that mean "not now" rather than "never": request timeout, too early, rate limited.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})


class OGCProcessesError(AirflowException):
    """Base class of every error raised by this provider."""

    _permanent: ClassVar[bool] = True

    @property
    def permanent(self) -> bool:
        """Whether trying again (the request, or the task) cannot help."""
        return self._permanent


class OGCConnectionConfigError(OGCProcessesError):
    """The Airflow connection cannot be used as it is (missing host, bad extras, ...)."""


class InvalidInputsError(OGCProcessesError):
    """The inputs do not match the process description; the message names every bad input."""

    def __init__(self, process_id: str, problems: list[str]) -> None:
        self.process_id = process_id
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Invalid inputs for process {process_id!r}:\n{listed}")


class StacResultsError(OGCProcessesError):
    """The results hold STAC that cannot be turned into item hrefs."""


class S3LocationError(OGCProcessesError):
    """An href that is not an ``s3://bucket/key`` URL, or an object that cannot be read."""


class OGCProcessesAPIError(OGCProcessesError):
    """
    A request to an OGC API - Processes server failed.

    :param message: a one-line summary for humans.
    :param http_status: the HTTP status, or ``None`` when no usable response was received.
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

    _permanent = False  # unless a subclass always is, the status decides

    @property
    def permanent(self) -> bool:
        """A client error (4xx but 408, 425, 429): the same request gets the same answer."""
        status = self.http_status
        client_error = status is not None and 400 <= status < 500 and status not in RETRYABLE_CLIENT_STATUSES
        return self._permanent or client_error


class OGCInvalidResponseError(OGCProcessesAPIError):
    """The server answered with a body this client cannot use (HTML, invalid JSON, unknown status)."""

    _permanent = True


class OGCSubmissionUncertainError(OGCProcessesAPIError):
    """
    An execute request failed after it may have reached the server, and whether it created a job
    cannot be told: the server's job list could not be read (none at all, or an error). Nothing was
    resubmitted, so no duplicate job exists because of this client; a job may exist, or none.

    It is permanent: trying again is the blind resubmission it avoids.

    :param message: a one-line summary for humans.
    :param process_id: the process the request asked to execute.
    :param cause: the failure of the execute request.
    :param candidates: the status URLs of the jobs that may be this submission's, if any are known.
    """

    _permanent = True

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


class OGCInvalidEventError(OGCProcessesError):
    """
    A task resumed with an event that is not a job event of this provider (a bug or a version
    skew between triggerer and worker). Not permanent: a retry reattaches to the job.
    """

    _permanent = False


class OGCJobFailedError(OGCProcessesError):
    """The job ended ``failed``, timed out, or could not be watched to its end; a task retry may help."""

    _permanent = False


class OGCJobFailedPermanentlyError(OGCJobFailedError, AirflowFailException):
    """
    The job cannot end well however often the task is retried, so the task fails without retries.

    Raised when someone else dismissed the job on the server, or when watching it hit an error
    that asking again cannot fix (the job is gone, the credentials are refused, the server's
    answers are unusable).
    """

    _permanent = True


# ---------------------------------------------------------------------- explanations


def describe_error(error: BaseException | None) -> str:
    """An error for a log line: transport errors often have an empty or terse message."""
    if error is None or isinstance(error, OGCProcessesError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def explain_error(
    err: BaseException, conn_id: str, auth_type: str | None = None, job_id: str | None = None
) -> str:
    """
    ``str(err)``, led by what to check when the cause is on the user's side (:func:`user_hint`).
    """
    hint = user_hint(err, conn_id, auth_type, job_id)
    return f"{hint}: {err}" if hint else str(err)


def user_hint(
    err: BaseException, conn_id: str, auth_type: str | None = None, job_id: str | None = None
) -> str:
    """
    What to check when the cause of ``err`` is on the user's side, or ``""``.

    A 401 points at the connection's credentials (or their absence), a 403 at their rights, and a
    404 for a job (``job_id`` given) says the job is gone from the server.

    :param err: the error.
    :param conn_id: the ``ogc_processes`` connection used.
    :param auth_type: its ``auth_type``, if known.
    :param job_id: the job the request was about, if it was a job's status.
    """
    status = getattr(err, "http_status", None)
    hint = ""
    if status == 401:
        if auth_type == "none":
            hint = (
                f"the server wants credentials and connection {conn_id!r} sends none (auth_type none): "
                "set its Password (token or API key), Login and auth_type"
            )
        elif auth_type is None:
            hint = f"the server wants credentials: check the Login, Password and auth_type of {conn_id!r}"
        else:
            hint = (
                f"the server refused the credentials of connection {conn_id!r} (auth_type {auth_type}): "
                "check its Login/Password and auth_type"
            )
    elif status == 403:
        hint = (
            f"the server forbids this request to connection {conn_id!r}: check its credentials and their "
            "rights on the server"
        )
    elif status == 404 and job_id is not None:
        hint = f"job {job_id!r} was not found on the server (dismissed or deleted there, or never created)"
    return hint


def describe_failure(event: JobEvent, process_id: str | None) -> str:
    """The message of a failed task: the server's message, and where the job's logs are."""
    of_process = f" of process {process_id!r}" if process_id else ""
    message = event.message or "(the server gave no message)"
    if event.outcome.value not in ("failed", "dismissed"):
        return message
    # A task dismisses its job only when it times out or is killed, which give other events.
    ended = (
        "was dismissed on the server (not by this task)"
        if event.outcome.value == "dismissed"
        else "ended failed"
    )
    text = f"Job {event.job_id}{of_process} {ended}: {message}"
    info = event.status_info
    logs = info.log_links() if info else []
    if logs:
        text += f" (job logs: {', '.join(logs)})"
    if info and info.job_url:
        text += f" (status: {info.job_url})"
    return text


@contextmanager
def fail_permanent_errors(hook: Any = None, job_id: str | None = None) -> Iterator[None]:
    """
    In a task: turn a permanent :class:`OGCProcessesError` into :class:`AirflowFailException`, so
    the task fails without retries; anything else (a 5xx, a network error) stays retryable.

    :param hook: the hook used, so a 401 or 403 can name its connection.
    :param job_id: the job whose status was asked, so a 404 says the job is gone.
    """
    try:
        yield
    except OGCProcessesError as err:
        if not err.permanent or isinstance(err, AirflowFailException):
            raise
        settings = getattr(hook, "_settings", None)
        hint = user_hint(err, getattr(hook, "ogc_conn_id", "?"), getattr(settings, "auth_type", None), job_id)
        raise AirflowFailException(f"{hint[:1].upper()}{hint[1:]}: {err}" if hint else str(err)) from err
