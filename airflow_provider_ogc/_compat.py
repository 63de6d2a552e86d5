"""Imports that moved between Airflow 3.1 and 3.3 (the task SDK took over the task exceptions)."""

from __future__ import annotations

import re

from airflow import __version__ as _AIRFLOW_VERSION

AIRFLOW_VERSION = tuple(int(part) for part in re.findall(r"\d+", _AIRFLOW_VERSION)[:3])
# Airflow 3.1 hashes the extra of an asset event added through an AssetAlias (fixed in 3.2): its
# values must be hashable, so lists and objects travel as JSON text there.
FLAT_ALIAS_EXTRAS = AIRFLOW_VERSION < (3, 2)

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # Airflow < 3.2
    from airflow.exceptions import (  # type: ignore[no-redef,assignment,unused-ignore]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

__all__ = [
    "AIRFLOW_VERSION",
    "FLAT_ALIAS_EXTRAS",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "TaskDeferred",
]
