"""Submitting a job exactly once: resend, reconcile with the job list, adopt, or refuse.

An execute request is a POST: sending it twice may run the job twice. :func:`submit` sends it
under :class:`~airflow_provider_ogc.retry.RetryPolicy`: again at once where the server cannot have
acted on it, and, where it may have (500, 502, 504, a reset or a timeout after sending), only after
:func:`reconcile` read the server's job list and found no job the lost request created. The job
list is judged by :func:`match_job_list`, a pure function of the list and a time window.

Limits: a job list does not say who submitted a job. If the request created no job but another
client created one of the same process while the request was in flight, or up to a second or two
before (``Date`` is coarse, sometimes cached), it is adopted as this request's. A server that
creates the job later than the backoff wait after failing the request can still be sent a second
request.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_ogc.exceptions import (
    OGCAmbiguousSubmissionError,
    OGCInvalidResponseError,
    OGCProcessesAPIError,
    OGCSubmissionUncertainError,
    describe_error,
)
from airflow_provider_ogc.models import Execution, JobStatus, StatusInfo, job_id_of
from airflow_provider_ogc.retry import Action

if TYPE_CHECKING:
    from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

__all__ = ["JobListMatch", "match_job_list", "reconcile", "reconciliation_window", "submit"]

# Reconciliation must see the whole job list (pygeoapi puts new jobs on its last page, 10 per page).
MAX_RECONCILE_PAGES = 1000
# Widens the reconciliation window on both sides of the Date-calibrated bounds: covers a Date set
# by a front proxy whose clock differs slightly from the application's that stamps ``created``.
CLOCK_SLACK = 0.25
# Servers may send a cached Date up to a second old (uvicorn refreshes it once a second), so the
# Date-derived upper bound of the offset can be that much low.
STALE_DATE = 1.0
MAX_CLAIMED_JOBS = 10_000


class ClaimedJobs:
    """
    Jobs this process submitted or adopted, as (API root, job id): reconciliation never adopts a
    job another submission of this process already owns. Bounded, oldest forgotten first; a task
    runs in its own process, so the recent ones are what matter.
    """

    def __init__(self, limit: int = MAX_CLAIMED_JOBS) -> None:
        self._jobs: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def add(self, base_url: str, job_id: str) -> None:
        with self._lock:
            self._jobs[(base_url, job_id)] = None
            self._jobs.move_to_end((base_url, job_id))
            while len(self._jobs) > self._limit:
                self._jobs.popitem(last=False)

    def __contains__(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._jobs


CLAIMED_JOBS = ClaimedJobs()


def submit(
    hook: OGCProcessesHook, process_id: str, url: str, kwargs: dict[str, Any], *, reconcile_lost: bool
) -> Execution:
    """
    Send an execute request at most ``max_retries + 1`` times; see
    :meth:`OGCProcessesHook.execute_process` for the rules.

    :param reconcile_lost: after an ambiguous failure, reconcile with the job list; ``False`` raises it.
    """
    policy = hook.settings.retry_policy()
    first_sent = time.time()
    attempt = 1
    while True:
        try:
            reply = hook._send_following_redirects(hook.get_conn(), "POST", url, kwargs)
        except Exception as err:
            failed_at = time.time()
            decision = policy.decide("POST", err, attempt)
            if decision.action is Action.FAIL or (decision.action is Action.RECONCILE and not reconcile_lost):
                raise
            if decision.action is Action.RETRY:
                hook.log.warning(
                    "Submitting %s failed before the server acted on it (%s); sending it again in %.1f s",
                    process_id,
                    describe_error(err),
                    decision.delay,
                )
                time.sleep(decision.delay)
                attempt += 1
                continue
            hook.log.warning(
                "Submitting %s failed after the request may have reached the server (%s); "
                "checking the job list in %.1f s before sending it again",
                process_id,
                describe_error(err),
                decision.delay,
            )
            time.sleep(decision.delay)  # lets a slow server finish creating the job
            adopted = reconcile(hook, process_id, url, (first_sent, failed_at), err)
            if adopted is not None:
                return adopted
            if attempt >= policy.attempts:
                hook.log.warning(
                    "No job of %s was created by the failed request; giving up after %d attempts",
                    process_id,
                    attempt,
                )
                raise
            hook.log.warning("No job of %s was created by the failed request; sending it again", process_id)
            attempt += 1
            continue
        execution = hook._parse_execution(reply)
        if execution.job_id:
            CLAIMED_JOBS.add(hook.settings.base_url, execution.job_id)
        return execution


def reconcile(
    hook: OGCProcessesHook,
    process_id: str,
    url: str,
    in_flight: tuple[float, float],
    cause: BaseException,
) -> Execution | None:
    """
    After an ambiguous failure of an execute request: the job it created (adopted), or ``None`` if
    it created none.

    :param in_flight: when the request was first sent and when it last failed (our clock).
    :raises OGCSubmissionUncertainError: the job list cannot be read.
    :raises OGCAmbiguousSubmissionError: the job list shows jobs that may or may not be this request's.
    """
    settings = hook.settings
    base_url = settings.base_url
    try:
        replies: list[tuple[httpx.Response, float]] = []
        params = {"processID": process_id, "limit": 100}
        jobs = list(hook._paginate("jobs", "jobs", params, max_pages=MAX_RECONCILE_PAGES, replies=replies))
    except (OGCProcessesAPIError, httpx.HTTPError) as err:
        status = getattr(err, "http_status", None)
        why = (
            f"the server has no job list to check (HTTP {status} from GET {settings.url('jobs')})"
            if status in (404, 405, 501)
            else f"its job list could not be read ({describe_error(err)})"
        )
        raise OGCSubmissionUncertainError(
            f"The request to execute {process_id!r} may or may not have created a job on "
            f"{base_url}: it failed after it may have reached the server ({describe_error(cause)}), "
            f"and {why}. It was not sent again, so that no duplicate job is created; check the "
            "server's jobs before running it again.",
            process_id=process_id,
            cause=cause,
            url=url,
        ) from cause
    offset = server_clock_bounds(replies)
    if offset is None:
        hook.log.info("The job list of %s has no Date header; assuming the server's clock is ours", base_url)
    found = match_job_list(
        jobs,
        process_id,
        reconciliation_window(in_flight, offset),
        claimed=lambda job_id: (base_url, job_id) in CLAIMED_JOBS,
    )
    adopted = found.adoptable
    if adopted is not None:
        job_id = str(job_id_of(adopted))
        job_url = hook._job_url(job_id, None)
        try:
            status = StatusInfo.from_dict(adopted, job_url=job_url, job_id=job_id)
        except OGCInvalidResponseError:
            status = StatusInfo(job_id=job_id, status=JobStatus.ACCEPTED, job_url=job_url)
        CLAIMED_JOBS.add(base_url, job_id)
        hook.log.warning(
            "Adopted job %s: the response to the submission was lost (%s); the server's job list "
            "shows this one job of %s created since the request was sent",
            job_id,
            describe_error(cause),
            process_id,
        )
        return Execution(job_id=job_id, job_url=job_url, status=status)
    if found.empty:
        return None
    urls = [hook._job_url(job_id, None) for job_id in found.ids]
    what = (
        f"{len(urls)} jobs that may be of {process_id!r} and created since it was first sent "
        "(the list does not give the process or the creation time of some)"
        if found.unknown
        else f"{len(urls)} job(s) of {process_id!r} created since it was first sent, "
        f"{len(found.after_failure)} of them after the request failed"
    )
    raise OGCAmbiguousSubmissionError(
        f"The request to execute {process_id!r} on {base_url} failed after it may have reached "
        f"the server ({describe_error(cause)}), and the server's job list shows {what} that this "
        f"process did not submit: {', '.join(urls)}. Any of them may be this request's job or "
        "another client's, so none was adopted and nothing was resubmitted; check them (and "
        "dismiss any duplicate) before running it again.",
        process_id=process_id,
        cause=cause,
        candidates=urls,
        url=url,
    ) from cause


# ---------------------------------------------------------------------- judging the job list


@dataclass(frozen=True)
class JobListMatch:
    """
    The jobs of a list that may be a lost submission's, by when the server created them.

    :param in_flight: raw job documents created while the request was in flight.
    :param after_failure: ids of jobs created after the request failed (a slow server's, or another
        client's).
    :param unknown: ids of jobs whose process or creation time the list does not give.
    """

    in_flight: list[dict[str, Any]] = field(default_factory=list)
    after_failure: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def adoptable(self) -> dict[str, Any] | None:
        """The one job created in flight, if it is the only candidate of any kind."""
        if len(self.in_flight) == 1 and not self.after_failure and not self.unknown:
            return self.in_flight[0]
        return None

    @property
    def empty(self) -> bool:
        """No job can be the request's: it created none."""
        return not (self.in_flight or self.after_failure or self.unknown)

    @property
    def ids(self) -> list[str]:
        return [str(job_id_of(raw)) for raw in self.in_flight] + self.unknown + self.after_failure


def reconciliation_window(
    in_flight: tuple[float, float], offset: tuple[float, float] | None
) -> tuple[float, float]:
    """
    The span of the server's clock in which a job the request created was created.

    :param in_flight: when the request was first sent and when it last failed (our clock).
    :param offset: bounds of the server clock's offset from ours (:func:`server_clock_bounds`);
        ``None`` takes the clocks as equal within a second.
    """
    low, high = offset or (-1.0, 1.0)
    # From the earliest the server's clock can have read when we sent the request to the latest it
    # can have read when we saw the failure: our job was created before the server answered.
    return in_flight[0] + low - CLOCK_SLACK, in_flight[1] + high + STALE_DATE + CLOCK_SLACK


def match_job_list(
    jobs: list[Any],
    process_id: str,
    window: tuple[float, float],
    claimed: Any = lambda job_id: False,
) -> JobListMatch:
    """
    Sort a job list's jobs of ``process_id`` created since ``window`` began (server clock).

    Jobs of other processes, created before the window, without an id, or ``claimed`` (already owned
    by a submission of this process) are left out. A job without ``created`` is left out when one of
    its later timestamps (``started``, ``updated``, ``finished``) is before the window, and counts
    as unknown otherwise.

    :param jobs: the raw documents of ``GET /jobs``.
    :param window: start and end of the in-flight span, epoch seconds on the server's clock.
    :param claimed: whether a job id is already owned.
    """
    start, end = window
    match = JobListMatch()
    for raw in jobs:
        job_id = job_id_of(raw)
        if job_id is None or claimed(job_id):
            continue
        owner = raw.get("processID", raw.get("processId", raw.get("process_id")))
        if owner is not None and str(owner) != process_id:
            continue
        created = parse_timestamp(raw.get("created"))
        if created is None:
            # created <= started <= updated/finished: any of them before the window excludes the job.
            later = [parse_timestamp(raw.get(k)) for k in ("started", "updated", "finished")]
            if not any(t is not None and t < start for t in later):
                match.unknown.append(job_id)
        elif created < start:
            continue
        elif owner is None:
            match.unknown.append(job_id)
        elif created > end:
            match.after_failure.append(job_id)
        else:
            match.in_flight.append(raw)
    return match


def server_clock_bounds(samples: list[tuple[httpx.Response, float]]) -> tuple[float, float] | None:
    """
    Bounds ``(lo, hi)`` of the seconds to add to this machine's clock to get the server's.

    Each response's ``Date`` (truncated to the second) was the server's time at some moment
    between sending the request and receiving the answer, so it bounds the offset to a window
    of one second plus the round trip. Windows of several responses, at different phases of the
    second, intersect to a narrower one.

    :param samples: responses and the epoch time each was received.
    :return: ``None`` when no response has a usable ``Date``.
    """
    lo: float | None = None
    hi: float | None = None
    for response, received_at in samples:
        value = response.headers.get("Date")
        if not value:
            continue
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        date = when.timestamp()
        try:
            sent_at = received_at - response.elapsed.total_seconds()
        except RuntimeError:  # elapsed is set only once the body was read
            sent_at = received_at
        lo = date - received_at if lo is None else max(lo, date - received_at)
        hi = date + 1.0 - sent_at if hi is None else min(hi, date + 1.0 - sent_at)
    if lo is None or hi is None:
        return None
    return (lo, hi) if hi >= lo else (lo, lo + 1.0)  # inconsistent Dates (several servers): be wide


_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp(value: Any) -> float | None:
    """
    An RFC 3339 / ISO 8601 timestamp as epoch seconds, or ``None`` if it is not one.

    A timestamp without an offset is taken as UTC (what OGC servers mean by it).
    """
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value.strip())
    if not match:
        return None
    day, clock, fraction, offset = match.groups()
    if len(clock) == 5:
        clock += ":00"
    text = f"{day}T{clock}"
    if fraction:
        text += "." + fraction[:6].ljust(6, "0")
    if offset and offset not in ("Z", "z"):
        text += offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
