"""Apache Airflow provider for OGC API - Processes.

Importing this package is cheap on purpose: DAG files import it at parse time, so
submodules (and httpx, pystac, boto3, jsonschema behind them) load only when used.
"""

from __future__ import annotations

__version__ = "0.1.0"
