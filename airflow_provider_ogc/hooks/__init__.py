"""Hooks: :class:`OGCProcessesHook`, the client for OGC API - Processes servers."""

from __future__ import annotations

from airflow_provider_ogc.hooks.ogc_processes import OGCProcessesHook

__all__ = ["OGCProcessesHook"]
