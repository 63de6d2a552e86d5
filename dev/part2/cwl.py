"""CWL application packages as OGC processes: parsing, workflow selection, descriptions, job orders.

Pure Python (ruamel.yaml as cwltool uses it, else PyYAML), no cwltool: the service validates a
package with cwltool separately and uses this module for all the OGC API needs from the raw document:

* :func:`parse` - request body -> CWL object (YAML as cwltool reads it, or JSON);
* :func:`select` - the workflow to deploy (``w`` query parameter, single Workflow, ``#main`` ...);
* :func:`describe` - OGC process description (id, version, title, inputs, outputs) of that workflow;
* :func:`job_order` - OGC execute ``inputs`` -> cwltool job order (``File`` inputs take URLs);
* :func:`expected_jobs` - how many tool runs a job will make (for progress reporting).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

SCHEMA_ORG = ("https://schema.org/", "http://schema.org/")
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
DEFAULT_VERSION = "1.0.0"
PROCESS_CLASSES = ("Workflow", "CommandLineTool", "ExpressionTool")


class PackageError(ValueError):
    """The package cannot be deployed (-> 400)."""


class WorkflowNotFound(PackageError):
    """The ``w`` query parameter names no process of the package (-> 400 workflow-not-found)."""


class InputError(ValueError):
    """The execute request's inputs do not fit the process (-> 400)."""


# --- parsing and selection --------------------------------------------------------------------


def parse(text: str | bytes, media_type: str) -> dict[str, Any]:
    """The CWL document of a request body (``application/cwl+json`` is JSON, everything else YAML)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise PackageError(f"the CWL document is not UTF-8: {err}") from None
    try:
        doc = json.loads(text) if media_type.endswith("json") else load_yaml(text)
    except (ValueError, yaml.YAMLError) as err:
        kind = "JSON" if media_type.endswith("json") else "YAML"
        raise PackageError(f"the CWL document is not valid {kind}: {err}") from None
    if not isinstance(doc, dict):
        raise PackageError(f"the CWL document must be a mapping, got {type(doc).__name__}")
    return doc


def load_yaml(text: str) -> Any:
    """YAML as cwltool reads it: ruamel.yaml (YAML 1.2; a cwltool dependency) if installed.

    PyYAML (YAML 1.1) rejects CWL that cwltool accepts, e.g. ``{type: File?}`` in a flow mapping,
    and reads ``on``/``yes`` as booleans.
    """
    try:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError as RuamelError
    except ImportError:
        return yaml.safe_load(text)
    try:
        return YAML(typ="safe", pure=True).load(text)
    except RuamelError as err:
        raise ValueError(str(err)) from None


def _short(ident: Any) -> str:
    """``#main`` / ``file:///x.cwl#main`` / ``main`` -> ``main``; ``#wf/input`` -> ``input``."""
    text = str(ident)
    text = text.rsplit("#", 1)[-1]
    return text.rsplit("/", 1)[-1]


def _fragment(ident: Any) -> str:
    """A process id in a ``$graph``: ``#main`` -> ``main`` (no '/' handling: ids are top-level)."""
    return str(ident).rsplit("#", 1)[-1]


def processes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    graph = doc.get("$graph")
    if graph is None:
        return [doc]
    if not isinstance(graph, list) or not all(isinstance(p, dict) for p in graph):
        raise PackageError("$graph must be a list of CWL process objects")
    return graph


def _step_runs(proc: dict[str, Any]) -> list[str]:
    steps = proc.get("steps") or {}
    step_list = list(steps.values()) if isinstance(steps, dict) else list(steps)
    return [s["run"] for s in step_list if isinstance(s, dict) and isinstance(s.get("run"), str)]


@dataclass(frozen=True)
class Selection:
    process_id: str  # OGC process id = the CWL id without '#'
    obj: dict[str, Any]  # the selected Workflow / tool
    fragment: str | None  # for cwltool: package.cwl#fragment ($graph documents), None = whole file


