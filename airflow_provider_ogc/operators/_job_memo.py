"""Where a task remembers the job it submitted, so that a retry reattaches instead of resubmitting.

Airflow 3.3 gives each task instance a ``task_state_store`` that survives retries (the store behind
``ResumableJobMixin``). On Airflow 3.1 and 3.2 an Airflow Variable named after the task instance
plays that part; it is deleted when the task finishes.
"""

from __future__ import annotations

from typing import Any

STORE_KEY = "ogc_job"
VARIABLE_PREFIX = "airflow_provider_ogc.job"


class JobMemo:
    """
    Read, write and forget the task instance's job: ``{"job_id", "job_url", "submitted_at"}``.

    :param context: the task's execution context.
    """

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store")
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        self._variable = f"{VARIABLE_PREFIX}.{ti.dag_id}.{ti.run_id}.{ti.task_id}.{map_index}"

    def get(self) -> dict[str, Any] | None:
        if self._store is not None:
            value = self._store.get(STORE_KEY)
        else:
            from airflow.sdk import Variable

            value = Variable.get(self._variable, default=None, deserialize_json=True)
        return value if isinstance(value, dict) and value.get("job_id") else None

    def set(self, job: dict[str, Any]) -> None:
        if self._store is not None:
            self._store.set(STORE_KEY, job)
        else:
            from airflow.sdk import Variable

            Variable.set(self._variable, job, serialize_json=True)

    def clear(self) -> None:
        """Forget the job (best effort: a leftover only means a retry checks that job's status first)."""
        try:
            if self._store is not None:
                self._store.delete(STORE_KEY)
            else:
                from airflow.sdk import Variable

                Variable.delete(self._variable)
        except Exception:  # never fail a finished task over bookkeeping
            pass
