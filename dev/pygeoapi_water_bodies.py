"""pygeoapi 0.21 plugin serving :mod:`dev.water_bodies` as the process ``water-bodies``.

Referenced from the dev stack's generated pygeoapi config as
``dev.pygeoapi_water_bodies.WaterBodiesProcessor`` (the repository root is on PYTHONPATH).
Progress is reported the way ``tests/servers/pygeoapi_processes.py`` does it: pygeoapi 0.21 has
no progress API for processors, so the plugin updates the job record through a TinyDB manager
built from the same config (pygeoapi gives processors the job id via ``set_job_id``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from pygeoapi.process.base import BaseProcessor, JobNotFoundError, ProcessorExecuteError

from dev import water_bodies

LOGGER = logging.getLogger(__name__)

_manager = None


class Dismissed(RuntimeError):
    """The job was DELETEd while running: stop working."""


def _get_manager() -> Any:
    global _manager
    if _manager is None:
        from pygeoapi.config import get_config
        from pygeoapi.process.manager.base import get_manager

        _manager = get_manager(get_config())
    return _manager


PROCESS_METADATA: dict[str, Any] = {
    **copy.deepcopy(water_bodies.DESCRIPTION),
    "version": "1.0.0",
    "id": "water-bodies",
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["water-bodies", "NDWI", "Otsu", "Landsat", "STAC"],
    "links": [],
}


class WaterBodiesProcessor(BaseProcessor):
    def __init__(self, processor_def: dict) -> None:
        # deepcopy: pygeoapi's OpenAPI generator pops keys from the output schemas.
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))
        self.job_id: str | None = None

    def set_job_id(self, job_id: str) -> None:
        self.job_id = job_id

    def _report(self, percent: int, message: str) -> None:
        LOGGER.info("job %s: %d%% %s", self.job_id, percent, message)
        if self.job_id is None:
            return
        from pygeoapi.util import JobStatus, get_current_datetime

        manager = _get_manager()
        try:
            manager.get_job(self.job_id)
        except JobNotFoundError:
            raise Dismissed(f"job {self.job_id} was dismissed") from None
        manager.update_job(
            self.job_id,
            {
                "status": JobStatus.running.value,
                "progress": percent,
                "message": message,
                "updated": get_current_datetime(),
            },
        )

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        try:
            inputs = water_bodies.validate(data)
        except water_bodies.InputError as err:
            raise ProcessorExecuteError(str(err), user_msg=str(err)) from err
        try:
            collection = water_bodies.run(**inputs, job_id=self.job_id, report=self._report)
        except water_bodies.InputError as err:
            raise ProcessorExecuteError(str(err), user_msg=str(err)) from err
        return "application/json", {"stac_catalog": collection}

    def __repr__(self) -> str:
        return f"<WaterBodiesProcessor> {self.name}"
