"""pygeoapi 0.21 process plugins for the test processes.

Loaded by pygeoapi inside its own virtualenv (this directory is on
PYTHONPATH), referenced from the generated config as
``pygeoapi_processes.EchoProcessor`` etc.  The work itself is done by
``processes_core``; this module only adapts it to pygeoapi's BaseProcessor.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import processes_core as core
from pygeoapi.process.base import BaseProcessor, JobNotFoundError, ProcessorExecuteError

LOGGER = logging.getLogger(__name__)

_manager = None


def _get_manager():
    # pygeoapi 0.21 has no progress API for processors; the only way to report
    # progress is the job manager's update_job().  Processors do not get a
    # handle on the server's manager, so build an equivalent one from the same
    # config (TinyDB guards its file with a FileLock, so two instances are safe).
    global _manager
    if _manager is None:
        from pygeoapi.config import get_config
        from pygeoapi.process.manager.base import get_manager

        _manager = get_manager(get_config())
    return _manager


def _metadata(process_id: str) -> dict[str, Any]:
    # deepcopy: pygeoapi's OpenAPI generator pops keys from the output schemas.
    meta = copy.deepcopy(core.DESCRIPTIONS[process_id])
    meta.update(
        {
            "version": core.VERSION,
            "id": process_id,
            # Needed for Prefer: respond-async to be honoured (with TinyDB).
            "jobControlOptions": ["sync-execute", "async-execute"],
            "keywords": ["test"],
            "links": [],
        }
    )
    return meta


class _CoreProcessor(BaseProcessor):
    """Validates inputs, runs `_run` and wraps the value as {output_id: value}."""

    process_id: str = ""

    def __init__(self, processor_def: dict):
        super().__init__(processor_def, _metadata(self.process_id))
        self.job_id: str | None = None

    def set_job_id(self, job_id: str) -> None:
        self.job_id = job_id

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        try:
            inputs = core.validate_inputs(self.process_id, data)
        except core.InputError as err:
            raise ProcessorExecuteError(str(err), user_msg=str(err)) from err
        value = self._run(**inputs)
        (output_id,) = core.DESCRIPTIONS[self.process_id]["outputs"]
        return "application/json", {output_id: value}

    def _run(self, **inputs: Any) -> Any:
        raise NotImplementedError


class EchoProcessor(_CoreProcessor):
    process_id = "echo"

    def _run(self, message: str, count: int = 1) -> str:
        return core.echo(message, count)


class SleepProcessor(_CoreProcessor):
    process_id = "sleep"

    def _report(self, percent: int, message: str) -> None:
        if self.job_id is None:
            return
        from pygeoapi.util import JobStatus, get_current_datetime

        manager = _get_manager()
        try:
            manager.get_job(self.job_id)
        except JobNotFoundError:
            # DELETE /jobs/{id} only removes the TinyDB record; stop working.
            raise core.Dismissed(f"job {self.job_id} was dismissed") from None
        # pygeoapi itself leaves the job "accepted" until the processor
        # returns; mark it running so clients can observe the transition.
        manager.update_job(
            self.job_id,
            {
                "status": JobStatus.running.value,
                "progress": percent,
                "message": message,
                "updated": get_current_datetime(),
            },
        )

    def _run(self, seconds: float) -> float:
        return core.sleep(seconds, self._report)


class FailProcessor(_CoreProcessor):
    process_id = "fail"

    def _run(self, message: str | None = None) -> None:
        core.fail(message)


class WaterStacProcessor(_CoreProcessor):
    process_id = "water-stac"

    def _run(self, item_ids: list[str], bucket: str = core.DEFAULT_BUCKET) -> dict:
        return core.water_stac(item_ids, bucket, self.job_id)
