"""The FastAPI app the api-server mounts at ``/ogc``: the "OGC jobs" page, its JSON API, quick-looks.

Security: a plugin's app gets no authentication of its own, so every data route depends on
Airflow's ``get_user`` (the UI's JWT as ``Authorization: Bearer``, or on 3.3 also the ``_token``
cookie; none gives 401) and on the auth manager: the list holds only DAGs from
``get_authorized_dag_ids(method="GET")``, and a job's routes use Airflow's own
``requires_access_dag("GET")`` (403 for a DAG the user may not read). The static page, script and
styles hold no data and are served without authentication. Connections stay on the api-server:
the browser gets statuses, messages, item metadata and rendered PNGs, never a credential.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

# This module is imported on the api-server's first request to /ogc only (plugins.LazyOGCApp).
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from airflow_provider_ogc.plugins import jobs, quicklook

STATIC = Path(__file__).parent / "static"
ITEMS_TIMEOUT = 60.0
QUICKLOOK_TIMEOUT = 60.0
QUICKLOOK_MAX_BYTES = 256 * 1024 * 1024
RENDER_CONCURRENCY = 2
CSP = (
    "default-src 'self'; img-src 'self' blob: data: https://tile.openstreetmap.org "
    "https://*.tile.openstreetmap.org; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'self'"
)


def create_app() -> FastAPI:
    """Build the app (called on the api-server's first request to ``/ogc``)."""
    app = FastAPI(
        title="OGC API - Processes jobs",
        description="Jobs of the airflow-provider-ogc operators, for the Airflow UI's OGC jobs page",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    pngs: jobs._LRU = jobs._LRU(64)
    render_gate: dict[str, asyncio.Semaphore] = {}

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if "/api/" in request.url.path and "quicklook" not in request.url.path:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(
            STATIC / "index.html", media_type="text/html", headers={"Content-Security-Policy": CSP}
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def readable_dags(user: Any) -> set[str]:
        return await asyncio.to_thread(get_auth_manager().get_authorized_dag_ids, user=user, method="GET")

    @app.get("/api/jobs")
    async def list_jobs(
        user: GetUserDep,
        dag_id: str | None = Query(None),
        status: str | None = Query(None),
        process_id: str | None = Query(None),
        limit: int = Query(jobs.MAX_JOBS, ge=1, le=jobs.MAX_JOBS),
    ) -> JSONResponse:
        """Jobs of DAGs the user may read, newest first (filters: DAG, status, process)."""
        allowed = await readable_dags(user)
        rows = await asyncio.to_thread(jobs.query_jobs, allowed, dag_id=dag_id or None, limit=limit)
        listed = await jobs.summaries(rows)
        facets = {
            "dag_ids": sorted({j["dag_id"] for j in listed}),
            "statuses": sorted({j["status"] for j in listed}),
            "process_ids": sorted({j["process_id"] for j in listed if j["process_id"]}),
        }
        if status:
            listed = [j for j in listed if j["status"] == status]
        if process_id:
            listed = [j for j in listed if j["process_id"] == process_id]
        return JSONResponse({"jobs": listed, "total": len(listed), **facets})

    async def one_row(dag_id: str, run_id: str, task_id: str, map_index: int) -> jobs.JobRow:
        key = (dag_id, run_id, task_id, map_index)
        rows = await asyncio.to_thread(jobs.query_jobs, None, key=key, limit=1)
        if not rows:
            raise HTTPException(404, f"No OGC job for {dag_id}/{run_id}/{task_id}/{map_index}")
        return rows[0]

    job_route = "/api/jobs/{dag_id}/{run_id}/{task_id}/{map_index}"
    can_read_dag = [Depends(requires_access_dag("GET"))]

    @app.get(job_route, dependencies=can_read_dag)
    async def job_detail(dag_id: str, run_id: str, task_id: str, map_index: int) -> JSONResponse:
        """One job: its status, its result items (footprints, properties, quick-looks), its failure."""
        row = await one_row(dag_id, run_id, task_id, map_index)
        status = await jobs.job_status(row)
        detail = jobs.job_summary(row, status)
        detail["server_links"] = status.get("links") or []
        items: list[dict[str, Any]] = []
        errors: list[str] = []
        if row.item_hrefs:
            try:
                items, errors = await asyncio.wait_for(asyncio.to_thread(jobs.load_items, row), ITEMS_TIMEOUT)
            except asyncio.TimeoutError:
                errors = [f"Reading the result items took longer than {ITEMS_TIMEOUT:.0f} s"]
            except Exception as err:
                errors = [f"{type(err).__name__}: {err}"[:500]]
        available = importlib.util.find_spec("rasterio") is not None
        detail.update(
            items=items,
            item_errors=errors,
            item_count=len(row.item_hrefs),
            quicklooks={
                "available": available,
                "message": None
                if available
                else "Quick-looks need rasterio on the api-server: pip install 'airflow-provider-ogc[ui]'",
                "max_size": quicklook.MAX_SIZE,
                "legends": quicklook.LEGENDS,
            },
            failure={"message": detail["message"] or detail["error"], "log": detail["ui"]["log"]}
            if detail["status"] in ("failed", "dismissed")
            else None,
        )
        return JSONResponse(detail)

    @app.get(job_route + "/quicklook/{name}", dependencies=can_read_dag)
    async def job_quicklook(dag_id: str, run_id: str, task_id: str, map_index: int, name: str) -> Response:
        """Item ``N``'s data asset as a PNG (``quicklook/N.png``), at most 512 px; header ``X-Legend``."""
        index_text = name.removesuffix(".png")
        if not index_text.isdigit():
            raise HTTPException(404, "Ask for quicklook/{item index}.png")
        row = await one_row(dag_id, run_id, task_id, map_index)
        try:
            href = await asyncio.wait_for(
                asyncio.to_thread(jobs.item_data_href, row, int(index_text)), QUICKLOOK_TIMEOUT
            )
        except LookupError as err:
            raise HTTPException(404, str(err)) from None
        except asyncio.TimeoutError:
            raise HTTPException(504, "Reading the item took too long") from None
        except Exception as err:
            raise HTTPException(502, f"Cannot read the item: {type(err).__name__}: {err}"[:500]) from None
        cached: tuple[bytes, str, tuple[int, int]] | None = pngs.get(href)
        if cached is None:
            gate = render_gate.setdefault("gate", asyncio.Semaphore(RENDER_CONCURRENCY))
            try:
                async with gate:
                    data = await asyncio.wait_for(
                        asyncio.to_thread(jobs.read_data, row, href, QUICKLOOK_MAX_BYTES), QUICKLOOK_TIMEOUT
                    )
                    cached = await asyncio.wait_for(
                        asyncio.to_thread(quicklook.render_png, data), QUICKLOOK_TIMEOUT
                    )
            except quicklook.QuicklookUnavailable as err:
                raise HTTPException(501, str(err)) from None
            except asyncio.TimeoutError:
                raise HTTPException(504, "Rendering the quick-look took too long") from None
            except Exception as err:
                raise HTTPException(502, f"Cannot render {href}: {type(err).__name__}: {err}"[:500]) from None
            pngs.put(href, cached)
        assert cached is not None
        png, legend, (width, height) = cached
        return Response(
            png,
            media_type="image/png",
            headers={
                "X-Legend": legend,
                "X-Image-Size": f"{width}x{height}",
                "Cache-Control": "private, max-age=300",
            },
        )

    return app
