"""System-test DAG of ``NewStacItemsTrigger``: scheduled on an asset whose watcher polls the test's STAC
API every 2 s; its one task returns the ids each triggering event reported, one list per event.

Only ``tests/system/test_stac_watcher.py`` unpauses it (a paused DAG's watchers do not run).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_ogc.triggers import NewStacItemsTrigger

SCENES = Asset(
    "stac-watch-test-scenes",
    watchers=[
        AssetWatcher(
            name="stac_watch_test",
            trigger=NewStacItemsTrigger(
                collections="landsat-c2-l2",
                bbox=[-121.5, 39.8, -120.6, 40.5],
                filter="eo:cloud_cover < 50",
                stac_conn_id="stac_watch_test",
                poll_interval=2.0,
                lookback=30 * 86400.0,  # items acquired up to 30 days before the newest still count
            ),
        )
    ],
)

with DAG("stac_watch_consumer", schedule=[SCENES], start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def record(**context: Any) -> list[list[str]]:
        events = context["triggering_asset_events"][SCENES]
        return [[item["id"] for item in event.extra["payload"]["items"]] for event in events]

    record()
