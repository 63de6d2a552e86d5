"""Reading the result items a DAG was scheduled on, from its ``triggering_asset_events``.

``ExecuteProcessOperator`` with an ``AssetAlias`` outlet emits one asset event per result STAC item
(see its ``_emit_asset_events``); a DAG scheduled on that alias gets them in its context.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["result_items"]

# Values that are lists or objects; Airflow 3.1 carries them as JSON text (see _compat).
STRUCTURED_KEYS = ("bbox", "data_assets")


def result_items(events: Iterable[Any]) -> list[dict[str, Any]]:
    """
    The result items of asset events, one dict per event, oldest first.

    Each holds ``item_id``, ``href``, ``collection``, ``datetime``, ``bbox``, ``data_assets``
    (``{asset key: href}``) and the job's ``job_id``, ``process_id`` and ``server``.

    :param events: ``context["triggering_asset_events"][alias]``.
    """
    items = []
    for event in events:
        extra = dict(getattr(event, "extra", None) or {})
        for key in STRUCTURED_KEYS:
            if isinstance(extra.get(key), str):
                extra[key] = json.loads(extra[key])
        items.append(extra)
    return items
