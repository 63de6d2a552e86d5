"""Server-independent part of the test processes (stdlib only).

Both server adapters (``pygeoapi_processes.py`` and ``wraptile_service.py``)
run inside the server's own virtualenv with this directory on PYTHONPATH and
import this module as the top-level module ``processes_core``.  The process
descriptions and the actual work live here once, so the two servers expose
the same process ids, input names, output names and results.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NoReturn

VERSION = "1.0.0"
DEFAULT_FAIL_MESSAGE = "The fail process failed on purpose"
DEFAULT_BUCKET = "results"

# OGC process descriptions without the server-specific parts (links,
# jobControlOptions, ...).  pygeoapi uses them verbatim as PROCESS_METADATA
# and also validates inputs against them (pygeoapi itself does not validate);
# wraptile derives its pydantic fields (and thus its validation) from them.
DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "echo": {
        "title": "Echo",
        "description": "Returns `message` repeated `count` times, joined by spaces.",
        "inputs": {
            "message": {
                "title": "Message",
                "description": "The text to echo.",
                "schema": {"type": "string"},
                "minOccurs": 1,
                "maxOccurs": 1,
            },
            "count": {
                "title": "Count",
                "description": "How many times to repeat the message.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "minOccurs": 0,
                "maxOccurs": 1,
            },
        },
        "outputs": {
            "echo": {
                "title": "Echo",
                "description": "The repeated message.",
                "schema": {"type": "string"},
            }
        },
    },
    "sleep": {
        "title": "Sleep",
        "description": "Sleeps `seconds` seconds, reporting progress while running.",
        "inputs": {
            "seconds": {
                "title": "Seconds",
                "description": "How long to sleep.",
                "schema": {"type": "number", "minimum": 0},
                "minOccurs": 1,
                "maxOccurs": 1,
            }
        },
        "outputs": {
            "slept": {
                "title": "Slept",
                "description": "Seconds actually slept.",
                "schema": {"type": "number"},
            }
        },
    },
    "fail": {
        "title": "Fail",
        "description": "Always fails with `message`.",
        "inputs": {
            "message": {
                "title": "Message",
                "description": "The error message to fail with.",
                "schema": {"type": "string", "default": DEFAULT_FAIL_MESSAGE},
                "minOccurs": 0,
                "maxOccurs": 1,
            }
        },
        # wraptile cannot describe a process without outputs (it would invent
        # "return_value"), so both servers declare one that is never produced.
        "outputs": {
            "result": {
                "title": "Result",
                "description": "Never produced: the process always fails.",
                "schema": {"type": "string"},
            }
        },
    },
    "water-stac": {
        "title": "Water bodies (STAC result)",
        "description": (
            "Pretends to detect water bodies and returns a STAC catalog "
            "(GeoJSON FeatureCollection of STAC Items) pointing to S3. "
            "Nothing is written to S3."
        ),
        "inputs": {
            "item_ids": {
                "title": "Item ids",
                "description": "Ids of the input scenes; one result item per id.",
                "schema": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "minOccurs": 1,
                "maxOccurs": 1,
            },
            "bucket": {
                "title": "Bucket",
                "description": "S3 bucket the result hrefs point to.",
                "schema": {"type": "string", "default": DEFAULT_BUCKET},
                "minOccurs": 0,
                "maxOccurs": 1,
            },
        },
        "outputs": {
            "stac_catalog": {
                "title": "STAC catalog",
                "description": "FeatureCollection of STAC 1.0.0 Items.",
                "schema": {"type": "object", "contentMediaType": "application/geo+json"},
            }
        },
    },
}


class ProcessFailure(RuntimeError):
    """Raised by the `fail` process; its text is what the job reports."""


class InputError(ValueError):
    """Raised by `validate_inputs` for missing or ill-typed inputs."""


class Dismissed(RuntimeError):
    """Raised from a progress callback when the job was dismissed meanwhile."""


ProgressCallback = Callable[[int, str], None]


# --- input validation (for pygeoapi, which passes inputs through unchecked) ---

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "array": (list,),
    "object": (dict,),
}


def _check_value(name: str, value: Any, schema: dict[str, Any]) -> None:
    type_ = schema.get("type")
    # bool is a subclass of int, but JSON true/false is not a number.
    if type_ in _JSON_TYPES and (isinstance(value, bool) or not isinstance(value, _JSON_TYPES[type_])):
        raise InputError(f"input {name!r} must be of type {type_}, got {type(value).__name__}")
    if "minimum" in schema and value < schema["minimum"]:
        raise InputError(f"input {name!r} must be >= {schema['minimum']}, got {value}")
    if "maximum" in schema and value > schema["maximum"]:
        raise InputError(f"input {name!r} must be <= {schema['maximum']}, got {value}")
    if type_ == "array":
        if len(value) < schema.get("minItems", 0):
            raise InputError(f"input {name!r} needs at least {schema['minItems']} item(s)")
        for i, item in enumerate(value):
            _check_value(f"{name}[{i}]", item, schema.get("items", {}))


def validate_inputs(process_id: str, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """Check `inputs` against DESCRIPTIONS and return them with defaults filled in."""
    if not isinstance(inputs, dict):
        raise InputError("inputs must be a JSON object")
    declared = DESCRIPTIONS[process_id]["inputs"]
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise InputError(f"unknown input(s): {', '.join(unknown)}")
    result: dict[str, Any] = {}
    for name, desc in declared.items():
        schema = desc["schema"]
        if name in inputs:
            _check_value(name, inputs[name], schema)
            result[name] = inputs[name]
        elif desc.get("minOccurs", 1) >= 1:
            raise InputError(f"missing required input {name!r}")
        elif "default" in schema:
            result[name] = schema["default"]
    return result


# --- the processes' actual work ---


def echo(message: str, count: int = 1) -> str:
    return " ".join([message] * count)


def sleep(seconds: float, report: ProgressCallback, step: float = 0.1) -> float:
    """Sleep in small steps, calling `report(percent, message)` after each.

    `report` may raise (e.g. `Dismissed`) to abort; that is how the adapters
    make a dismissed job actually stop.
    """
    start = time.monotonic()
    report(0, f"Sleeping {seconds:g}s")
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        time.sleep(min(step, seconds - elapsed))
        elapsed = min(time.monotonic() - start, seconds)
        percent = int(100 * elapsed / seconds) if seconds else 100
        # Keep 100 for the final report so "100" always means "done".
        report(min(percent, 99), f"Slept {elapsed:.1f}s of {seconds:g}s")
    slept = round(time.monotonic() - start, 3)
    report(100, f"Slept {slept:g}s")
    return slept


def fail(message: str | None = None) -> NoReturn:
    raise ProcessFailure(message or DEFAULT_FAIL_MESSAGE)


_SCENE_TIME = re.compile(r"(\d{8})T(\d{6})")


def _item_datetime(item_id: str) -> str:
    # Sentinel-2 style ids carry their acquisition time; use it when present.
    m = _SCENE_TIME.search(item_id)
    if m:
        dt = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    else:
        dt = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def water_stac(
    item_ids: list[str], bucket: str = DEFAULT_BUCKET, job_id: str | None = None
) -> dict[str, Any]:
    """Build a water-bodies-like STAC result: a FeatureCollection of Items."""
    prefix = f"s3://{bucket}/{job_id or uuid.uuid4()}"
    features = []
    for i, item_id in enumerate(item_ids):
        # A small, distinct square per item so geometry and bbox are non-trivial.
        x0, y0 = round(10.0 + i * 0.1, 6), round(45.0 + i * 0.1, 6)
        x1, y1 = round(x0 + 0.1, 6), round(y0 + 0.1, 6)
        features.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "stac_extensions": [],
                "id": item_id,
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
                },
                "bbox": [x0, y0, x1, y1],
                "properties": {"datetime": _item_datetime(item_id)},
                "links": [
                    {
                        "rel": "self",
                        "href": f"{prefix}/{item_id}/{item_id}.json",
                        "type": "application/json",
                    }
                ],
                "assets": {
                    "data": {
                        "href": f"{prefix}/{item_id}/otsu.tif",
                        "type": "image/tiff; application=geotiff",
                        "title": "Water bodies mask (Otsu threshold)",
                        "roles": ["data"],
                    }
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
