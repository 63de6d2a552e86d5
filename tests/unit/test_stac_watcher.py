"""The watermark of ``NewStacItemsTrigger``: pure functions, no Airflow components, no HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_ogc.triggers.stac import (
    NewStacItemsTrigger,
    _instant,
    advance,
    fresh_items,
    initial_watermark,
    search_start,
)

DAY = 86400.0


def found(item_id: str, stamp: str | None) -> dict[str, Any]:
    """An item as ``/search`` returns it."""
    return {"id": item_id, "properties": {"datetime": stamp}}


def test_first_start_takes_the_items_there_as_seen() -> None:
    items = [
        found("a", "2024-01-01T00:00:00Z"),
        found("b", "2024-01-03T00:00:00Z"),
        found("c", "2024-01-03T00:00:00Z"),
    ]
    assert initial_watermark(items) == {
        "datetime": "2024-01-03T00:00:00.000000Z",
        "seen": {"b": "2024-01-03T00:00:00Z", "c": "2024-01-03T00:00:00Z"},
    }
    assert fresh_items(items, initial_watermark(items)) == [items[0]]  # older: outside the next search
    assert initial_watermark([]) == {"datetime": None, "seen": {}}
    assert search_start(initial_watermark([])) is None  # an empty catalog: every item will be new


def test_items_sharing_the_newest_datetime_are_neither_missed_nor_repeated() -> None:
    watermark = initial_watermark([found("a", "2024-01-03T00:00:00Z")])
    assert search_start(watermark) == "2024-01-03T00:00:00.000000Z"  # closed interval: "a" comes back
    later = [found("a", "2024-01-03T00:00:00Z"), found("b", "2024-01-03T00:00:00Z")]
    batch = fresh_items(later, watermark)
    assert [i["id"] for i in batch] == ["b"]
    after = advance(watermark, [{"id": "b", "datetime": "2024-01-03T00:00:00Z"}])
    assert set(after["seen"]) == {"a", "b"} and fresh_items(later, after) == []


def test_advance_keeps_only_the_ids_within_the_lookback() -> None:
    watermark = {"datetime": "2024-01-03T00:00:00.000000Z", "seen": {"a": "2024-01-03T00:00:00Z"}}
    batch = [{"id": "b", "datetime": "2024-01-04T00:00:00Z"}, {"id": "c", "datetime": "2024-01-10T00:00:00Z"}]
    assert advance(watermark, batch) == {
        "datetime": "2024-01-10T00:00:00.000000Z",
        "seen": {"c": batch[1]["datetime"]},
    }
    kept = advance(watermark, batch, lookback=6.5 * DAY)
    assert set(kept["seen"]) == {"b", "c"}
    assert search_start(kept, 6.5 * DAY) == "2024-01-03T12:00:00.000000Z"


def test_a_late_item_within_the_lookback_is_reported_once() -> None:
    watermark = initial_watermark([found("new", "2024-01-10T00:00:00Z")], lookback=30 * DAY)
    late = found("late", "2024-01-02T00:00:00Z")  # ingested after "new", acquired before it
    assert fresh_items([late, found("new", "2024-01-10T00:00:00Z")], watermark) == [late]
    after = advance(watermark, [{"id": "late", "datetime": "2024-01-02T00:00:00Z"}], 30 * DAY)
    assert after["datetime"] == "2024-01-10T00:00:00.000000Z"  # the newest does not move back
    assert fresh_items([late], after) == []


def test_an_item_without_datetime_is_kept_at_the_watermark() -> None:
    watermark = {"datetime": "2024-01-03T00:00:00.000000Z", "seen": {}}
    after = advance(watermark, [{"id": "x", "datetime": None}])
    assert after == {"datetime": "2024-01-03T00:00:00.000000Z", "seen": {"x": "2024-01-03T00:00:00.000000Z"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-12-08T18:45:23.598169Z", "2023-12-08T18:45:23.598169+00:00"),
        ("2023-12-08T18:45:23.5Z", "2023-12-08T18:45:23.500000+00:00"),
        ("2023-12-08T18:45:23.123456789Z", "2023-12-08T18:45:23.123456+00:00"),
        ("2023-12-08T20:45:23+02:00", "2023-12-08T20:45:23+02:00"),
        ("2023-12-08T18:45:23", "2023-12-08T18:45:23+00:00"),
    ],
)
def test_rfc3339_instants(text: str, expected: str) -> None:
    assert _instant(text).isoformat() == expected


def test_arguments_are_plain_json_and_name_what_is_watched() -> None:
    trigger = NewStacItemsTrigger(
        collections="landsat-c2-l2", bbox=(1, 2, 3, 4), filter="eo:cloud_cover < 20"
    )  # type: ignore[arg-type]
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_ogc.triggers.stac.NewStacItemsTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    again = NewStacItemsTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs) and again.watch_key == trigger.watch_key
    assert NewStacItemsTrigger(collections="other").watch_key != trigger.watch_key
    assert NewStacItemsTrigger(**{**kwargs, "poll_interval": 5}).watch_key == trigger.watch_key
    with pytest.raises(ValueError, match="max_items"):
        NewStacItemsTrigger(collections="c", max_items=0)


class _Hook:
    """A StacApiHook whose collection lookup fails with ``error``; counts the calls."""

    calls = 0
    error: Exception = RuntimeError()

    def __init__(self, **kwargs: Any) -> None:
        pass

    def get_collection(self, collection_id: str) -> dict[str, Any]:
        type(self).calls += 1
        raise type(self).error


async def _first_event_within(seconds: float, monkeypatch: pytest.MonkeyPatch, error: Exception) -> int:
    import asyncio

    from airflow_provider_ogc.hooks import stac_api
    from airflow_provider_ogc.triggers import stac

    async def no_watermark(self: Any) -> None:
        return None

    _Hook.calls, _Hook.error = 0, error
    monkeypatch.setattr(stac_api, "StacApiHook", _Hook)
    monkeypatch.setattr(stac._WatermarkStore, "get", no_watermark)
    run = NewStacItemsTrigger(collections="nope", poll_interval=0.05).run()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(run.__anext__(), seconds)
    return _Hook.calls


async def test_a_permanent_error_stops_the_polling(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from airflow_provider_ogc.exceptions import OGCProcessesAPIError

    unknown = OGCProcessesAPIError(
        "Collection 'nope' does not exist (it has: landsat-c2-l2)", http_status=404
    )
    assert await _first_event_within(0.5, monkeypatch, unknown) == 1  # asked once, then no more
    logged = capsys.readouterr()  # Airflow's structlog writes to stdout
    text = logged.out + logged.err
    assert "Stopped watching nope" in text and "it has: landsat-c2-l2" in text


async def test_a_transient_error_is_tried_again_at_the_next_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    assert await _first_event_within(0.5, monkeypatch, httpx.ConnectError("refused")) >= 3
