"""Triggers: :class:`OGCJobTrigger` watches a job from the triggerer without holding a worker slot;
:class:`NewStacItemsTrigger` runs a DAG (through an ``AssetWatcher``) when new STAC items appear."""

from __future__ import annotations

from airflow_provider_ogc.triggers.ogc_processes import OGCJobTrigger
from airflow_provider_ogc.triggers.stac import NewStacItemsTrigger

__all__ = ["NewStacItemsTrigger", "OGCJobTrigger"]
