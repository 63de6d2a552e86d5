"""Operators: run processes and hand their STAC results on; deploy, replace and undeploy packages."""

from __future__ import annotations

from airflow_provider_ogc.operators.application_packages import (
    DeployProcessOperator,
    GetProcessPackageOperator,
    ReplaceProcessOperator,
    UndeployProcessOperator,
)
from airflow_provider_ogc.operators.ogc_processes import ExecuteProcessOperator
from airflow_provider_ogc.operators.stac import StacSearchOperator

__all__ = [
    "DeployProcessOperator",
    "ExecuteProcessOperator",
    "GetProcessPackageOperator",
    "ReplaceProcessOperator",
    "StacSearchOperator",
    "UndeployProcessOperator",
]
