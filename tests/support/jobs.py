"""Waiting for jobs in tests, with a bound so a stuck server fails the test instead of hanging it."""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_ogc.models import StatusInfo


def wait_for_job(hook: Any, job_id: str, timeout: float = 30.0, interval: float = 0.1) -> list[StatusInfo]:
    """Poll until the job is terminal; return every status seen (the last one terminal)."""
    seen: list[StatusInfo] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = hook.get_job_status(job_id)
        seen.append(info)
        if info.is_terminal:
            return seen
        time.sleep(interval)
    raise AssertionError(f"job {job_id} still {seen[-1].status if seen else '?'} after {timeout} s")
