"""An event trigger for ``AssetWatcher``: a DAG runs when new items appear in a STAC API.

It polls ``/search`` (collections, AOI, optional CQL2 filter) for items newer than its watermark
and fires one event per batch of new items. The watermark outlives the triggerer: it is kept in the
watched asset's state store on Airflow 3.3, in an Airflow Variable on 3.1 and 3.2.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["NewStacItemsTrigger", "advance", "fresh_items", "initial_watermark", "search_start"]

STATE_KEY = "stac_watermark"
VARIABLE_PREFIX = "airflow_provider_ogc.stac_watermark"
# Seconds between an event and storing the watermark past it: the triggerer writes the event (and
# so the asset event) to the metadata database within about two seconds. A triggerer killed before
# the watermark is stored reports the batch again after its restart rather than losing it.
EVENT_SETTLE_SECONDS = 5.0

Watermark = dict[str, Any]  # {"datetime": RFC 3339 or None, "seen": {item id: its datetime}}


class NewStacItemsTrigger(BaseEventTrigger):
    """
    Poll a STAC API for items newer than a watermark; fire once per batch of new items.

    Use it in an ``AssetWatcher``: each event becomes an asset event whose ``extra["payload"]``
    holds ``items``, one dict per new item, oldest first, at most ``max_items`` per event:
    ``href`` (the item's URL in the API), ``id``, ``collection``, ``datetime``, ``bbox`` and
    ``eo:cloud_cover``; and ``watermark_before``, the newest ``datetime`` reported before.

    The watermark is the newest item ``datetime`` reported and the ids reported from ``lookback``
    before it, so no item is reported twice and items sharing a datetime are not missed. It is
    stored in the watched asset's state store on Airflow 3.3 (key ``stac_watermark.<key>``; when
    one trigger watches several assets, in the Variable below), and in the Airflow Variable
    ``airflow_provider_ogc.stac_watermark.<key>`` on 3.1 and 3.2, where ``<key>`` is
    :attr:`watch_key`. A restarted triggerer goes on from it. On its first start (no watermark
    and no ``start_after``) it takes the items already there as seen: the first event comes with
    the first new item.

    "Newer" is by the items' ``datetime`` (acquisition time): an item that appears later than
    items acquired more than ``lookback`` after it is not reported. The watermark is stored
    :data:`EVENT_SETTLE_SECONDS` after each event, once the event is in the database: a
    triggerer killed in those seconds reports that batch again when it restarts (never loses it).

    A permanent error (an unknown collection, a filter the API refuses, credentials refused) is
    logged once as an error and the trigger stops polling until it is re-created (the DAG
    changes, or the triggerer restarts); a transient one (network, 5xx, 429, after the hook's
    retries) is logged and the search is tried again at the next poll.

    :param collections: collection id(s) to watch.
    :param bbox: ``[west, south, east, north]`` in WGS84, the area of interest.
    :param intersects: a GeoJSON geometry, instead of ``bbox``.
    :param filter: a CQL2 filter, text (``"eo:cloud_cover < 20"``) or CQL2-JSON.
    :param stac_conn_id: the ``stac_api`` connection.
    :param poll_interval: seconds between two searches.
    :param max_items: the most items one event reports (the rest come with the next poll).
    :param start_after: an RFC 3339 instant: on the first start, report the items from then on.
    :param lookback: seconds; an item acquired up to this long before the newest one reported,
        and not reported yet, is still reported (for catalogs that ingest out of order).
    """

    def __init__(
        self,
        collections: str | list[str],
        bbox: list[float] | None = None,
        intersects: dict[str, Any] | None = None,
        filter: dict[str, Any] | str | None = None,
        stac_conn_id: str = "stac_api_default",
        poll_interval: float = 300.0,
        max_items: int = 100,
        start_after: str | None = None,
        lookback: float = 0.0,
    ) -> None:
        super().__init__()
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.collections = [collections] if isinstance(collections, str) else list(collections)
        self.bbox = list(bbox) if bbox is not None else None
        self.intersects = intersects
        self.filter = filter
        self.stac_conn_id = stac_conn_id
        self.poll_interval = poll_interval
        self.max_items = max_items
        self.start_after = start_after
        self.lookback = lookback

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "collections": self.collections,
                "bbox": self.bbox,
                "intersects": self.intersects,
                "filter": self.filter,
                "stac_conn_id": self.stac_conn_id,
                "poll_interval": self.poll_interval,
                "max_items": self.max_items,
                "start_after": self.start_after,
                "lookback": self.lookback,
            },
        )

    @property
    def watch_key(self) -> str:
        """What is watched (connection, collections, AOI, filter), as a short stable key."""
        what = [self.stac_conn_id, self.collections, self.bbox, self.intersects, self.filter]
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_ogc.hooks.stac_api import StacApiHook

        hook = StacApiHook(stac_conn_id=self.stac_conn_id)
        store = _WatermarkStore(self)
        watched = f"{', '.join(self.collections)} (watch {self.watch_key})"
        watermark = await store.get()
        if watermark is None:
            while watermark is None:
                try:
                    watermark = await _in_thread(self._initial_watermark, hook)
                except Exception as err:
                    await self._failed(err, watched)
            dirty = True
            self.log.info("Watching %s for items after %s", watched, watermark["datetime"])
        else:
            dirty = False
            self.log.info("Watching %s from its stored watermark %s", watched, watermark["datetime"])
        while True:
            if dirty:
                dirty = not await store.set(watermark)
            try:
                batch = await _in_thread(self._new_items, hook, watermark)
            except Exception as err:
                await self._failed(err, watched)
                continue
            if batch:
                self.log.info(
                    "%d new item(s) in %s: %s", len(batch), watched, ", ".join(i["id"] for i in batch)
                )
                yield TriggerEvent({"items": batch, "watermark_before": watermark["datetime"]})
                watermark = advance(watermark, batch, self.lookback)
                dirty = True
                await asyncio.sleep(EVENT_SETTLE_SECONDS)
                dirty = not await store.set(watermark)
            await asyncio.sleep(self.poll_interval)

    async def _failed(self, err: Exception, watched: str) -> None:
        """Wait for the next poll after a transient error; stop polling for good after a permanent one."""
        import httpx

        from airflow_provider_ogc.exceptions import OGCProcessesError, describe_error
        from airflow_provider_ogc.retry import is_transient

        if isinstance(err, (OGCProcessesError, httpx.HTTPError)) and not is_transient(err):
            self.log.error(
                "Stopped watching %s: %s. Fix the watcher's arguments or the connection %r; it is "
                "started again when its DAG changes or the triggerer restarts.",
                watched,
                describe_error(err),
                self.stac_conn_id,
            )
            await asyncio.Event().wait()  # a watcher that returned would be started again at once
        self.log.warning(
            "Searching %s failed; trying again in %g s: %s", watched, self.poll_interval, describe_error(err)
        )
        await asyncio.sleep(self.poll_interval)

    def _search(self, hook: Any, **kwargs: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = hook.search(
            collections=self.collections,
            bbox=self.bbox,
            intersects=self.intersects,
            filter=self.filter,
            **kwargs,
        )
        return found

    def _initial_watermark(self, hook: Any) -> Watermark:
        for collection in self.collections:  # an unknown one fails here, naming those there are
            hook.get_collection(collection)
        if self.start_after:
            return {"datetime": _format(_instant(self.start_after)), "seen": {}}
        newest = self._search(hook, sortby="-properties.datetime", max_items=1)
        if not newest:
            return initial_watermark([], self.lookback)
        start = search_start({"datetime": _item_datetime(newest[0]), "seen": {}}, self.lookback)
        return initial_watermark(self._search(hook, datetime=f"{start}/..", max_items=None), self.lookback)

    def _new_items(self, hook: Any, watermark: Watermark) -> list[dict[str, Any]]:
        from airflow_provider_ogc.stac import item_href, item_summary

        start = search_start(watermark, self.lookback)
        found = self._search(
            hook,
            datetime=f"{start}/.." if start else None,
            sortby="+properties.datetime",
            max_items=len(watermark["seen"]) + self.max_items,
        )
        root = hook.settings.base_url
        # Oldest first even from a server that ignores sortby, so a truncated batch leaves the newer ones.
        fresh = sorted(
            fresh_items(found, watermark), key=lambda i: _instant(_item_datetime(i) or "9999-12-31")
        )
        batch = fresh[: self.max_items]
        return [{**item_summary(item), "href": item_href(item, root)} for item in batch]


# ------------------------------------------------------------------ the watermark (pure)


def initial_watermark(items: list[dict[str, Any]], lookback: float = 0.0) -> Watermark:
    """The watermark that takes ``items`` (as ``/search`` returns them) as already reported."""
    if not items:
        return {"datetime": None, "seen": {}}
    return advance({"datetime": None, "seen": {}}, [_summary(item) for item in items], lookback)


def search_start(watermark: Watermark, lookback: float = 0.0) -> str | None:
    """The start of the interval to search (RFC 3339), or ``None`` for "everything"."""
    if watermark["datetime"] is None:
        return None
    return _format(_instant(watermark["datetime"]) - timedelta(seconds=lookback))


def fresh_items(found: list[dict[str, Any]], watermark: Watermark) -> list[dict[str, Any]]:
    """The items of ``found`` not reported yet, in their order."""
    seen = watermark["seen"]
    return [item for item in found if item.get("id") not in seen]


def advance(watermark: Watermark, batch: list[dict[str, Any]], lookback: float = 0.0) -> Watermark:
    """
    The watermark once ``batch`` is reported.

    :param watermark: the watermark before.
    :param batch: item summaries (``id`` and ``datetime``), as in an event's ``items``.
    :param lookback: seconds before the newest datetime whose reported ids are kept.
    """
    seen = {**watermark["seen"], **{str(i["id"]): i.get("datetime") or watermark["datetime"] for i in batch}}
    instants = [_instant(stamp) for stamp in seen.values() if stamp]
    if watermark["datetime"]:
        instants.append(_instant(watermark["datetime"]))
    if not instants:
        return {"datetime": None, "seen": seen}
    newest = max(instants)
    cutoff = newest - timedelta(seconds=lookback)
    kept = {item_id: stamp for item_id, stamp in seen.items() if not stamp or _instant(stamp) >= cutoff}
    return {"datetime": _format(newest), "seen": kept}


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.get("id"), "datetime": _item_datetime(item)}


def _item_datetime(item: dict[str, Any]) -> str | None:
    properties = item.get("properties") or {}
    stamp = properties.get("datetime") or properties.get("start_datetime")
    return str(stamp) if stamp else None


_FRACTION = re.compile(r"\.(\d+)")


def _instant(text: str) -> datetime:
    """An RFC 3339 date-time (any fraction length, ``Z`` or an offset) as an aware datetime."""
    normal = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text.strip().replace("Z", "+00:00"))
    value = datetime.fromisoformat(normal.replace("z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _format(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------ where the watermark lives


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run blocking code off the event loop, where Task SDK calls still reach the triggerer.

    ``sync_to_async`` rather than ``asyncio.to_thread``: on Airflow 3.1 a connection or Variable
    read from a worker thread goes to the supervisor through the loop that ``sync_to_async``
    records; from a bare thread it would use the loop's streams from another loop.
    """
    from asgiref.sync import sync_to_async

    return await sync_to_async(func, thread_sensitive=False)(*args)


