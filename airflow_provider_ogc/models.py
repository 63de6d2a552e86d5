"""Typed views of the OGC API - Processes documents the provider reasons about.

Parsing is tolerant: servers differ in key spelling (``jobID``/``jobId``/``id``), omit optional
members and add their own. What a client cannot work without (a job id, a known status) raises
:class:`~airflow_provider_ogc.exceptions.OGCInvalidResponseError` naming the problem.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from airflow_provider_ogc.exceptions import OGCInvalidResponseError

__all__ = [
    "ApplicationPackage",
    "DeployedProcess",
    "Execution",
    "JobStatus",
    "Link",
    "StatusInfo",
    "find_link",
    "job_id_of",
    "looks_like_status_info",
]

# Link relations a server may use to point at a job's status document.
STATUS_LINK_RELS = ("monitor", "status", "self")


class JobStatus(str, Enum):
    """The job states of OGC API - Processes Part 1 (``statusCode``)."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    DISMISSED = "dismissed"

    @property
    def is_terminal(self) -> bool:
        """``accepted`` is not terminal: pygeoapi reports it until the job ends, never ``running``."""
        return self in (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.DISMISSED)

    @classmethod
    def lookup(cls, value: Any) -> JobStatus | None:
        """The status a value names (case-insensitively), or None."""
        if not isinstance(value, str):
            return None
        members = cls._value2member_map_
        return members.get(value) or members.get(value.strip().lower())  # type: ignore[return-value]

    @classmethod
    def parse(cls, value: Any, where: str = "in the server's statusInfo") -> JobStatus:
        """
        Parse a status value case-insensitively; anything else is a clear error.

        :param value: the ``status`` member.
        :param where: where the value was found, for the error message.
        """
        status = cls.lookup(value)
        if status is not None:
            return status
        allowed = ", ".join(s.value for s in cls)
        raise OGCInvalidResponseError(
            f"Unknown job status {value!r} {where} (expected one of: {allowed})",
            title="Unknown job status",
        )


@dataclass(frozen=True)
class Link:
    """A web link as used throughout OGC APIs."""

    href: str
    rel: str | None = None
    type: str | None = None
    title: str | None = None

    @classmethod
    def parse_list(cls, raw: Any) -> list[Link]:
        links = []
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict) and isinstance(item.get("href"), str):
                links.append(
                    cls(
                        href=item["href"], rel=item.get("rel"), type=item.get("type"), title=item.get("title")
                    )
                )
        return links


def find_link(links: list[Link], rels: tuple[str, ...]) -> Link | None:
    """First link whose ``rel`` is one of ``rels``, in the order of ``rels``; JSON links preferred."""
    for rel in rels:
        candidates = [link for link in links if link.rel == rel]
        for link in candidates:
            if link.type is None or "json" in link.type:
                return link
        if candidates:
            return candidates[0]
    return None


def job_id_of(document: Any) -> str | None:
    """The job id of a statusInfo or job list entry (``jobID``, ``jobId``, ``job_id`` or 2.0's ``id``)."""
    if not isinstance(document, dict):
        return None
    value = document.get("jobID", document.get("jobId", document.get("job_id", document.get("id"))))
    return None if value is None or isinstance(value, (dict, list, bool)) else str(value)


def looks_like_status_info(body: Any) -> bool:
    """Whether a JSON body is a statusInfo document rather than, say, a results document."""
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return False
    has_id = any(isinstance(body.get(k), str) for k in ("jobID", "jobId", "job_id"))
    # Processes 2.0 drafts name it ``id`` beside ``processingEntityType``; ZOO adds ``type: process``.
    has_id = has_id or ("id" in body and (body.get("type") == "process" or "processingEntityType" in body))
    return has_id and body["status"].strip().lower() in {s.value for s in JobStatus}


