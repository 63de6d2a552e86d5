"""Extra links: "OGC job" and "OGC results", read from the task's XCom."""

from __future__ import annotations

from airflow_provider_ogc.links.ogc_processes import OGCJobLink, OGCJobResultsLink

__all__ = ["OGCJobLink", "OGCJobResultsLink"]
