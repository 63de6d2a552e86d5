"""Finding STAC items in a job's results and reducing them to what fits in XCom: hrefs.

EO application results come in several shapes: the seed's ``stac_catalog`` output holding a
GeoJSON FeatureCollection of Items (often wrapped as a qualified value ``{"value": ...}``), an
ItemCollection, a single Item, or a link to a Catalog or Collection whose items must be read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_ogc.exceptions import StacResultsError

__all__ = ["StacResults", "extract_stac", "item_href", "item_summary"]

JsonReader = Callable[[str], Any]
MAX_CATALOG_DOCUMENTS = 10_000


@dataclass(frozen=True)
class StacResults:
    """
    The STAC items of a job, reduced to hrefs.

    :param item_hrefs: each item's ``self`` href, in the order the server gave them.
    :param asset_hrefs: item id to {asset key: asset href}.
    :param outputs: the ids of the outputs the items came from.
    :param items: per item: ``item_id``, ``href``, ``collection``, ``datetime``, ``bbox`` and
        ``data_assets`` (the hrefs of its assets with the ``data`` role, or of all when none has it).
    """

    item_hrefs: list[str]
    asset_hrefs: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def summary(self, limit: int = 5) -> str:
        """A few lines for the task log."""
        lines = [f"{len(self.item_hrefs)} STAC item(s) from output(s) {', '.join(self.outputs) or '-'}:"]
        for href in self.item_hrefs[:limit]:
            lines.append(f"  {href}")
        if len(self.item_hrefs) > limit:
            lines.append(f"  ... and {len(self.item_hrefs) - limit} more")
        return "\n".join(lines)


def extract_stac(
    results: Any, *, output: str | None = None, read_json: JsonReader | None = None
) -> StacResults | None:
    """
    Find STAC items in a results document.

    :param results: the decoded results (``{output_id: value}``) or a raw STAC document.
    :param output: look only at this output; an error if it is missing.
    :param read_json: reads a linked STAC document (http(s), s3); needed only for links.
    :return: the items' hrefs, or ``None`` when the results hold no STAC.
    :raises StacResultsError: STAC items without a ``self`` href, or a missing ``output``.
    """
    candidates: list[tuple[str, Any]]
    if output is not None:
        if not isinstance(results, dict) or output not in results:
            available = ", ".join(sorted(results)) if isinstance(results, dict) else type(results).__name__
            raise StacResultsError(f"The results have no output {output!r} (outputs: {available or 'none'})")
        candidates = [(output, results[output])]
    elif _stac_kind(results) is not None:
        candidates = [("(document)", results)]
    elif isinstance(results, dict):
        candidates = list(results.items())
    else:
        return None

    items: list[dict[str, Any]] = []
    outputs: list[str] = []
    for name, value in candidates:
        found = list(_items_in(value, read_json))
        if found:
            items.extend(found)
            outputs.append(name)
    if not items:
        if output is not None:
            raise StacResultsError(f"Output {output!r} holds no STAC items")
        return None
    return _reduce(items, outputs)


def _reduce(raw_items: list[dict[str, Any]], outputs: list[str]) -> StacResults:
    import pystac

    hrefs: list[str] = []
    assets: dict[str, dict[str, str]] = {}
    items: list[dict[str, Any]] = []
    for raw in raw_items:
        try:
            item = pystac.Item.from_dict(raw, preserve_dict=True, migrate=False)
        except Exception as err:
            raise StacResultsError(f"Invalid STAC item {raw.get('id')!r}: {err}") from err
        self_href = item.get_self_href()
        if not self_href:
            raise StacResultsError(
                f"STAC item {item.id!r} has no 'self' link, so it cannot be passed to downstream tasks "
                "by href; the process must publish its items (e.g. to S3) and link them"
            )
        hrefs.append(self_href)
        assets[item.id] = {key: asset.get_absolute_href() or asset.href for key, asset in item.assets.items()}
        data = [key for key, asset in item.assets.items() if "data" in (asset.roles or [])]
        items.append(
            {
                "item_id": item.id,
                "href": self_href,
                "collection": item.collection_id,
                "datetime": raw.get("properties", {}).get("datetime"),
                "bbox": item.bbox,
                "data_assets": {key: assets[item.id][key] for key in data or assets[item.id]},
            }
        )
    return StacResults(item_hrefs=hrefs, asset_hrefs=assets, outputs=outputs, items=items)


def _unwrap(value: Any) -> Any:
    """A qualified value ``{"value": x, "mediaType": ...}`` or a JSON string, opened up."""
    if isinstance(value, dict) and "value" in value and "type" not in value:
        value = value["value"]
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return value


def _stac_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind == "Feature" and "stac_version" in value:
        return "Item"
    if kind == "FeatureCollection" and any(
        isinstance(f, dict) and "stac_version" in f for f in value.get("features") or []
    ):
        return "ItemCollection"
    if kind in ("Catalog", "Collection") and "stac_version" in value:
        return kind
    return None


def _is_link(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("href"), str) and _stac_kind(value) is None


def _may_be_stac(link: dict[str, Any]) -> bool:
    """
    Whether a link may point to a STAC document, judged without fetching it.

    Outputs passed by reference (a GeoTIFF, a zip) are links too: reading one as JSON would
    download it only to fail. A link is followed when its media type is JSON, or, untyped, when
    its file name ends in ``.json``/``.geojson`` or has no extension (an API path).
    """
    from urllib.parse import urlsplit

    media = link.get("type")
    if isinstance(media, str) and media.strip():
        return "json" in media.lower()
    name = urlsplit(link["href"]).path.rsplit("/", 1)[-1].lower()
    return "." not in name or name.endswith((".json", ".geojson"))


def _items_in(value: Any, read_json: JsonReader | None) -> Iterator[dict[str, Any]]:
    value = _unwrap(value)
    if isinstance(value, list):
        for element in value:
            yield from _items_in(element, read_json)
        return
    if _is_link(value):
        if read_json is None or not _may_be_stac(value):
            return
        document = _read_linked(read_json, value["href"], "the results")
        if _stac_kind(document) is None:
            return
        value = _with_self(document, value["href"])
    kind = _stac_kind(value)
    if kind == "Item":
        yield value
    elif kind == "ItemCollection":
        yield from (f for f in value["features"] if isinstance(f, dict))
    elif kind in ("Catalog", "Collection"):
        if read_json is None:
            raise StacResultsError(f"The results link a STAC {kind}; reading its items needs a reader")
        yield from _walk_catalog(value, read_json)


def _read_linked(read_json: JsonReader, href: str, linked_from: str) -> Any:
    """
    Read a linked STAC document; a failure says which document, and from where it was linked.

    An HTTP error keeps its type and status (so a 503 stays retryable and a 404 does not); an
    unreadable S3 object becomes a :class:`StacResultsError`.
    """
    from airflow_provider_ogc.exceptions import OGCProcessesAPIError
    from airflow_provider_ogc.s3 import S3LocationError

    where = f"Cannot read the STAC document {href} linked from {linked_from}"
    try:
        return read_json(href)
    except OGCProcessesAPIError as err:
        raise type(err)(
            f"{where}: {err}",
            http_status=err.http_status,
            type=err.type,
            title=err.title,
            detail=err.detail,
            method=err.method,
            url=err.url,
            retry_after=err.retry_after,
        ) from err
    except S3LocationError as err:
        raise StacResultsError(f"{where}: {err}") from err


def _links(document: dict[str, Any]) -> list[dict[str, Any]]:
    links = document.get("links")
    return [link for link in links if isinstance(link, dict)] if isinstance(links, list) else []


def _with_self(document: dict[str, Any], href: str) -> dict[str, Any]:
    links = document.get("links")
    if not isinstance(links, list):
        links = document["links"] = []
    if not any(isinstance(link, dict) and link.get("rel") == "self" for link in links):
        links.append({"rel": "self", "href": href, "type": "application/json"})
    return document


def _walk_catalog(root: dict[str, Any], read_json: JsonReader) -> Iterator[dict[str, Any]]:
    """Breadth-first over ``child`` and ``item`` links, resolving relative hrefs."""
    from urllib.parse import urljoin

    queue = [root]
    seen = 0
    while queue:
        node = queue.pop(0)
        seen += 1
        if seen > MAX_CATALOG_DOCUMENTS:
            raise StacResultsError(f"The STAC catalog has more than {MAX_CATALOG_DOCUMENTS} documents")
        base = next((str(link["href"]) for link in _links(node) if link.get("rel") == "self"), "")
        for link in _links(node):
            rel, href = link.get("rel"), link.get("href")
            if rel not in ("item", "child") or not isinstance(href, str):
                continue
            absolute = _join(base, href, urljoin)
            linked_from = f"the STAC {node.get('type', 'catalog')} {base or node.get('id', '')}".rstrip()
            raw = _read_linked(read_json, absolute, linked_from)
            if not isinstance(raw, dict):
                got = "an empty body" if raw is None else f"a JSON {type(raw).__name__}"
                raise StacResultsError(
                    f"The STAC {rel} {absolute} linked from {linked_from} is not a JSON object (got {got})"
                )
            document = _with_self(raw, absolute)
            if rel == "item":
                yield document
            else:
                queue.append(document)


def _join(base: str, href: str, urljoin: Callable[[str, str], str]) -> str:
    if "://" in href or not base:
        return href
    if base.startswith("s3://"):
        bucket_path = base[len("s3://") :]
        return "s3://" + urljoin("/" + bucket_path, href).lstrip("/")
    return urljoin(base, href)


def item_href(item: dict[str, Any], api_root: str) -> str:
    """
    Where a STAC API item can be read: its ``self`` link, else the API's canonical item URL.

    :param item: the item as returned by ``/search``.
    :param api_root: the API's root URL, without a trailing slash.
    """
    for link in _links(item):
        if link.get("rel") == "self" and isinstance(link.get("href"), str):
            return str(link["href"])
    if not item.get("collection") or not item.get("id"):
        raise StacResultsError(f"STAC item {item.get('id')!r} has neither a 'self' link nor a collection")
    return f"{api_root}/collections/{item['collection']}/items/{item['id']}"


def item_summary(item: dict[str, Any]) -> dict[str, Any]:
    """What a downstream task or a log wants to know of an item without reading it."""
    properties = item.get("properties") or {}
    return {
        "id": item.get("id"),
        "collection": item.get("collection"),
        "datetime": properties.get("datetime"),
        "bbox": item.get("bbox"),
        "eo:cloud_cover": properties.get("eo:cloud_cover"),
    }
