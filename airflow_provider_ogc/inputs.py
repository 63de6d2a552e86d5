"""Checking execute inputs against a process description before a job is submitted.

A typo in an input name or a string where a number belongs should fail the task in a second,
with the input named, not after a queue wait on the server. Each input's ``schema`` in the
process description is JSON Schema, checked with :mod:`jsonschema`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from airflow_provider_ogc.exceptions import InvalidInputsError

__all__ = ["json_inputs", "validate_inputs"]


def json_inputs(process_id: str, inputs: Any) -> dict[str, Any] | None:
    """
    The inputs as plain JSON, or an error naming every value that has no JSON form.

    Templating can hand the operator Python objects instead of JSON: a dict rendered as text, a
    set, a datetime, ``NaN``. ``json.dumps`` would fail deep in the HTTP layer (or, for ``NaN``,
    send JSON the server cannot parse), so they are named here, before anything is sent. Tuples
    become lists, as ``json.dumps`` would send them, so validation sees what the server will see.

    :param process_id: the process, for the error message.
    :param inputs: the execute request's inputs.
    :raises InvalidInputsError: ``inputs`` is not a mapping, or holds values with no JSON form.
    """
    if inputs is None:
        return None
    if not isinstance(inputs, Mapping):
        hint = (
            " (a template rendered as text? give the operator a dict, or render templates as native "
            "objects with render_template_as_native_obj=True)"
            if isinstance(inputs, str)
            else ""
        )
        raise InvalidInputsError(
            process_id, [f"inputs must be a JSON object, got {type(inputs).__name__} {inputs!r:.80}{hint}"]
        )
    problems: list[str] = []
    plain = {}
    for name, value in inputs.items():
        if not isinstance(name, str):
            problems.append(f"input name {name!r} is a {type(name).__name__}, not a string")
            continue
        plain[name] = _plain_json(value, repr(name), problems)
    if problems:
        raise InvalidInputsError(process_id, problems)
    return plain


def _plain_json(value: Any, where: str, problems: list[str]) -> Any:
    """``value`` as JSON (tuples as lists); every value without a JSON form is added to ``problems``."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            problems.append(f"{where} is {value!r}, which JSON cannot represent")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_json(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        plain = {}
        for key, v in value.items():
            if not isinstance(key, str):
                problems.append(f"{where} has the key {key!r}, a {type(key).__name__}, not a string")
                continue
            plain[key] = _plain_json(v, f"{where}[{key!r}]", problems)
        return plain
    kind = type(value).__name__
    hint = " (use a list)" if isinstance(value, (set, frozenset)) else ""
    problems.append(f"{where} is a {kind} ({value!r:.60}), which has no JSON form{hint}")
    return None


def validate_inputs(description: Mapping[str, Any], inputs: Mapping[str, Any] | None) -> None:
    """
    Check ``inputs`` against a process description.

    An input is required when its ``minOccurs`` (default 1, as in OGC API - Processes Part 1)
    is at least 1 and its schema has no ``default``. Values wrapped as qualified values
    (``{"value": ..}``) are checked by their value; references (``{"href": ..}``) are not fetched.

    :param description: the process description (``GET /processes/{id}``).
    :param inputs: the execute request's inputs.
    :raises InvalidInputsError: naming each missing, unknown or invalid input.
    """
    from jsonschema import Draft202012Validator

    process_id = str(description.get("id", "?"))
    declared = description.get("inputs") or {}
    if isinstance(declared, list):  # OGC 1.0 drafts listed inputs as an array with ids
        declared = {d.get("id"): d for d in declared if isinstance(d, dict)}
    if inputs is not None and not isinstance(inputs, Mapping):
        raise InvalidInputsError(process_id, [f"inputs must be an object, got {type(inputs).__name__}"])
    given = dict(inputs or {})
    problems: list[str] = []

    for name in sorted(set(given) - set(declared)):
        problems.append(
            f"{name!r} is not an input of this process (inputs: {', '.join(sorted(declared)) or 'none'})"
        )

    for name, spec in declared.items():
        spec = spec if isinstance(spec, dict) else {}
        raw_schema = spec.get("schema")
        schema: dict[str, Any] = raw_schema if isinstance(raw_schema, dict) else {}
        min_occurs = _int(spec.get("minOccurs"), 1)
        max_occurs = spec.get("maxOccurs", 1)
        if name not in given:
            if min_occurs >= 1 and "default" not in schema:
                problems.append(f"{name!r} is required but missing")
            continue
        value = given[name]
        many = max_occurs == "unbounded" or _int(max_occurs, 1) > 1
        values = value if many and isinstance(value, list) and schema.get("type") != "array" else [value]
        if many and len(values) < min_occurs:
            problems.append(f"{name!r} needs at least {min_occurs} value(s), got {len(values)}")
        if many and max_occurs != "unbounded" and len(values) > _int(max_occurs, 1):
            problems.append(f"{name!r} takes at most {max_occurs} value(s), got {len(values)}")
        if not schema:
            continue
        validator = Draft202012Validator(_without_refs(schema))
        for element in values:
            if isinstance(element, dict) and "href" in element and "value" not in element:
                continue  # a reference, resolved by the server
            error = min(
                validator.iter_errors(_plain_value(element, schema)), key=lambda e: len(e.path), default=None
            )
            if error is not None:
                where = "".join(f"[{p!r}]" for p in error.absolute_path)
                problems.append(f"{name!r}{where}: {error.message}")
    if problems:
        raise InvalidInputsError(process_id, problems)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _plain_value(element: Any, schema: Mapping[str, Any]) -> Any:
    """The value inside a qualified value ``{"value": x, "mediaType": ...}``, else the element itself."""
    qualified_keys = {"value", "mediaType", "encoding", "schema"}
    if (
        isinstance(element, dict)
        and "value" in element
        and set(element) <= qualified_keys
        and "value" not in (schema.get("properties") or {})
    ):
        return element["value"]
    return element


def _without_refs(schema: Any) -> Any:
    """The schema without ``$ref``s: they point into documents we do not have, so they are not checked."""
    if isinstance(schema, dict):
        return {k: _without_refs(v) for k, v in schema.items() if k != "$ref"}
    if isinstance(schema, list):
        return [_without_refs(v) for v in schema]
    return schema
