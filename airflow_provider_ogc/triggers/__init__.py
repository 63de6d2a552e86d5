"""Triggers: :class:`OGCJobTrigger` watches a job from the triggerer without holding a worker slot."""

from __future__ import annotations

from airflow_provider_ogc.triggers.ogc_processes import OGCJobTrigger

__all__ = ["OGCJobTrigger"]