def select(doc: dict[str, Any], w: str | None = None, prefer: str | None = None) -> Selection:
    """Pick the process to deploy.

    ``w`` names it explicitly. Otherwise: ``prefer`` (the process id of a replace) if present, the
    single Workflow, the single top-level Workflow (one that no step runs, i.e. not a sub-workflow),
    the one with id ``main``, the only process; else an error that asks for ``w``.
    """
    in_graph = "$graph" in doc
    procs = processes(doc)
    ids = [_fragment(p["id"]) if "id" in p else None for p in procs]
    if not in_graph and ids[0] is None:
        raise PackageError("the CWL document has no 'id': give the Workflow an id, it becomes the process id")
    known = ", ".join(i for i in ids if i) or "none"
    chosen: int | None = None
    if w:
        wanted = w.lstrip("#")
        if wanted not in ids:
            raise WorkflowNotFound(f"the CWL document has no workflow {wanted!r} (ids: {known})")
        chosen = ids.index(wanted)
    elif prefer and prefer in ids:
        chosen = ids.index(prefer)
    else:
        workflows = [i for i, p in enumerate(procs) if p.get("class") == "Workflow"]
        # Top-level workflows: those no step of the package runs (a sub-workflow is not one).
        used = {_fragment(run) for p in procs for run in _step_runs(p)}
        top = [i for i in workflows if ids[i] not in used]
        if len(workflows) == 1:
            chosen = workflows[0]
        elif len(top) == 1:
            chosen = top[0]
        elif "main" in ids:
            chosen = ids.index("main")
        elif len(procs) == 1:
            chosen = 0
        else:
            candidates = top or workflows
            wf_ids = ", ".join(str(ids[i]) for i in candidates) or known
            example = str(ids[candidates[0]]) if candidates else "ID"
            raise PackageError(
                f"the CWL document has {len(candidates)} top-level workflows ({wf_ids}) and none is "
                f"'main': choose the one to deploy with the query parameter w, e.g. ?w={example}"
            )
    obj = procs[chosen]
    process_id = ids[chosen]
    if not process_id:
        raise PackageError("the selected CWL process has no 'id'")
    if obj.get("class") not in PROCESS_CLASSES:
        raise PackageError(
            f"{process_id!r} is a {obj.get('class')!r}; only {', '.join(PROCESS_CLASSES)} can be deployed"
        )
    if not re.fullmatch(r"[A-Za-z0-9_.~-]+", process_id):
        raise PackageError(f"process id {process_id!r} must use only letters, digits and _ . ~ -")
    return Selection(process_id, obj, process_id if in_graph else None)


# --- descriptions -----------------------------------------------------------------------------


def _prefixes(doc: dict[str, Any], namespaces: tuple[str, ...]) -> list[str]:
    ns = doc.get("$namespaces") or {}
    return [p for p, uri in ns.items() if uri in namespaces] if isinstance(ns, dict) else []


def _schema_org(doc: dict[str, Any], obj: dict[str, Any], name: str) -> Any:
    keys = [f"{p}:{name}" for p in _prefixes(doc, SCHEMA_ORG)] + [base + name for base in SCHEMA_ORG]
    for where in (obj, doc):
        for key in keys:
            if key in where:
                return where[key]
    return None


def version_of(doc: dict[str, Any], obj: dict[str, Any]) -> str:
    """``s:softwareVersion`` (schema.org) of the process or the document, else ``version``, else 1.0.0."""
    value = _schema_org(doc, obj, "softwareVersion")
    if value is None:
        value = obj.get("version", doc.get("version"))
    return str(value) if value not in (None, "") else DEFAULT_VERSION


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def _entries(section: Any) -> list[tuple[str, dict[str, Any]]]:
    """CWL inputs/outputs in map or list form -> [(short id, {type: ..., ...})]."""
    if section is None:
        return []
    items: list[tuple[str, Any]]
    if isinstance(section, dict):
        items = list(section.items())
    elif isinstance(section, list):
        items = [(p.get("id", ""), p) for p in section if isinstance(p, dict)]
    else:
        raise PackageError("inputs/outputs must be a map or a list")
    result = []
    for key, value in items:
        param = value if isinstance(value, dict) and "type" in value else {"type": value}
        result.append((_short(key), param))
    return result


def normalize_type(t: Any) -> Any:
    """CWL type shorthands expanded: ``T?`` -> ["null", T], ``T[]`` -> {type: array, items: T}."""
    if isinstance(t, str):
        if t.endswith("?"):
            return ["null", normalize_type(t[:-1])]
        if t.endswith("[]"):
            return {"type": "array", "items": normalize_type(t[:-2])}
        return _short(t) if "#" in t else t
    if isinstance(t, list):
        out: list[Any] = []
        for member in t:
            n = normalize_type(member)
            out.extend(n if isinstance(n, list) else [n])
        return out
    if isinstance(t, dict):
        t = dict(t)
        if t.get("type") == "array":
            t["items"] = normalize_type(t.get("items"))
        elif t.get("type") == "record":
            t["fields"] = [
                (name, {**f, "type": normalize_type(f.get("type"))}) for name, f in _entries(t.get("fields"))
            ]
        return t
    return t


def optional(t: Any) -> bool:
    return isinstance(t, list) and "null" in t


def _non_null(t: Any) -> Any:
    if isinstance(t, list):
        members = [m for m in t if m != "null"]
        return members[0] if len(members) == 1 else members
    return t


