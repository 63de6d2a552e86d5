"""Server output copied from the seed scenario (a real ZOO-Project-DRU deployment)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

SEED_JOB_ID = "68046976-7dcb-11f0-90ac-2a20aea25780"


def seed_feature_collection(shared: Path) -> dict[str, Any]:
    """The ``stac_catalog`` FeatureCollection the seed's job returned, parsed from the seed text."""
    text = (shared / "seed" / "execute-and-monitor-water-bodies.txt").read_text()
    marker = "STAC Catalog URI: "
    start = text.index(marker) + len(marker)
    line = text[start:].splitlines()[0]
    value = ast.literal_eval(line)
    assert isinstance(value, dict)
    return value


def zoo_status_info(base: str, status: str = "running", job_id: str = SEED_JOB_ID) -> dict[str, Any]:
    """A ZOO-Project-DRU statusInfo: jobID, type, processID, timestamps and a ``monitor`` link."""
    return {
        "jobID": job_id,
        "type": "process",
        "processID": "water-bodies",
        "created": "2025-08-20T13:38:25.143Z",
        "started": "2025-08-20T13:38:25.143Z",
        "updated": "2025-08-20T13:38:26.001Z",
        "status": status,
        "message": "ZOO-Kernel accepted to run your service!",
        "progress": 0 if status != "successful" else 100,
        "links": [
            {
                "title": "Status location",
                "rel": "monitor",
                "type": "application/json",
                "href": f"{base}/jobs/{job_id}",
            }
        ],
    }
