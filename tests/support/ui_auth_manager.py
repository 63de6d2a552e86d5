"""A test-only auth manager: Airflow's SimpleAuthManager, except that the user ``restricted`` may not
read the DAG ``ogc_ui_secret`` (the SimpleAuthManager itself gives every role every DAG).

Used by ``tests/system/test_ui_plugin.py`` (``AIRFLOW__CORE__AUTH_MANAGER=
tests.support.ui_auth_manager.OneDagDeniedAuthManager``, the repository on PYTHONPATH) to check that
the OGC jobs page hides that DAG's jobs from that user and answers 403 on its pages. Never use it
outside tests.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

DENIED_USER = "restricted"
DENIED_DAG = "ogc_ui_secret"


class OneDagDeniedAuthManager(SimpleAuthManager):
    """SimpleAuthManager denying :data:`DENIED_DAG` to :data:`DENIED_USER`."""

    @staticmethod
    def _denied(user: Any, dag_id: str | None) -> bool:
        return dag_id == DENIED_DAG and getattr(user, "username", None) == DENIED_USER

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        if self._denied(user, getattr(details, "id", None)):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )

    def get_authorized_dag_ids(self, *, user: Any, method: Any = "GET", **kwargs: Any) -> set[str]:
        dag_ids = super().get_authorized_dag_ids(user=user, method=method, **kwargs)
        return {d for d in dag_ids if not self._denied(user, d)}


def mint_token(username: str, role: str) -> str:
    """A JWT for ``username`` signed with this Airflow's configuration (run with the stack's env)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return create_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))


if __name__ == "__main__":
    import sys

    print(mint_token(sys.argv[1], sys.argv[2]))
