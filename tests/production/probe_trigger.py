"""A trigger that records its task instance's state when it is cancelled (research for issue 12, item 2).

The question: can a trigger's ``on_kill`` tell a user's action (mark failed/success, clear) from its
triggerer losing the trigger to another triggerer (stale heartbeat, then the same cancel path)?
:func:`task_instance_state` asks the Execution API through the triggerer's supervisor (the
``GetTaskStates`` message, handled by the triggerer's supervisor on Airflow 3.1 and 3.3). The
trigger appends one JSON line per observation to ``record`` (a file every triggerer can write).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


async def task_instance_state(trigger: BaseTrigger) -> str | None:
    """The current state of the trigger's task instance ("deferred", "failed", ..., None), from inside the triggerer.

    ``trigger.task_instance`` is set by the triggerer (dag_id, task_id, run_id, map_index,
    try_number). ``RuntimeTaskInstance.get_task_states`` is synchronous and talks to the
    supervisor; ``sync_to_async`` runs it in a thread so the event loop is not blocked (on 3.3 a
    direct call from the loop also works, through greenback). A mapped task instance's key is
    ``"<task_id>_<map_index>"``.
    """
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from asgiref.sync import sync_to_async

    ti: Any = trigger.task_instance
    states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
        dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
    )
    key = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
    state = states.get(ti.run_id, {}).get(key, "missing")
    return None if state is None else str(state)


USER_ACTION = "__airflow_user_action__"  # 3.3's cancel message for a trigger no longer assigned here


async def shielded(coro: Any) -> Any:
    """Await ``coro`` to its end although the task is cancelled meanwhile.

    The 3.3 triggerer re-sends the cancellation of a trigger at every sync with its supervisor
    (about once a second) until the trigger has finished, so an ``on_kill`` is cancelled (and the
    error swallowed) after about a second, whatever ``[triggerer] on_kill_timeout`` says. The first
    Execution API request of a triggerer process takes seconds (the supervisor builds its in-process
    API then), so the lookup is shielded and awaited again after each cancellation.
    """
    future = asyncio.ensure_future(coro)
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                return future.result()


class TaskStateProbeTrigger(BaseTrigger):
    """Waits forever; on cancellation records where (``run`` or ``on_kill``) and the TI's state."""

    def __init__(self, record: str, label: str) -> None:
        super().__init__()
        self.record = record
        self.label = label

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{__name__}.TaskStateProbeTrigger", {"record": self.record, "label": self.label})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await self._note("started")
        try:
            while True:
                await asyncio.sleep(3600)
        except asyncio.CancelledError as err:
            message = err.args[0] if err.args else None
            if message == USER_ACTION:
                # Airflow 3.3 calls on_kill next: look the state up there, quickly return here.
                await self._note("cancelled", lookup=False, cancel_message=message)
            else:
                # Airflow 3.1 has no on_kill: this is the only place a trigger learns of a cancellation.
                await self._note("cancelled", cancel_message=message)
            raise
        yield TriggerEvent({})  # pragma: no cover - never reached

    async def on_kill(self) -> None:  # Airflow 3.3+
        await self._note("on_kill")

    async def _note(self, where: str, lookup: bool = True, **extra: Any) -> None:
        entry: dict[str, Any] = {"label": self.label, "where": where, "pid": os.getpid(), "time": time.time()}
        ti: Any = self.task_instance
        entry["try_number"] = getattr(ti, "try_number", None)
        if lookup and where != "started":
            try:
                entry["state"] = await shielded(task_instance_state(self))
            except Exception as err:
                entry["error"] = f"{type(err).__name__}: {err}"
            entry["lookup_s"] = round(time.time() - entry["time"], 2)
        entry.update(extra)
        with open(self.record, "a") as out:
            out.write(json.dumps(entry) + "\n")
