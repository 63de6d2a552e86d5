"""Application packages (OGC API - Processes Part 2): encoding them for deploy, and naming their process.

A package is a CWL document (YAML or JSON, possibly a ``$graph`` of several workflows and tools) or
an OGC application package (``application/ogcapppkg+json``) whose ``executionUnit`` holds the CWL
inline (``value``) or by reference (``href``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from os import PathLike, fspath
from pathlib import Path
from typing import Any

__all__ = ["encode_package", "is_ogc_package", "load_package", "package_process_id", "reference_package"]

CWL_YAML = "application/cwl+yaml"
CWL_JSON = "application/cwl+json"
OGC_APPPKG_JSON = "application/ogcapppkg+json"
PACKAGE_CONTENT_TYPES = (CWL_YAML, CWL_JSON, OGC_APPPKG_JSON, "application/cwl")

Package = Mapping[str, Any] | str | bytes | PathLike[str]


def _check_content_type(content_type: str | None) -> None:
    if content_type is not None and content_type not in PACKAGE_CONTENT_TYPES:
        raise ValueError(
            f"Unsupported application package content type {content_type!r}; "
            f"use one of {', '.join(PACKAGE_CONTENT_TYPES)}"
        )


def load_package(package: Package) -> str | dict[str, Any]:
    """A package as text (YAML or JSON that is not an object) or as a dict; files are read."""
    if isinstance(package, (PathLike, Path)):
        path = Path(fspath(package))
        if not path.is_file():
            raise FileNotFoundError(f"Application package file not found: {path}")
        package = path.read_text()
    if isinstance(package, bytes):
        package = package.decode()
    if isinstance(package, str):
        try:
            parsed = json.loads(package)
        except ValueError:
            return package
        return parsed if isinstance(parsed, dict) else package
    if not isinstance(package, Mapping):
        raise TypeError(
            f"An application package must be a dict, str, bytes or path, got {type(package).__name__}"
        )
    return dict(package)


def encode_package(package: Package, content_type: str | None) -> tuple[bytes, str]:
    """
    The request body and media type of an application package.

    Dicts become JSON (``application/ogcapppkg+json`` when they hold an ``executionUnit`` or
    ``processDescription``, else ``application/cwl+json``), strings are sent as they are
    (``application/cwl+yaml`` unless they parse as JSON), paths are read from disk.
    """
    _check_content_type(content_type)
    loaded = load_package(package)
    if isinstance(loaded, str):
        return loaded.encode(), content_type or CWL_YAML
    if content_type is None:
        content_type = OGC_APPPKG_JSON if is_ogc_package(loaded) else CWL_JSON
    if content_type in (CWL_YAML, "application/cwl"):
        import yaml  # Airflow depends on PyYAML

        return yaml.safe_dump(loaded, sort_keys=False).encode(), content_type
    return json.dumps(loaded).encode(), content_type


def is_ogc_package(document: Mapping[str, Any]) -> bool:
    return "executionUnit" in document or "processDescription" in document


def reference_package(url: str, media_type: str = CWL_YAML) -> dict[str, Any]:
    """An OGC application package that points to a CWL document by URL (the server fetches it)."""
    return {"executionUnit": {"href": url, "type": media_type}}


def package_process_id(package: Package, workflow_id: str | None = None) -> str | None:
    """
    The id of the process a package deploys, where the package says it without the server.

    The ``w`` workflow id if given; an OGC package's ``processDescription``; a CWL document's
    single Workflow (or its top-level ``id``). ``None`` when it cannot be told (e.g. a reference).
    """
    if workflow_id:
        return workflow_id
    loaded = load_package(package)
    if isinstance(loaded, str):
        import yaml

        try:
            loaded = yaml.safe_load(loaded)
        except yaml.YAMLError:
            return None
        if not isinstance(loaded, dict):
            return None
    if is_ogc_package(loaded):
        description = loaded.get("processDescription") or {}
        process = description.get("process", description) if isinstance(description, dict) else {}
        if isinstance(process, dict) and process.get("id"):
            return str(process["id"])
        unit = loaded.get("executionUnit")
        value = unit.get("value") if isinstance(unit, dict) else None
        return package_process_id(value) if isinstance(value, (dict, str)) else None
    graph = loaded.get("$graph")
    if isinstance(graph, list):
        workflows = [n for n in graph if isinstance(n, dict) and n.get("class") == "Workflow" and n.get("id")]
        if len(workflows) > 1:  # sub-workflows are run by a step; the top-level one is not
            workflows = [w for w in workflows if str(w["id"]).lstrip("#") not in _step_targets(graph)]
        return str(workflows[0]["id"]).lstrip("#") if len(workflows) == 1 else None
    return str(loaded["id"]).lstrip("#") if loaded.get("id") else None


def _step_targets(graph: list[Any]) -> set[str]:
    """Ids that workflow steps run (``run: "#id"``)."""
    targets = set()
    for node in graph:
        steps = node.get("steps") if isinstance(node, dict) else None
        for step in steps.values() if isinstance(steps, dict) else steps or []:
            run = step.get("run") if isinstance(step, dict) else None
            if isinstance(run, str) and run.startswith("#"):
                targets.add(run[1:])
    return targets