class _WatermarkStore:
    """The watched asset's state store (Airflow 3.3), else an Airflow Variable."""

    def __init__(self, trigger: NewStacItemsTrigger) -> None:
        self._assets = getattr(trigger, "asset_state_store", None)
        self._key = f"{STATE_KEY}.{trigger.watch_key}"
        self._variable = f"{VARIABLE_PREFIX}.{trigger.watch_key}"
        self._log = trigger.log

    async def get(self) -> Watermark | None:
        if self._assets is not None:
            try:
                value = await self._assets.aget(self._key)
            except ValueError:  # a trigger shared by several assets: the Variable instead
                self._assets = None
            else:
                return value if _is_watermark(value) else None
        from airflow.sdk import Variable

        value = await _in_thread(lambda: Variable.get(self._variable, default=None, deserialize_json=True))
        return value if _is_watermark(value) else None

    async def set(self, watermark: Watermark) -> bool:
        """Store the watermark; ``False`` (and a warning) when that failed, to try again later."""
        try:
            if self._assets is not None:
                await self._assets.aset(self._key, watermark)
            else:
                from airflow.sdk import Variable

                await _in_thread(lambda: Variable.set(self._variable, watermark, serialize_json=True))
        except Exception as err:
            self._log.warning("Could not store the watermark (trying again at the next poll): %s", err)
            return False
        where = "the asset state store" if self._assets is not None else f"Variable {self._variable}"
        self._log.info(
            "Stored the watermark %s (%d id(s)) in %s", watermark["datetime"], len(watermark["seen"]), where
        )
        return True


def _is_watermark(value: Any) -> bool:
    return isinstance(value, dict) and "datetime" in value and isinstance(value.get("seen"), dict)
