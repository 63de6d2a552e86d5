"""The Airflow UI's "OGC jobs" page: an Airflow plugin registered with the ``airflow.plugins`` entry point.

The api-server mounts a FastAPI app at ``/ogc`` (the page, its JSON API and the quick-looks) and the
UI shows it as an iframe ``external_view`` twice: "OGC jobs" in the navigation, and "OGC job page" on the
task-instance view of any task (it opens that task's job). Every component loads plugins, so this
module stays cheap to import: the FastAPI app is built on the first request it receives, in the
api-server only (see :class:`LazyOGCApp`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

__all__ = ["URL_PREFIX", "LazyOGCApp", "OGCProcessesPlugin"]

URL_PREFIX = "/ogc"


class LazyOGCApp:
    """An ASGI app that builds the real FastAPI app (``plugins.app.create_app``) on its first call."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from airflow_provider_ogc.plugins.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class OGCProcessesPlugin(AirflowPlugin):
    """The "OGC jobs" page in the Airflow UI (Airflow 3.1+)."""

    name = "ogc_processes"
    fastapi_apps = [{"app": LazyOGCApp(), "url_prefix": URL_PREFIX, "name": "OGC API - Processes jobs"}]
    external_views = [
        {
            "name": "OGC jobs",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "ogc-jobs",
            "icon": f"{URL_PREFIX}/static/ogc.svg",
        },
        {
            # The UI replaces the placeholders (3.3 URL-encodes them, 3.1 does not; {MAP_INDEX} stays
            # as it is for an unmapped task): the page reads them from the fragment.
            "name": "OGC job page",
            "href": f"{URL_PREFIX}/#job/{{DAG_ID}}/{{RUN_ID}}/{{TASK_ID}}/{{MAP_INDEX}}",
            "destination": "task_instance",
            "url_route": "ogc-job",
        },
    ]
