"""Sensors: :class:`JobStatusSensor` waits for a job submitted elsewhere."""

from __future__ import annotations

from airflow_provider_ogc.sensors.ogc_processes import JobStatusSensor

__all__ = ["JobStatusSensor"]
