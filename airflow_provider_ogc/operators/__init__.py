"""Operators: run processes and hand their STAC results on; deploy, replace and undeploy packages."""

from __future__ import annotations

from airflow_provider_ogc.links.ogc_processes import OGCJobLink, OGCJobResultsLink
from airflow_provider_ogc.operators.application_packages import (
    DeployProcessOperator,
    GetProcessPackageOperator,
    ReplaceProcessOperator,
    UndeployProcessOperator,
)
from airflow_provider_ogc.operators.ogc_processes import ExecuteProcessOperator, OGCJobFailedError

__all__ = [
    "DeployProcessOperator",
    "ExecuteProcessOperator",
    "GetProcessPackageOperator",
    "OGCJobFailedError",
    "OGCJobLink",
    "OGCJobResultsLink",
    "ReplaceProcessOperator",
    "UndeployProcessOperator",
]
