"""The trigger that watches an OGC API - Processes job from the triggerer."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_ogc.polling import DEFAULT_MAX_POLL_INTERVAL, DEFAULT_POLL_RATIO

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_ogc.events import JobEvent

__all__ = ["OGCJobTrigger"]


class OGCJobTrigger(BaseTrigger):
    """
    Poll a job with async HTTP until it ends, its deadline passes, or errors persist.

    Its arguments are plain JSON and name no secret: the connection is read by id in the triggerer.
    Polling is adaptive (see :class:`~airflow_provider_ogc.polling.PollSchedule`), honours
    ``Retry-After`` up to ``max_poll_interval``, and rides out up to ``max_transient_errors``
    consecutive connection errors, 5xx and 429 answers. Anything else (a 4xx, an unusable answer)
    ends the watch at once with an ``error`` event marked ``permanent``; the trigger never raises.
    Its one event is a :class:`~airflow_provider_ogc.events.JobEvent`.
    Each change of status, progress or message is logged, so the task log shows the job's progress.
    All triggers of a triggerer process share one connection pool per server.

    :param job_id: the job to watch.
    :param ogc_conn_id: the ``ogc_processes`` connection.
    :param submitted_at: when the job was submitted (epoch seconds); paces adaptive polling.
    :param deadline: wall-clock deadline (epoch seconds), or ``None`` for none.
    :param min_poll_interval: the shortest wait between polls, in seconds.
    :param max_poll_interval: the longest wait between polls, in seconds.
    :param poll_ratio: the wait as a share of the job's age.
    :param max_transient_errors: consecutive transient failures tolerated before giving up.
    :param dismiss_on_timeout: dismiss the job (``DELETE /jobs/{id}``) when the deadline passes.
    :param dismiss_on_kill: dismiss the job when a user kills the task (Airflow 3.3+).
    :param last_status: the status already reported, so a resumed trigger does not log it again.
    """

    def __init__(
        self,
        job_id: str,
        ogc_conn_id: str,
        submitted_at: float | None = None,
        deadline: float | None = None,
        min_poll_interval: float = 1.0,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        poll_ratio: float = DEFAULT_POLL_RATIO,
        max_transient_errors: int = 10,
        dismiss_on_timeout: bool = True,
        dismiss_on_kill: bool = True,
        last_status: str | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.ogc_conn_id = ogc_conn_id
        self.submitted_at = submitted_at if submitted_at is not None else time.time()
        self.deadline = deadline
        self.min_poll_interval = min_poll_interval
        self.max_poll_interval = max_poll_interval
        self.poll_ratio = poll_ratio
        self.max_transient_errors = max_transient_errors
        self.dismiss_on_timeout = dismiss_on_timeout
        self.dismiss_on_kill = dismiss_on_kill
        self.last_status = last_status

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "ogc_conn_id": self.ogc_conn_id,
                "submitted_at": self.submitted_at,
                "deadline": self.deadline,
                "min_poll_interval": self.min_poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "poll_ratio": self.poll_ratio,
                "max_transient_errors": self.max_transient_errors,
                "dismiss_on_timeout": self.dismiss_on_timeout,
                "dismiss_on_kill": self.dismiss_on_kill,
                "last_status": self.last_status,
            },
        )

    def _hook(self) -> Any:
        from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

        return OGCProcessesHook(ogc_conn_id=self.ogc_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_ogc.events import JobEvent, JobOutcome
        from airflow_provider_ogc.exceptions import explain_error
        from airflow_provider_ogc.polling import PollSchedule
        from airflow_provider_ogc.retry import is_transient, retry_after_of

        try:
            schedule = PollSchedule(self.min_poll_interval, self.max_poll_interval, self.poll_ratio)
        except ValueError as err:  # an event, not a traceback in the triggerer's loop
            message = f"Cannot watch job {self.job_id}: {err}"
            yield self._fire(JobEvent(JobOutcome.ERROR, self.job_id, message, permanent=True))
            return
        hook = self._hook()
        failures = 0
        last_seen = None
        while True:
            if self.deadline is not None and time.time() >= self.deadline:
                yield await self._timed_out(hook)
                return
            wait: float | None = None
            try:
                info = await hook.aget_job_status(self.job_id)
            except Exception as err:  # any failure becomes an event: a trigger must not die silently
                transient = is_transient(err)
                failures += 1
                if not transient or failures > self.max_transient_errors:
                    why = (
                        "permanent error"
                        if not transient
                        else f"{failures} consecutive transient errors"
                        if failures > 1
                        else "transient error, max_transient_errors=0"
                    )
                    auth_type = getattr(hook._settings, "auth_type", None)  # None: the connection is bad
                    explained = explain_error(err, self.ogc_conn_id, auth_type, job_id=self.job_id)
                    message = f"Polling job {self.job_id} failed ({why}): {explained}"
                    yield self._fire(
                        JobEvent(JobOutcome.ERROR, self.job_id, message, permanent=not transient)
                    )
                    return
                self.log.warning(
                    "Polling job %s failed (%d in a row), retrying: %s", self.job_id, failures, err
                )
                wait = retry_after_of(err)
            else:
                failures = 0
                if info.describe() != last_seen:
                    last_seen = info.describe()
                    self.log.info(last_seen)
                if info.is_terminal:
                    yield self._fire(JobEvent.ended(info))
                    return
            delay = schedule.next_interval(time.time() - self.submitted_at)
            if wait is not None:
                # Honour Retry-After, but never beyond our own ceiling: a server asking for a day
                # (or a malformed huge value) must not park the trigger past every poll.
                delay = max(delay, min(wait, self.max_poll_interval))
            if self.deadline is not None:
                delay = max(0.0, min(delay, self.deadline - time.time()))
            await asyncio.sleep(delay)

    @staticmethod
    def _fire(event: JobEvent) -> TriggerEvent:
        return TriggerEvent(event.to_payload())

    async def _timed_out(self, hook: Any) -> TriggerEvent:
        from airflow_provider_ogc.events import JobEvent, JobOutcome

        message = f"Job {self.job_id} did not finish before its deadline"
        if self.dismiss_on_timeout and await dismiss_quietly(hook, self.job_id, self.log):
            message += "; it was dismissed"
        return self._fire(JobEvent(JobOutcome.TIMEOUT, self.job_id, message))

    async def on_kill(self) -> None:
        """
        Dismiss the job when a person stopped the task (mark failed/success, clear); never raise.

        Airflow 3.3 also calls ``on_kill`` when a triggerer that lost its triggers to another one
        (its heartbeat lapsed) resumes and drops them. The task is then still deferred, and its
        job is watched elsewhere, so the task instance's state is asked first: the job is
        dismissed only when the task was stopped, and kept when the state says it lives on or
        cannot be read.
        """
        if not self.dismiss_on_kill:
            return
        # The triggerer may cancel a trigger again while on_kill runs: the dismissal goes on
        # in its own task rather than stopping half way.
        work = asyncio.ensure_future(self._dismiss_if_stopped())
        _ON_KILL_TASKS.add(work)
        work.add_done_callback(_ON_KILL_TASKS.discard)
        await asyncio.shield(work)

    async def _dismiss_if_stopped(self) -> None:
        ti = getattr(self, "task_instance", None)
        if ti is not None:  # None: called directly, outside a triggerer: nothing else can be watching
            state = await self._task_state(ti)
            if state is _UNKNOWN:
                self.log.info(
                    "Not dismissing job %s: the task instance's state cannot be read, so whether a "
                    "person stopped the task is unknown",
                    self.job_id,
                )
                return
            if state not in STOPPED_TASK_STATES:
                self.log.info(
                    "Not dismissing job %s: the task instance is %r, so the task was not stopped (its "
                    "trigger moved to another triggerer, or it is resuming)",
                    self.job_id,
                    state,
                )
                return
            self.log.info("The task instance is %r: dismissing job %s", state, self.job_id)
        await dismiss_quietly(self._hook(), self.job_id, self.log)

    async def _task_state(self, ti: Any) -> Any:
        """The task instance's current state from the metadata database, or ``_UNKNOWN``."""
        try:
            from airflow.sdk.execution_time import task_runner
            from airflow.sdk.execution_time.comms import GetTaskStates

            # The triggerer's own channel to its supervisor, awaited in this loop (no thread).
            query = GetTaskStates(
                dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
            )
            reply = await asyncio.wait_for(task_runner.SUPERVISOR_COMMS.asend(query), STATE_LOOKUP_TIMEOUT)
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
            return getattr(reply, "task_states", {})[ti.run_id][key]
        except Exception as err:
            self.log.warning("Cannot read the state of task instance %s: %s", ti, err)
            return _UNKNOWN


# Task instance states a person's action leaves a deferred task in: marked failed or success,
# skipped, cleared (no state, or restarting). Anything else (deferred: reassigned to another
# triggerer; scheduled, queued, running: resuming after the trigger fired) keeps the job.
STOPPED_TASK_STATES = frozenset(
    {"failed", "success", "skipped", "removed", "upstream_failed", "restarting", None}
)
_UNKNOWN = object()
# The triggerer's supervisor may take many seconds to answer under load; the lookup runs on past
# Airflow's [triggerer] on_kill_timeout (30 s) in its own task, and gives up only after this.
STATE_LOOKUP_TIMEOUT = 90.0
_ON_KILL_TASKS: set[asyncio.Task[None]] = set()


async def dismiss_quietly(hook: Any, job_id: str, log: Any, timeout: float = 30.0) -> bool:
    """Best-effort ``DELETE /jobs/{id}``: logs what happened, returns whether it worked, never raises."""
    try:
        await asyncio.wait_for(hook.adismiss_job(job_id), timeout)
    except Exception as err:
        log.warning("Could not dismiss job %s: %s", job_id, err)
        return False
    log.info("Dismissed job %s", job_id)
    return True
