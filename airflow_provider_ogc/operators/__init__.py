"""Operators: :class:`ExecuteProcessOperator` runs a process and hands its STAC results on via XCom."""

from __future__ import annotations

from airflow_provider_ogc.links.ogc_processes import OGCJobLink, OGCJobResultsLink
from airflow_provider_ogc.operators.ogc_processes import ExecuteProcessOperator, OGCJobFailedError

__all__ = ["ExecuteProcessOperator", "OGCJobFailedError", "OGCJobLink", "OGCJobResultsLink"]
