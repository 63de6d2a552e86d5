"""A minimal task context for calling operators directly, as Airflow's own provider unit tests do.

Only the parts of Airflow the operator touches are stood in for (XCom push, the task state
store); the servers the operator talks to are real.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass
class FakeTaskInstance:
    dag_id: str = "ogc_test"
    run_id: str = "manual__2026-11-24"
    task_id: str = "submit"
    map_index: int = -1
    try_number: int = 1
    start_date: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    xcoms: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be plain JSON
        self.xcoms[key] = value


@dataclass
class MemoryStateStore:
    """Stands in for Airflow 3.3's ``task_state_store`` (which survives retries)."""

    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def make_context(store: MemoryStateStore | None = None) -> dict[str, Any]:
    return {"ti": FakeTaskInstance(), "task_state_store": store if store is not None else MemoryStateStore()}


def run_trigger(trigger: Any, timeout: float = 60) -> dict[str, Any]:
    """Run a trigger (after a JSON round trip of its arguments, as the triggerer does) to its first event."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    import importlib

    revived = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))

    async def first() -> dict[str, Any]:
        async for event in revived.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout))
