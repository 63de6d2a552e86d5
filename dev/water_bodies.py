"""The ``water-bodies`` process of the dev stack: STAC Items in, water masks and a STAC catalog on S3 out.

Server-independent (the pygeoapi adapter is :mod:`dev.pygeoapi_water_bodies`); runs in the
pygeoapi virtualenv (rasterio, numpy, boto3, pystac). Mirrors what the seed's ZOO-Project-DRU
deployment produces for a job ``J`` and an input item ``I``::

    s3://results/J/catalog.json                  Catalog (root)
    s3://results/J/J/collection.json             Collection "J", title "Processing results"
    s3://results/J/J/I/I.json                    Item: proj:*, datetime of the input item
    s3://results/J/J/I/otsu.tif                  uint8, nodata 0, tiled 512, LZW; 1 = water

and returns ``{"stac_catalog": FeatureCollection of the result items}``.

Configuration comes from the environment (set by :mod:`dev.stack`): ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``OGC_DEV_RESULTS_BUCKET`` (default ``results``), ``OGC_DEV_STEP_DELAY`` (seconds to pause after
each progress report, default 0: lets a human or a test watch the job run).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from dev import science

DESCRIPTION: dict[str, Any] = {
    "title": "Water bodies detection",
    "description": (
        "Detects water bodies in Landsat Collection 2 Level-2 scenes: crops the green and NIR bands "
        "to the area of interest, computes the NDWI, applies Otsu's threshold and publishes the "
        "water masks (otsu.tif) with a STAC catalog on S3 (dev stack re-implementation of the "
        "EOEPCA water-bodies application)."
    ),
    "inputs": {
        "stac_items": {
            "title": "Landsat-8/9 acquisitions references",
            "description": "URLs of Landsat C2 L2 STAC Items (with green and nir08 COG assets).",
            "schema": {"type": "array", "items": {"type": "string", "format": "uri"}, "minItems": 1},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "aoi": {
            "title": "Area of interest",
            "description": "Bounding box 'minx,miny,maxx,maxy' in the CRS given by `epsg`.",
            "schema": {"type": "string"},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "epsg": {
            "title": "EPSG code",
            "description": "CRS of `aoi`.",
            "schema": {"type": "string", "default": "EPSG:4326"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "bands": {
            "title": "Bands used for the NDWI",
            "description": "Asset keys of the green and the near-infrared band, in that order.",
            "schema": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 2,
                "maxItems": 2,
                "default": ["green", "nir08"],
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "stac_catalog": {
            "title": "STAC catalog of the results",
            "description": "GeoJSON FeatureCollection of the result STAC Items (water masks on S3).",
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        }
    },
}

PROJECTION_V1_1 = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
RASTER_V1_1 = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
TIFF = "image/tiff; application=geotiff"
STAC_VERSION = "1.0.0"  # what the seed's results carry (pystac would write its newest, 1.1.0)

# The seed's otsu.tif profile.
OUTPUT_PROFILE: dict[str, Any] = {
    "driver": "GTiff",
    "dtype": "uint8",
    "nodata": 0,
    "count": 1,
    "tiled": True,
    "blockxsize": 512,
    "blockysize": 512,
    "compress": "lzw",
    "interleave": "band",
}

# Steps reported per scene (the progress messages say which scene and which step).
STEPS = (
    "reading the STAC item",
    "reading {bands} in the AOI",
    "computing NDWI",
    "Otsu threshold",
    "writing otsu.tif",
)

Report = Callable[[int, str], None]


class InputError(ValueError):
    """The execute request's inputs are unusable."""


def validate(inputs: Any) -> dict[str, Any]:
    """Check the execute inputs; return them with defaults filled in."""
    if not isinstance(inputs, dict):
        raise InputError("inputs must be a JSON object")
    unknown = sorted(set(inputs) - set(DESCRIPTION["inputs"]))
    if unknown:
        raise InputError(f"unknown input(s): {', '.join(unknown)}")
    items = inputs.get("stac_items")
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise InputError("stac_items must be a non-empty list of STAC Item URLs")
    if "aoi" not in inputs:
        raise InputError("missing required input 'aoi'")
    try:
        aoi = science.parse_aoi(inputs["aoi"])
    except ValueError as err:
        raise InputError(str(err)) from None
    epsg = inputs.get("epsg", "EPSG:4326")
    if not isinstance(epsg, str):
        raise InputError(f"epsg must be a string such as 'EPSG:4326', got {epsg!r}")
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        crs = CRS.from_user_input(epsg)
    except CRSError as err:
        raise InputError(f"epsg {epsg!r} is not a CRS: {err}") from None
    bands = inputs.get("bands", ["green", "nir08"])
    if not (isinstance(bands, list) and len(bands) == 2 and all(isinstance(b, str) and b for b in bands)):
        raise InputError(f"bands must be two asset keys [green, nir], got {bands!r}")
    return {"stac_items": items, "aoi": aoi, "epsg": epsg, "aoi_crs": crs, "bands": bands}


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def _asset_scaling(asset: Any, src: Any) -> tuple[float, float, float | None]:
    """(scale, offset, nodata) from the asset's raster:bands, else from the GeoTIFF."""
    bands = asset.extra_fields.get("raster:bands") or [{}]
    band = bands[0] if isinstance(bands[0], dict) else {}
    scale = float(band.get("scale", src.scales[0] or 1.0))
    offset = float(band.get("offset", src.offsets[0] or 0.0))
    nodata = band.get("nodata", src.nodata)
    return scale, offset, None if nodata is None else float(nodata)