def media_type_of(fmt: Any) -> str | None:
    if isinstance(fmt, str):
        for prefix in (IANA_MEDIA_TYPES, "iana:"):
            if fmt.startswith(prefix):
                return fmt[len(prefix) :]
    return None


def schema_of(t: Any, *, output: bool = False) -> dict[str, Any]:
    """JSON schema (OpenAPI 3.0 flavour, as the OGC API wants) of a normalized CWL type."""
    t = _non_null(t)
    if isinstance(t, list):  # a real union
        return {"oneOf": [schema_of(m, output=output) for m in t]}
    if isinstance(t, dict):
        kind = t.get("type")
        if kind == "array":
            return {"type": "array", "items": schema_of(t.get("items"), output=output)}
        if kind == "enum":
            return {"type": "string", "enum": [_short(s) for s in t.get("symbols", [])]}
        if kind == "record":
            return {
                "type": "object",
                "properties": {name: schema_of(f["type"], output=output) for name, f in t.get("fields", [])},
            }
        return {}
    simple = {
        "string": {"type": "string"},
        "int": {"type": "integer"},
        "long": {"type": "integer"},
        "float": {"type": "number"},
        "double": {"type": "number"},
        "boolean": {"type": "boolean"},
    }
    if t in simple:
        return dict(simple[t])
    if t in ("File", "Directory"):
        if not output:
            return {"type": "string", "format": "uri", "description": f"URL of the input {t.lower()}"}
        if t == "File":
            return {
                "type": "object",
                "description": "the file's parsed content if it is STAC JSON, else a link {href, type}",
            }
        return {"type": "object", "description": "a link {href, type} to the directory (or its catalog.json)"}
    return {}  # Any, or a type defined elsewhere (SchemaDefRequirement): no constraint


def describe(doc: dict[str, Any], selection: Selection) -> dict[str, Any]:
    """The OGC process description (a plain dict) of the selected process."""
    obj = selection.obj
    inputs: dict[str, Any] = {}
    for name, param in _entries(obj.get("inputs")):
        t = normalize_type(param.get("type"))
        schema = schema_of(t)
        has_default = "default" in param and param["default"] is not None
        if has_default and not isinstance(param["default"], dict):
            schema["default"] = param["default"]
        entry: dict[str, Any] = {
            "title": _text(param.get("label")) or name,
            "schema": schema,
            "minOccurs": 0 if (optional(t) or has_default) else 1,
            "maxOccurs": 1,
        }
        if param.get("doc") is not None:
            entry["description"] = _text(param["doc"])
        inputs[name] = entry
    outputs: dict[str, Any] = {}
    for name, param in _entries(obj.get("outputs")):
        t = normalize_type(param.get("type"))
        schema = schema_of(t, output=True)
        media = media_type_of(param.get("format"))
        if media:
            schema["contentMediaType"] = media
        entry = {"title": _text(param.get("label")) or name, "schema": schema}
        if param.get("doc") is not None:
            entry["description"] = _text(param["doc"])
        outputs[name] = entry
    description: dict[str, Any] = {
        "id": selection.process_id,
        "version": version_of(doc, obj),
        "title": _text(obj.get("label")) or _text(_schema_org(doc, obj, "name")) or selection.process_id,
        "inputs": inputs,
        "outputs": outputs,
    }
    if obj.get("doc") is not None:
        description["description"] = _text(obj["doc"])
    keywords = _schema_org(doc, obj, "keywords")
    if isinstance(keywords, str):
        keywords = [k.strip() for k in keywords.split(",") if k.strip()]
    if isinstance(keywords, list) and keywords:
        description["keywords"] = [str(k) for k in keywords]
    return description


def input_types(selection: Selection) -> dict[str, tuple[Any, bool]]:
    """Input name -> (normalized CWL type, required)."""
    result = {}
    for name, param in _entries(selection.obj.get("inputs")):
        t = normalize_type(param.get("type"))
        required = not optional(t) and param.get("default") is None
        result[name] = (t, required)
    return result


def output_types(selection: Selection) -> dict[str, Any]:
    return {name: normalize_type(param.get("type")) for name, param in _entries(selection.obj.get("outputs"))}


# --- job orders -------------------------------------------------------------------------------


def _unqualify(value: Any) -> Any:
    """An OGC qualified value ``{"value": x, "mediaType": ...}`` -> x."""
    if isinstance(value, dict) and "value" in value and "href" not in value and "class" not in value:
        return value["value"]
    return value


