"""Validate documents against the schemas of the OGC's bundled OpenAPI document in ../shared."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

OPENAPI_URI = "urn:ogc:ogcapi-processes"


# The OGC schemas use ``oneOf`` where branches overlap (a list of strings matches both the array
# branch and the generic value branch), so even the OGC's own examples fail a strict ``oneOf``.
# Checking that a document matches at least one branch is what OpenAPI tooling does in practice.
LenientValidator = validators.extend(
    Draft202012Validator, {"oneOf": Draft202012Validator.VALIDATORS["anyOf"]}
)


@functools.cache
def _registry(path: Path) -> Registry:
    document = json.loads(path.read_text())
    return Registry().with_resource(OPENAPI_URI, Resource(contents=document, specification=DRAFT202012))


def validate(shared: Path, schema_name: str, instance: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` matches ``components/schemas/<name>``."""
    registry = _registry(shared / "ogc-api-processes" / "ogcapi-processes.bundled.json")
    schema = {"$ref": f"{OPENAPI_URI}#/components/schemas/{schema_name}"}
    LenientValidator(schema, registry=registry).validate(instance)