class _Progress:
    def __init__(self, report: Report, n_items: int, delay: float) -> None:
        self.report, self.n_items, self.delay = report, n_items, delay
        self.total = n_items * len(STEPS)
        self.done = 0

    def step(self, index: int, item_id: str, message: str) -> None:
        # 10 % .. 90 % across all scenes' steps; 95/100 are pygeoapi's own "writing output"/"complete".
        percent = 10 + int(80 * self.done / self.total)
        self.report(percent, f"[{index + 1}/{self.n_items}] {item_id}: {message}")
        self.done += 1
        if self.delay:
            time.sleep(self.delay)


def _process_item(
    url: str,
    index: int,
    aoi: tuple[float, float, float, float],
    aoi_crs: Any,
    bands: list[str],
    prefix: str,
    s3: Any,
    progress: _Progress,
) -> Any:
    import pystac
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.windows import transform as window_transform

    progress.step(index, url.rsplit("/", 1)[-1], STEPS[0])
    source = pystac.Item.from_file(url)
    item_id = source.id
    missing = [b for b in bands if b not in source.assets]
    if missing:
        raise InputError(
            f"item {item_id} has no asset(s) {', '.join(missing)} (has {', '.join(source.assets)})"
        )

    progress.step(index, item_id, STEPS[1].format(bands=" and ".join(bands)))
    reflectance = []
    grid: dict[str, Any] = {}
    for band in bands:
        asset = source.assets[band]
        with rasterio.open(asset.get_absolute_href()) as src:
            window = science.aoi_window(aoi, aoi_crs, src.crs, src.transform, src.width, src.height)
            if window is None:
                raise InputError(f"the AOI does not intersect item {item_id}")
            current = {"crs": src.crs, "transform": window_transform(window, src.transform), "window": window}
            if grid and (grid["crs"] != current["crs"] or grid["transform"] != current["transform"]):
                raise InputError(f"item {item_id}: bands {bands} are not on the same grid")
            grid = current
            scale, offset, nodata = _asset_scaling(asset, src)
            dn = src.read(1, window=window)
            reflectance.append(science.to_reflectance(dn, scale, offset, nodata))

    progress.step(index, item_id, STEPS[2])
    index_ = science.ndwi(reflectance[0], reflectance[1])
    if not np.isfinite(index_).any():
        raise InputError(f"item {item_id} has no valid pixels in the AOI")

    progress.step(index, item_id, STEPS[3])
    mask, threshold = science.water_mask(index_)

    progress.step(index, item_id, STEPS[4])
    height, width = mask.shape
    transform = grid["transform"]
    profile = {**OUTPUT_PROFILE, "width": width, "height": height, "crs": grid["crs"], "transform": transform}
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(mask, 1)
            dst.update_tags(NDWI_OTSU_THRESHOLD=f"{threshold:.6f}", SOURCE_ITEM=url)
        tif_bytes = mem.read()
    tif_href = f"{prefix}/{item_id}/otsu.tif"
    bucket, key = _split_s3(tif_href)
    s3.put_object(Bucket=bucket, Key=key, Body=tif_bytes, ContentType=TIFF)

    return result_item(item_id, source.datetime, mask, grid["crs"], transform, tif_href)


