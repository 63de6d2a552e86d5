"""wraptile 0.3 service exposing the test processes.

Started by launch.py as ``wraptile run ... -- wraptile_service:service``
inside wraptile's own virtualenv (this directory is on PYTHONPATH).  The work
and the descriptions come from ``processes_core``; here they are only turned
into procodile process functions, whose pydantic fields give wraptile the
input validation.
"""

# No "from __future__ import annotations": procodile inspects the real
# annotation objects of the process functions.
import os
from typing import Annotated, Any

import processes_core as core
from procodile import JobContext
from pydantic import Field
from pydantic.fields import FieldInfo
from wraptile.services.local import LocalService


class _JobTable(dict):
    """Job dict whose len() never decreases.

    Stock wraptile 0.3 names a new job f"job_{len(self.jobs)}" and deletes
    finished jobs on DELETE, so after any DELETE the next job reuses an
    existing id and silently replaces that job (observed; see WIRE.md).
    With parallel tests that is a source of flakiness, so the id counter is
    made monotonic here.  Nothing else in LocalService depends on len().
    """

    def __init__(self) -> None:
        super().__init__()
        self._created = 0

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            self._created += 1
        super().__setitem__(key, value)

    def __len__(self) -> int:
        return self._created


service = LocalService(
    title="OGC test processes (wraptile)",
    # launch.py looks for its per-start nonce on the landing page.
    description="Test server for airflow-provider-ogc (instance "
    f"{os.environ.get('OGC_TEST_SERVER_NONCE', '-')})",
)
service.jobs = _JobTable()
registry = service.process_registry

# JSON-schema keyword -> pydantic Field() argument, for the keywords we use.
_CONSTRAINTS = {"minimum": "ge", "maximum": "le", "minItems": "min_length"}


def _input(process_id: str, name: str) -> FieldInfo:
    desc = core.DESCRIPTIONS[process_id]["inputs"][name]
    kwargs: dict[str, Any] = {_CONSTRAINTS[k]: v for k, v in desc["schema"].items() if k in _CONSTRAINTS}
    return Field(title=desc["title"], description=desc["description"], **kwargs)


def _outputs(process_id: str) -> dict[str, FieldInfo]:
    return {
        name: Field(
            title=desc["title"],
            description=desc["description"],
            # keep e.g. contentMediaType, which the return annotation cannot carry
            json_schema_extra={k: v for k, v in desc["schema"].items() if k == "contentMediaType"},
        )
        for name, desc in core.DESCRIPTIONS[process_id]["outputs"].items()
    }


def _register(process_id: str):
    desc = core.DESCRIPTIONS[process_id]
    return registry.process(
        id=process_id,
        version=core.VERSION,
        title=desc["title"],
        description=desc["description"],
        outputs=_outputs(process_id),
    )


def _job_id() -> str | None:
    # The running procodile Job is the job context; it knows its id.
    info = getattr(JobContext.get(), "job_info", None)
    return getattr(info, "jobID", None)


@_register("echo")
def echo_process(
    message: Annotated[str, _input("echo", "message")],
    count: Annotated[int, _input("echo", "count")] = 1,
) -> str:
    return core.echo(message, count)


@_register("sleep")
def sleep_process(seconds: Annotated[float, _input("sleep", "seconds")]) -> float:
    ctx = JobContext.get()
    # report_progress() raises JobCancelledException once the job was
    # dismissed, which makes procodile end the job as "dismissed".
    return core.sleep(seconds, lambda p, m: ctx.report_progress(progress=p, message=m))


@_register("fail")
def fail_process(
    message: Annotated[str, _input("fail", "message")] = core.DEFAULT_FAIL_MESSAGE,
) -> str:
    core.fail(message)


@_register("water-stac")
def water_stac_process(
    item_ids: Annotated[list[str], _input("water-stac", "item_ids")],
    bucket: Annotated[str, _input("water-stac", "bucket")] = core.DEFAULT_BUCKET,
) -> dict:
    return core.water_stac(item_ids, bucket, _job_id())
