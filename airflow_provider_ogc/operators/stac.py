"""Finding the scenes of a run: a STAC API search whose hrefs feed ``ExecuteProcessOperator``."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_ogc._compat import AirflowSkipException
from airflow_provider_ogc.exceptions import fail_permanent_errors

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_ogc.hooks.stac_api import StacApiHook

__all__ = ["StacSearchOperator"]

XCOM_ITEMS = "items"


class StacSearchOperator(BaseOperator):
    """
    Search a STAC API and return the found items' hrefs (XCom ``return_value``).

    The typical recurring run searches its own data interval over its AOI::

        StacSearchOperator(
            task_id="find_scenes",
            collections=["landsat-c2-l2"],
            bbox=[-121.4, 39.8, -120.7, 40.5],
            datetime="{{ data_interval_start | ts }}/{{ data_interval_end | ts }}",
            filter="eo:cloud_cover < 20",
        )

    Each collection is checked first, so a misspelt one fails with the list of those the API has;
    a filter the API refuses fails with its message. Neither is retried. A search that finds
    nothing skips the task (and, by default, its downstream tasks) rather than failing it.
    XCom ``items`` holds a summary per item: id, collection, datetime, bbox and ``eo:cloud_cover``.

    :param collections: collection id(s) (templated).
    :param bbox: ``[west, south, east, north]`` or ``"w,s,e,n"``, WGS84 (templated).
    :param intersects: a GeoJSON geometry (templated).
    :param datetime: an instant or ``start/end`` interval, RFC 3339 (templated).
    :param filter: a CQL2 filter, text or JSON (templated).
    :param filter_lang: ``cql2-text`` or ``cql2-json``; inferred when omitted.
    :param query: a ``query`` extension filter (templated).
    :param sortby: sort order; by default the API's (templated).
    :param max_items: the most items returned; more are left out with a warning.
    :param skip_if_empty: skip the task when nothing is found (``False``: return ``[]``).
    :param stac_conn_id: the ``stac_api`` connection.
    """

    template_fields: Sequence[str] = (
        "collections",
        "bbox",
        "intersects",
        "datetime",
        "filter",
        "query",
        "sortby",
    )
    template_fields_renderers = {"intersects": "json", "filter": "json", "query": "json"}
    ui_color = "#e6f0d8"

    def __init__(
        self,
        *,
        collections: str | list[str],
        bbox: list[float] | str | None = None,
        intersects: dict[str, Any] | str | None = None,
        datetime: str | None = None,
        filter: dict[str, Any] | str | None = None,
        filter_lang: str | None = None,
        query: dict[str, Any] | None = None,
        sortby: str | list[Any] | None = None,
        max_items: int = 100,
        skip_if_empty: bool = True,
        stac_conn_id: str = "stac_api_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.collections = collections
        self.bbox = bbox
        self.intersects = intersects
        self.datetime = datetime
        self.filter = filter
        self.filter_lang = filter_lang
        self.query = query
        self.sortby = sortby
        self.max_items = max_items
        self.skip_if_empty = skip_if_empty
        self.stac_conn_id = stac_conn_id

    @cached_property
    def hook(self) -> StacApiHook:
        from airflow_provider_ogc.hooks.stac_api import StacApiHook

        return StacApiHook(stac_conn_id=self.stac_conn_id)

    def execute(self, context: Context) -> list[str]:
        from airflow_provider_ogc.stac import item_href, item_summary

        collections = [self.collections] if isinstance(self.collections, str) else list(self.collections)
        with fail_permanent_errors(self.hook):
            for collection in collections:
                self.hook.get_collection(collection)
            # One more than asked, to tell "exactly max_items" from "more were left out".
            items = self.hook.search(collections=collections, max_items=self.max_items + 1, **self._criteria)
        criteria = ", ".join(f"{k} {v}" for k, v in self._criteria.items()) or "no criteria"
        where = f"{', '.join(collections)} at {self.hook.settings.base_url} ({criteria})"
        if len(items) > self.max_items:
            self.log.warning(
                "More than %d items match in %s; keeping the first %d", self.max_items, where, self.max_items
            )
            items = items[: self.max_items]
        if not items:
            message = f"No item matches in {where}"
            if self.skip_if_empty:
                raise AirflowSkipException(message)
            self.log.info(message)
            return []
        root = self.hook.settings.base_url
        hrefs = [item_href(item, root) for item in items]
        summaries = [item_summary(item) for item in items]
        context["ti"].xcom_push(key=XCOM_ITEMS, value=summaries)
        self.log.info("%d item(s) in %s:\n%s", len(items), where, "\n".join(f"  {h}" for h in hrefs))
        return hrefs

    @property
    def _criteria(self) -> dict[str, Any]:
        """The search's criteria that are set, as ``StacApiHook.search`` takes them."""
        names = ("bbox", "intersects", "datetime", "filter", "filter_lang", "query", "sortby")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}
