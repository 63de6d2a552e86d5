"""The command-line tools of the Part 2 ``water-bodies`` CWL package (``packages/water-bodies.cwl``).

The EOAP water-bodies application package runs one container per step; here every step is a local
command using the dev stack's science (:mod:`dev.science`, :mod:`dev.water_bodies`), run by cwltool
``--no-container`` with the python of ``.venv-wraptile`` (rasterio, numpy, boto3, pystac)::

    python -m dev.part2.steps crop --input-item URL --aoi BBOX --epsg EPSG:4326 --band green  # green.tif
    python -m dev.part2.steps norm-diff green.tif nir08.tif                                 # ndwi.tif
    python -m dev.part2.steps otsu ndwi.tif                                                  # otsu.tif
    python -m dev.part2.steps stac --input-item URL ... --water-body otsu.tif ...  # stac_catalog.json

``crop`` writes the band's surface reflectance (float32, NaN = nodata) on the scene's own grid,
cropped to the AOI; ``norm-diff`` the NDWI; ``otsu`` the water mask with the seed's ``otsu.tif``
profile. ``stac`` publishes the masks and a STAC catalog to S3 in the layout of
:mod:`dev.water_bodies` (``s3://{bucket}/{job}/{job}/{item}/otsu.tif`` ...) and writes the result
items as a GeoJSON FeatureCollection (``stac_catalog.json``, the workflow's ``stac_catalog``).

Environment: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION`` (S3), ``OGC_DEV_RESULTS_BUCKET`` (default ``results``), ``OGC_JOB_ID`` (set
by the Part 2 server; else a new uuid), ``OGC_DEV_STEP_DELAY`` (seconds to pause per step).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from dev import science, water_bodies

GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
}
FLOAT_PROFILE: dict[str, Any] = {
    "driver": "GTiff",
    "dtype": "float32",
    "count": 1,
    "nodata": float("nan"),
    "compress": "deflate",
}


class StepError(RuntimeError):
    """A step cannot do its work (the message ends up in the failed job's message)."""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pause() -> None:
    delay = float(os.environ.get("OGC_DEV_STEP_DELAY", "0") or 0)
    if delay:
        time.sleep(delay)


def crop(item_url: str, aoi: str, epsg: str, band: str, out_dir: Path) -> Path:
    """Reflectance of ``band`` of the STAC item in the AOI, on the scene's grid -> ``{band}.tif``."""
    import pystac
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    from rasterio.windows import transform as window_transform

    try:
        box = science.parse_aoi(aoi)
    except ValueError as err:
        raise StepError(str(err)) from None
    try:
        aoi_crs = CRS.from_user_input(epsg)
    except CRSError as err:
        raise StepError(f"epsg {epsg!r} is not a CRS: {err}") from None
    source = pystac.Item.from_file(item_url)
    if band not in source.assets:
        raise StepError(f"item {source.id} has no asset {band} (has {', '.join(source.assets)})")
    asset = source.assets[band]
    out = out_dir / f"{band}.tif"
    with rasterio.Env(**GDAL_ENV), rasterio.open(asset.get_absolute_href()) as src:
        window = science.aoi_window(box, aoi_crs, src.crs, src.transform, src.width, src.height)
        if window is None:
            raise StepError(f"the AOI does not intersect item {source.id}")
        scale, offset, nodata = water_bodies._asset_scaling(asset, src)
        reflectance = science.to_reflectance(src.read(1, window=window), scale, offset, nodata)
        height, width = reflectance.shape
        profile = {
            **FLOAT_PROFILE,
            "width": width,
            "height": height,
            "crs": src.crs,
            "transform": window_transform(window, src.transform),
        }
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(reflectance, 1)
            dst.update_tags(SOURCE_ITEM=item_url, ITEM_ID=source.id, BAND=band)
    _log(f"crop: {source.id} {band} -> {out.name} ({height}x{width} px)")
    return out


def norm_diff(green: Path, nir: Path, out_dir: Path) -> Path:
    """NDWI of two cropped reflectance rasters (green first) -> ``ndwi.tif``."""
    import rasterio

    with rasterio.open(green) as g, rasterio.open(nir) as n:
        if (g.crs, g.transform, g.shape) != (n.crs, n.transform, n.shape):
            raise StepError(f"{green.name} and {nir.name} are not on the same grid")
        index = science.ndwi(g.read(1), n.read(1))
        tags = g.tags()
        profile = {
            **FLOAT_PROFILE,
            "width": g.width,
            "height": g.height,
            "crs": g.crs,
            "transform": g.transform,
        }
    if not np.isfinite(index).any():
        raise StepError(f"item {tags.get('ITEM_ID', '?')} has no valid pixels in the AOI")
    out = out_dir / "ndwi.tif"
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(index, 1)
        dst.update_tags(**{k: v for k, v in tags.items() if k in ("SOURCE_ITEM", "ITEM_ID")})
    _log(f"norm-diff: {green.name}, {nir.name} -> {out.name}")
    return out


def otsu(ndwi_path: Path, out_dir: Path) -> Path:
    """Otsu's threshold of the NDWI -> ``otsu.tif`` (uint8, 1 = water, nodata 0; the seed's profile)."""
    import rasterio

    with rasterio.open(ndwi_path) as src:
        index = src.read(1)
        tags = src.tags()
        grid = {"width": src.width, "height": src.height, "crs": src.crs, "transform": src.transform}
    mask, threshold = science.water_mask(index)
    out = out_dir / "otsu.tif"
    with rasterio.open(out, "w", **{**water_bodies.OUTPUT_PROFILE, **grid}) as dst:
        dst.write(mask, 1)
        dst.update_tags(NDWI_OTSU_THRESHOLD=f"{threshold:.6f}", SOURCE_ITEM=tags.get("SOURCE_ITEM", ""))
    _log(f"otsu: threshold {threshold:.4f}, {int(mask.sum())} water pixels -> {out.name}")
    return out


def _result_item(source: Any, tif_href: str, mask_path: Path) -> Any:
    """The result STAC Item of one scene, built as the pygeoapi process builds it."""
    import rasterio

    with rasterio.open(mask_path) as src:
        mask = src.read(1)
        crs, transform = src.crs, src.transform
    return water_bodies.result_item(source.id, source.datetime, mask, crs, transform, tif_href)


def stac(item_urls: list[str], masks: list[Path], out_dir: Path) -> Path:
    """Publish the masks and the STAC catalog to S3; the result items -> ``stac_catalog.json``."""
    import pystac

    if len(item_urls) != len(masks):
        raise StepError(f"{len(item_urls)} input item(s) but {len(masks)} water body raster(s)")
    job_id = os.environ.get("OGC_JOB_ID") or str(uuid.uuid1())
    bucket = os.environ.get("OGC_DEV_RESULTS_BUCKET", "results")
    root = f"s3://{bucket}/{job_id}"
    prefix = f"{root}/{job_id}"  # the collection's folder, as in dev.water_bodies
    s3 = water_bodies.s3_client()
    items = []
    for url, mask in zip(item_urls, masks, strict=True):
        source = pystac.Item.from_file(url)
        tif_href = f"{prefix}/{source.id}/otsu.tif"
        bucket_name, key = water_bodies._split_s3(tif_href)
        s3.put_object(Bucket=bucket_name, Key=key, Body=mask.read_bytes(), ContentType=water_bodies.TIFF)
        _log(f"stac: {mask} -> {tif_href}")
        items.append(_result_item(source, tif_href, mask))

    pystac.set_stac_version(water_bodies.STAC_VERSION)
    catalog = pystac.Catalog(id="catalog", description="Water bodies detection results")
    datetimes = [i.datetime for i in items if i.datetime is not None]
    collection = pystac.Collection(
        id=job_id,
        title="Processing results",
        description=f"Water bodies detected by job {job_id}",
        extent=pystac.Extent(
            pystac.SpatialExtent([water_bodies._union([i.bbox for i in items if i.bbox])]),
            pystac.TemporalExtent([[min(datetimes), max(datetimes)]] if datetimes else [[None, None]]),
        ),
        license="proprietary",
    )
    catalog.add_child(collection)
    for item in items:
        collection.add_item(item)
    catalog.normalize_hrefs(root)
    for item in items:
        item.links.sort(key=lambda link: water_bodies._LINK_ORDER.get(link.rel, 99))
    written: dict[str, str] = {}
    catalog.save(
        catalog_type=pystac.CatalogType.ABSOLUTE_PUBLISHED, stac_io=water_bodies._stac_io(s3, written)
    )
    features = [json.loads(written[item.get_self_href()]) for item in items]
    out = out_dir / "stac_catalog.json"
    out.write_text(json.dumps({"type": "FeatureCollection", "features": features, "id": job_id}, indent=2))
    _log(f"stac: {len(items)} item(s) published under {root}/catalog.json -> {out.name}")
    return out


VALUE_OPTIONS = ("--input-item", "--aoi", "--epsg", "--band", "--water-body", "--out-dir")


def _join_values(argv: list[str]) -> list[str]:
    """``--aoi -121.2,40.0,...`` -> ``--aoi=-121.2,40.0,...``: argparse takes a value starting with
    '-' for an option (cwltool passes prefix and value as separate arguments)."""
    joined: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in VALUE_OPTIONS and i + 1 < len(argv):
            joined.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.part2.steps", description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where to write (default: cwd)")
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("crop", help="crop a band of a STAC item to the AOI (reflectance)")
    p.add_argument("--input-item", required=True)
    p.add_argument("--aoi", required=True)
    p.add_argument("--epsg", default="EPSG:4326")
    p.add_argument("--band", required=True)
    p = sub.add_parser("norm-diff", help="NDWI of the cropped green and NIR rasters")
    p.add_argument("rasters", nargs=2, type=Path)
    p = sub.add_parser("otsu", help="Otsu water mask of the NDWI")
    p.add_argument("raster", type=Path)
    p = sub.add_parser("stac", help="publish the masks and their STAC catalog to S3")
    p.add_argument("--input-item", dest="items", action="append", required=True)
    p.add_argument("--water-body", dest="masks", action="append", type=Path, required=True)
    args = parser.parse_args(_join_values(sys.argv[1:] if argv is None else argv))
    out_dir: Path = args.out_dir
    try:
        if args.step == "crop":
            crop(args.input_item, args.aoi, args.epsg, args.band, out_dir)
        elif args.step == "norm-diff":
            norm_diff(args.rasters[0], args.rasters[1], out_dir)
        elif args.step == "otsu":
            otsu(args.raster, out_dir)
        else:
            stac(args.items, args.masks, out_dir)
    except StepError as err:
        _log(f"error: {args.step}: {err}")
        return 1
    _pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