@dataclass(frozen=True)
class StatusInfo:
    """
    A job's ``statusInfo``: what ``GET /jobs/{jobId}`` answers.

    :param job_id: the server's job identifier.
    :param status: the job's state.
    :param job_url: the URL the job's status can be read from.
    :param process_id: the process that runs the job, where the server says.
    :param message: the server's latest message about the job.
    :param progress: completion in percent (0-100), where the server reports it.
    :param links: links of the statusInfo (results, logs, ...).
    """

    job_id: str
    status: JobStatus
    job_url: str | None = None
    process_id: str | None = None
    message: str | None = None
    progress: int | None = None
    created: str | None = None
    started: str | None = None
    finished: str | None = None
    updated: str | None = None
    links: list[Link] = field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @classmethod
    def from_dict(cls, data: Any, *, job_url: str | None = None, job_id: str | None = None) -> StatusInfo:
        """
        Parse a statusInfo document.

        :param data: the decoded JSON body.
        :param job_url: the URL it was read from, kept as the job's URL.
        :param job_id: the job id the caller expects, used when the body omits it.
        """
        source = f" from {job_url}" if job_url else ""
        if not isinstance(data, dict):
            got = "an empty body" if data is None else f"a JSON {_json_kind(data)}"
            raise OGCInvalidResponseError(
                f"Expected a statusInfo JSON object{source}, got {got}",
                title="Invalid statusInfo",
                url=job_url,
            )
        raw_id = job_id_of(data) or job_id
        if raw_id is None:
            raise OGCInvalidResponseError(
                f"The server's statusInfo{source} has no job id (jobID); it has: {_keys(data)}",
                title="Invalid statusInfo",
                url=job_url,
            )
        if "status" not in data:
            raise OGCInvalidResponseError(
                f"The server's statusInfo for job {raw_id}{source} has no status; it has: {_keys(data)}",
                title="Invalid statusInfo",
                url=job_url,
            )
        return cls(
            job_id=str(raw_id),
            # The job is named: a bare value is hard to place in a log of many jobs. The message is
            # built only when the status is unknown (this runs on every poll).
            status=JobStatus.lookup(data["status"])
            or JobStatus.parse(data["status"], f"in the statusInfo of job {raw_id}{source}"),
            job_url=job_url,
            process_id=_optional_str(data.get("processID", data.get("processId", data.get("process_id")))),
            message=_optional_str(data.get("message")),
            progress=_optional_progress(data.get("progress")),
            created=_optional_str(data.get("created")),
            started=_optional_str(data.get("started")),
            finished=_optional_str(data.get("finished")),
            updated=_optional_str(data.get("updated")),
            links=Link.parse_list(data.get("links")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (for XCom and trigger events)."""
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> StatusInfo:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["status"] = JobStatus.parse(values["status"])
        values["links"] = [Link(**link) for link in values.get("links") or []]
        return cls(**values)

    def link(self, *rels: str) -> Link | None:
        return find_link(self.links, rels)

    def describe(self) -> str:
        """One log line: status, progress and message."""
        progress = "?" if self.progress is None else self.progress
        return (
            f"Job {self.job_id}: {self.status.value}, progress {progress}%, {self.message or '(no message)'}"
        )

    def log_links(self) -> list[str]:
        """Links to the job's logs, where the server gives them (useful in failure messages)."""
        return [
            link.href
            for link in self.links
            if "log" in (link.rel or "").lower() or "log" in (link.title or "").lower()
        ]


@dataclass(frozen=True)
class Execution:
    """
    What the server answered to an execute request.

    Asynchronous execution gives a job (``job_id``, ``job_url``, ``status``). A server that
    ran the process synchronously (200) gives ``results`` instead, and possibly a job id too.

    :param job_id: the job created by the request, if the server made one known.
    :param job_url: where the job's status can be read.
    :param status: the job's initial status; ``successful`` for synchronous results.
    :param results: the results document of a synchronous execution, else ``None``.
    :param synchronous: whether the server answered with the results (HTTP 200).
    """

    job_id: str | None
    job_url: str | None
    status: StatusInfo | None
    results: Any = None
    synchronous: bool = False


@dataclass(frozen=True)
class ApplicationPackage:
    """An application package read back from ``GET /processes/{id}/package``."""

    content_type: str
    content: Any  # dict for JSON packages, str for CWL YAML


@dataclass(frozen=True)
class DeployedProcess:
    """The answer to a deploy or replace request."""

    process_id: str
    location: str | None = None
    summary: dict[str, Any] | None = None


def _json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return f"string {value[:60]!r}"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def _keys(data: dict[str, Any]) -> str:
    return ", ".join(sorted(map(str, data))[:12]) or "no members"


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_progress(value: Any) -> int | None:
    try:
        return None if value is None else max(0, min(100, int(float(value))))
    except (TypeError, ValueError):
        return None
