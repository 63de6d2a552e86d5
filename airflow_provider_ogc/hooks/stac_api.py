"""The hook over a STAC API (``/search``, ``/collections``): finding the scenes a job should process.

Built on ``pystac-client`` (its search parameters, paging and CQL2 handling), with the requests
sent by this provider's transport: the connection's credentials only to the API's own origin,
TLS verification on by default, and the one retry policy of :mod:`airflow_provider_ogc.retry`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from airflow.sdk import BaseHook
from pystac_client.stac_api_io import StacApiIO

from airflow_provider_ogc import __version__
from airflow_provider_ogc.exceptions import OGCProcessesAPIError, OGCProcessesError, describe_error
from airflow_provider_ogc.hooks._http import JSON, ConnectionSettings, error_from_response, load_settings

if TYPE_CHECKING:
    import pystac_client

__all__ = ["StacApiHook"]

GEOJSON = "application/geo+json, application/json;q=0.9"


class StacApiHook(BaseHook):
    """
    Client for a STAC API (stac-fastapi, Planetary Computer, EarthSearch, ...) configured by an
    Airflow connection of type ``stac_api``: Host is the API root, and the fields and extras are
    those of the ``ogc_processes`` connection (auth, TLS, timeouts, retries).

    :param stac_conn_id: the Airflow connection of type ``stac_api``.
    """

    conn_name_attr = "stac_conn_id"
    default_conn_name = "stac_api_default"
    conn_type = "stac_api"
    hook_name = "STAC API"

    def __init__(self, stac_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stac_conn_id = stac_conn_id
        self._settings: ConnectionSettings | None = None
        self._client: pystac_client.Client | None = None
        self._io: _ProviderStacIO | None = None

    @property
    def settings(self) -> ConnectionSettings:
        if self._settings is None:
            self._settings = load_settings(self.get_connection(self.stac_conn_id))
        return self._settings

    def get_conn(self) -> pystac_client.Client:
        """The API's root as a ``pystac_client.Client`` (the landing page and conformance, read once)."""
        if self._client is None:
            import pystac_client

            self._client = pystac_client.Client.open(self.settings.url(""), stac_io=self.io)
        return self._client

    @property
    def io(self) -> _ProviderStacIO:
        """The transport every request of this hook goes through."""
        if self._io is None:
            self._io = _ProviderStacIO(self.settings, self.log)
        return self._io

    def get_collection(self, collection_id: str) -> dict[str, Any]:
        """``GET /collections/{id}``; an unknown id is an error naming the collections there are."""
        try:
            return _json(self.io.request(self.settings.url(f"collections/{quote(collection_id, safe='')}")))
        except OGCProcessesAPIError as err:
            if err.http_status != 404:
                raise
            known = self.list_collection_ids()
            raise OGCProcessesAPIError(
                f"Collection {collection_id!r} does not exist on {self.settings.base_url} "
                f"(it has: {', '.join(known) or 'none'})",
                http_status=404,
                title="Unknown collection",
                method="GET",
                url=err.url,
            ) from err

    def list_collection_ids(self) -> list[str]:
        return [collection.id for collection in self.get_conn().get_collections()]

    def search(
        self,
        *,
        collections: str | list[str] | None = None,
        bbox: list[float] | str | None = None,
        intersects: dict[str, Any] | str | None = None,
        datetime: str | None = None,
        filter: dict[str, Any] | str | None = None,
        filter_lang: str | None = None,
        query: dict[str, Any] | None = None,
        sortby: str | list[Any] | None = None,
        ids: list[str] | None = None,
        max_items: int | None = 100,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """
        ``/search``, following ``next`` links until ``max_items``: the items as dicts.

        :param collections: collection id(s) to search.
        :param bbox: ``[west, south, east, north]`` (or ``"w,s,e,n"``) in WGS84.
        :param intersects: a GeoJSON geometry.
        :param datetime: an instant or an interval ``start/end`` (RFC 3339; ``..`` for open).
        :param filter: a CQL2 filter: text (``"eo:cloud_cover < 20"``) or CQL2-JSON.
        :param filter_lang: ``cql2-text`` or ``cql2-json``; inferred from ``filter`` when omitted.
        :param query: the older ``query`` extension's filter.
        :param sortby: sort order, e.g. ``"+properties.datetime"``.
        :param ids: item ids.
        :param max_items: most items returned (``None``: all).
        :param limit: page size asked of the server.
        """
        method = "POST"
        if filter is not None and filter_lang is None:
            # Said outright, so pystac-client sends the filter as given (it would need cql2 to convert);
            # CQL2 text travels in a GET query, CQL2-JSON in a POST body.
            filter_lang = "cql2-text" if isinstance(filter, str) else "cql2-json"
        if filter_lang == "cql2-text":
            method = "GET"
        search = self.get_conn().search(
            method=method,
            collections=collections,
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            filter=filter,
            filter_lang=filter_lang,
            query=query,
            sortby=sortby,
            ids=ids,
            max_items=max_items,
            limit=limit,
        )
        return list(search.items_as_dicts())

    def test_connection(self) -> tuple[bool, str]:
        """Read the landing page; say whether it offers item search."""
        try:
            client = self.get_conn()
            searchable = client.conforms_to("ITEM_SEARCH")
        except (OGCProcessesError, httpx.HTTPError, ValueError) as err:
            return False, f"Cannot use STAC API {self.stac_conn_id!r}: {describe_error(err)}"
        title = client.title or client.id
        if not searchable:
            return False, f"{title} at {self.settings.base_url} does not conform to STAC API - Item Search"
        return True, f"Connected to {title} at {self.settings.base_url}; item search supported"


class _ProviderStacIO(StacApiIO):
    """pystac-client's I/O, sending every request through httpx with the provider's rules."""

    def __init__(self, settings: ConnectionSettings, log: Any) -> None:
        super().__init__(max_retries=None)
        self._settings = settings
        self._log = log
        self._http = httpx.Client(
            auth=settings.auth(),  # credentials only to the API's own origin
            headers={"User-Agent": f"airflow-provider-ogc/{__version__}"},
            timeout=settings.httpx_timeout(),
            verify=settings.verify,
        )

    def request(
        self,
        href: str,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        method = (method or "GET").upper()
        kwargs: dict[str, Any] = {
            "headers": {"Accept": GEOJSON if "search" in href else JSON, **(headers or {})}
        }
        if method == "POST":
            kwargs["json"] = parameters
        elif parameters:
            kwargs["params"] = parameters

        def send() -> httpx.Response:
            response = self._http.request(method, href, **kwargs)
            if response.status_code >= 400:
                raise error_from_response(response)
            return response

        # A search is read-only even as a POST: it is retried like a GET.
        response = self._settings.retry_policy().call("GET", send, self._log)
        return response.text


def _json(text: str) -> dict[str, Any]:
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError(f"Expected a JSON object, got {type(body).__name__}")
    return body