def result_item(
    item_id: str, datetime: Any, mask: np.ndarray, crs: Any, transform: Any, tif_href: str
) -> Any:
    """
    The result STAC Item of one scene: footprint, projection, raster statistics, and the mask asset.

    :param item_id: the source scene's id (kept for the result item).
    :param datetime: the source scene's datetime.
    :param mask: the water mask (uint8, 1 = water, 0 = nodata).
    :param crs: the mask's CRS (rasterio).
    :param transform: the mask's affine transform.
    :param tif_href: where the mask GeoTIFF was written (``s3://...``).
    """
    import pystac
    from rasterio.warp import transform as warp_transform

    height, width = mask.shape
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * width, top + transform.e * height
    xs, ys = [left, right, right, left, left], [bottom, bottom, top, top, bottom]
    lons, lats = warp_transform(crs, "EPSG:4326", xs, ys)
    statistics, histogram = science.band_stats(mask, 0)
    raster_band: dict[str, Any] = {
        "data_type": "uint8",
        "scale": 1.0,
        "offset": 0.0,
        "sampling": "area",
        "nodata": 0.0,
        "statistics": statistics,
    }
    if histogram is not None:
        raster_band["histogram"] = histogram
    epsg = crs.to_epsg()
    item = pystac.Item(
        id=item_id,
        geometry={"type": "Polygon", "coordinates": [[[x, y] for x, y in zip(lons, lats, strict=True)]]},
        bbox=[min(lons), min(lats), max(lons), max(lats)],
        datetime=datetime,
        properties={
            "proj:epsg": epsg,
            "proj:geometry": {
                "type": "Polygon",
                "coordinates": [[[x, y] for x, y in zip(xs, ys, strict=True)]],
            },
            "proj:bbox": [left, bottom, right, top],
            "proj:shape": [height, width],
            "proj:transform": list(transform),
        },
        stac_extensions=[PROJECTION_V1_1, RASTER_V1_1],
    )
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    item.add_asset(
        "data",
        pystac.Asset(
            href=tif_href,
            media_type=TIFF,
            roles=["data", "visual"],
            extra_fields={
                "raster:bands": [raster_band],
                "storage:platform": "eoap",
                "storage:requester_pays": False,
                "storage:tier": "Standard",
                "storage:region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                "storage:endpoint": endpoint,
            },
        ),
    )
    return item


def _stac_io(s3: Any, written: dict[str, str]) -> Any:
    from pystac.stac_io import DefaultStacIO

    class S3StacIO(DefaultStacIO):
        """pystac I/O that writes s3:// hrefs with boto3 (and remembers what it wrote)."""

        def read_text_from_href(self, href: str) -> str:
            if href.startswith("s3://"):
                bucket, key = _split_s3(href)
                return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))
            return str(super().read_text_from_href(href))

        def write_text_to_href(self, href: str, txt: str) -> None:
            if href.startswith("s3://"):
                bucket, key = _split_s3(href)
                s3.put_object(
                    Bucket=bucket, Key=key, Body=txt.encode("utf-8"), ContentType="application/json"
                )
                written[href] = txt
            else:
                super().write_text_to_href(href, txt)

    return S3StacIO()


_LINK_ORDER = {"collection": 0, "root": 1, "self": 2, "parent": 3}


def run(
    stac_items: list[str],
    aoi: tuple[float, float, float, float],
    aoi_crs: Any,
    bands: list[str],
    job_id: str | None = None,
    report: Report | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Process every item; publish masks and catalog; return the result FeatureCollection."""
    import pystac

    job_id = job_id or str(uuid.uuid1())
    bucket = os.environ.get("OGC_DEV_RESULTS_BUCKET", "results")
    delay = float(os.environ.get("OGC_DEV_STEP_DELAY", "0") or 0)
    progress = _Progress(report or (lambda _p, _m: None), len(stac_items), delay)
    root = f"s3://{bucket}/{job_id}"
    prefix = f"{root}/{job_id}"  # the collection's folder
    s3 = s3_client()

    import rasterio

    gdal_env = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MAX_RETRY": "3",
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
    }
    with rasterio.Env(**gdal_env):
        items = [
            _process_item(url, i, aoi, aoi_crs, bands, prefix, s3, progress)
            for i, url in enumerate(stac_items)
        ]

    if report is not None:
        report(92, f"writing the STAC catalog of {len(items)} item(s) to {root}/catalog.json")
    pystac.set_stac_version(STAC_VERSION)
    catalog = pystac.Catalog(id="catalog", description="Water bodies detection results")
    datetimes = [i.datetime for i in items if i.datetime is not None]
    collection = pystac.Collection(
        id=job_id,
        title="Processing results",
        description=f"Water bodies detected by job {job_id}",
        extent=pystac.Extent(
            pystac.SpatialExtent([_union([i.bbox for i in items if i.bbox])]),
            pystac.TemporalExtent([[min(datetimes), max(datetimes)]] if datetimes else [[None, None]]),
        ),
        license="proprietary",
    )
    catalog.add_child(collection)
    for item in items:
        collection.add_item(item)
    catalog.normalize_hrefs(root)
    for item in items:
        item.links.sort(key=lambda link: _LINK_ORDER.get(link.rel, 99))
    written: dict[str, str] = {}
    catalog.save(catalog_type=pystac.CatalogType.ABSOLUTE_PUBLISHED, stac_io=_stac_io(s3, written))
    features = [json.loads(written[item.get_self_href()]) for item in items]
    return {"type": "FeatureCollection", "features": features, "id": job_id}


def _union(boxes: list[list[float]]) -> list[float]:
    if not boxes:
        return [-180.0, -90.0, 180.0, 90.0]
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