def _location(value: Any, kind: str, name: str) -> dict[str, Any]:
    value = _unqualify(value)
    if isinstance(value, dict) and value.get("class") == kind:
        return value
    if isinstance(value, dict) and isinstance(value.get("href"), str):
        value = value["href"]
    if not isinstance(value, str) or not value:
        raise InputError(f"input {name!r} is a {kind}: give its URL (a string), got {value!r}")
    return {"class": kind, "location": value}


def convert(value: Any, t: Any, name: str) -> Any:
    """One OGC input value -> its CWL job order value for the (normalized) type ``t``."""
    value = _unqualify(value)
    if value is None:
        if optional(t):
            return None
        raise InputError(f"input {name!r} must not be null")
    t = _non_null(t)
    if isinstance(t, list):  # union: first member that accepts the value
        for member in t:
            try:
                return convert(value, member, name)
            except InputError:
                continue
        raise InputError(f"input {name!r}: {value!r} fits none of its types")
    if isinstance(t, dict):
        kind = t.get("type")
        if kind == "array":
            if not isinstance(value, list):
                raise InputError(f"input {name!r} must be an array, got {type(value).__name__}")
            return [convert(v, t.get("items"), f"{name}[{i}]") for i, v in enumerate(value)]
        if kind == "enum":
            symbols = [_short(s) for s in t.get("symbols", [])]
            if value not in symbols:
                raise InputError(f"input {name!r} must be one of {symbols}, got {value!r}")
            return value
        return value
    checks: dict[str, tuple[type | tuple[type, ...], str]] = {
        "string": (str, "a string"),
        "int": (int, "an integer"),
        "long": (int, "an integer"),
        "float": ((int, float), "a number"),
        "double": ((int, float), "a number"),
        "boolean": (bool, "a boolean"),
    }
    if t in checks:
        types, label = checks[t]
        bad_bool = isinstance(value, bool) and t != "boolean"
        if bad_bool or not isinstance(value, types):
            raise InputError(f"input {name!r} must be {label}, got {value!r}")
        return value
    if t in ("File", "Directory"):
        return _location(value, t, name)
    return value


def job_order(selection: Selection, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """OGC execute ``inputs`` -> cwltool job order; raises :class:`InputError` for bad inputs."""
    inputs = inputs or {}
    if not isinstance(inputs, dict):
        raise InputError("inputs must be a JSON object")
    types = input_types(selection)
    unknown = sorted(set(inputs) - set(types))
    if unknown:
        raise InputError(
            f"unknown input(s) {', '.join(unknown)}; the process has: {', '.join(types) or 'none'}"
        )
    order: dict[str, Any] = {}
    for name, (t, required) in types.items():
        if name not in inputs:
            if required:
                raise InputError(f"missing required input {name!r}")
            continue
        order[name] = convert(inputs[name], t, name)
    return order


# --- progress ---------------------------------------------------------------------------------


def expected_jobs(doc: dict[str, Any], selection: Selection, order: dict[str, Any]) -> int:
    """Estimated number of tool runs (cwltool ``[job ...]`` lines) of a job, scatter included."""
    by_id = {_fragment(p.get("id", "")): p for p in processes(doc)}

    def count(obj: dict[str, Any], values: dict[str, Any], depth: int) -> int:
        if obj.get("class") != "Workflow" or depth > 10:
            return 1
        steps = obj.get("steps") or {}
        step_list = list(steps.values()) if isinstance(steps, dict) else list(steps)
        total = 0
        for step in step_list:
            if not isinstance(step, dict):
                continue
            run = step.get("run")
            sub = (
                run if isinstance(run, dict) else by_id.get(_fragment(run)) if isinstance(run, str) else None
            )
            ins: dict[str, Any] = {}
            step_in = step.get("in") or {}
            pairs = step_in.items() if isinstance(step_in, dict) else ((i.get("id"), i) for i in step_in)
            for key, src in pairs:
                source = src.get("source") if isinstance(src, dict) else src
                if isinstance(source, str) and "/" not in source.lstrip("#"):
                    ins[_short(key)] = values.get(source.lstrip("#"))
            runs = count(sub, ins, depth + 1) if isinstance(sub, dict) else 1
            scatter = step.get("scatter")
            names = [scatter] if isinstance(scatter, str) else list(scatter or [])
            lengths = [len(v) for v in (ins.get(_short(n)) for n in names) if isinstance(v, list)]
            factor = 1
            if lengths:
                factor = max(lengths) if step.get("scatterMethod", "dotproduct") == "dotproduct" else 1
                if step.get("scatterMethod", "dotproduct") != "dotproduct":
                    for n in lengths:
                        factor *= n
            total += runs * factor
        return max(total, 1)

    defaults = {}
    for name, param in _entries(selection.obj.get("inputs")):
        if "default" in param:
            defaults[name] = param["default"]
    return count(selection.obj, {**defaults, **order}, 0)
