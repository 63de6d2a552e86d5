"""Render the synthetic Landsat C2 L2 scenes, publish their COGs to S3, write their STAC Items.

Deterministic (fixed seeds): the same bytes on every run. Per scene (:data:`dev.scenes.SCENES`:
three footprints, four dates each), two Cloud-Optimized GeoTIFFs (``green`` = SR_B3,
``nir08`` = SR_B5; uint16 DN with scale 2.75e-5 and offset -0.2 like Landsat Collection 2 Level-2
surface reflectance, nodata 0 outside the band's footprint), uploaded to the stack's ``inputs``
bucket (readable anonymously over plain HTTP), and a STAC Item shaped like the Planetary
Computer's ``landsat-c2-l2`` items (``datetime``, ``eo:cloud_cover``, ``proj:*``, ``raster:bands``,
``eo:bands``) whose asset hrefs are those HTTP URLs. The items and their collection are written
as files (``items.ndjson``, ``collection.json``) for :mod:`dev.stac_api` to load into pgstac;
the STAC API serves them (and makes their links).

Run by :mod:`dev.stack` with the pygeoapi virtualenv's interpreter (rasterio, numpy, boto3)::

    python -m dev.synth --endpoint http://127.0.0.1:PORT --out WORKDIR/inputs

:func:`plan` lists the acquisitions (id, datetime, cloud cover, bbox, footprint) without
rendering anything: what a search of the STAC API should find.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dev import scenes as sc
from dev import truth

# Land: a smooth mix of vegetation (t=0) and bare soil (t=1), in surface reflectance.
VEGETATION = {"green": 0.05, "nir08": 0.30}
SOIL = {"green": 0.12, "nir08": 0.19}
NOISE_SIGMA = 0.006
SUPERSAMPLE = 4
COG_BLOCKSIZE = 256


def _land_texture(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth field in [0, 1] in world coordinates, so overlapping scenes agree."""
    t = (
        0.5
        + 0.28 * np.sin(2 * np.pi * x / 7300.0 + 0.7) * np.cos(2 * np.pi * y / 5100.0 + 1.9)
        + 0.18 * np.sin(2 * np.pi * (x + y) / 2300.0 + 4.1)
        + 0.08 * np.cos(2 * np.pi * (x - 2 * y) / 900.0 + 2.3)
    )
    clipped: np.ndarray = np.clip(t, 0.0, 1.0)
    return clipped


def _water_mix(scene: sc.Scene) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per pixel: lake area fraction, and the mean water reflectance of its lake sub-pixels."""
    h, w = scene.shape
    s = SUPERSAMPLE
    frac = np.zeros(scene.shape, dtype=np.float64)
    water = {band: np.zeros(scene.shape, dtype=np.float64) for band in sc.BANDS}
    a, _, c, _, e, f = scene.transform
    for lake in sc.LAKES:
        # Evaluate only the pixels of the lake's bounding box (plus one pixel).
        if isinstance(lake, sc.Ellipse):
            r = max(lake.a, lake.b)
            minx, maxx, miny, maxy = lake.cx - r, lake.cx + r, lake.cy - r, lake.cy + r
        else:
            xs, ys = zip(*lake.vertices, strict=True)
            minx, maxx, miny, maxy = min(xs), max(xs), min(ys), max(ys)
        c0 = max(int(np.floor((minx - c) / a)) - 1, 0)
        c1 = min(int(np.ceil((maxx - c) / a)) + 1, w)
        r0 = max(int(np.floor((maxy - f) / e)) - 1, 0)
        r1 = min(int(np.ceil((miny - f) / e)) + 1, h)
        if c0 >= c1 or r0 >= r1:
            continue
        window_transform = (a, 0.0, c + c0 * a, 0.0, e, f + r0 * e)
        x, y = truth._pixel_centres(window_transform, (r1 - r0, c1 - c0), s)
        if isinstance(lake, sc.Ellipse):
            inside = truth._in_ellipse(x, y, lake)
        else:
            inside = truth.in_polygon(x, y, lake.vertices)
        lake_frac = inside.reshape(r1 - r0, s, c1 - c0, s).mean(axis=(1, 3))
        # Lakes do not overlap, so adding up is exact.
        frac[r0:r1, c0:c1] += lake_frac
        water["green"][r0:r1, c0:c1] += lake_frac * lake.green
        water["nir08"][r0:r1, c0:c1] += lake_frac * lake.nir
    frac = np.clip(frac, 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        for band in water:
            water[band] = np.where(frac > 0, water[band] / np.maximum(frac, 1e-9), 0.0)
    return frac, water


@functools.lru_cache(maxsize=8)
def _grid_fields(
    transform: tuple[float, ...], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """What every acquisition of a footprint shares: pixel centres, land texture, lake mix."""
    grid = sc.Scene("grid", "", 0, 0, transform[2], transform[5], shape[1], shape[0], (), 0)
    x, y = truth._pixel_centres(transform, shape)
    frac, water = _water_mix(grid)
    return x, y, _land_texture(x, y), frac, water


def render(item_id: str) -> dict[str, np.ndarray]:
    """The scene's bands as uint16 DN arrays (nodata 0), keyed by asset name."""
    scene = sc.scene(item_id)
    rng = np.random.default_rng(scene.seed)
    x, y, t, frac, water = _grid_fields(scene.transform, scene.shape)
    out = {}
    for band in sc.BANDS:
        land = scene.gain * ((1 - t) * VEGETATION[band] + t * SOIL[band])
        refl = frac * water[band] + (1 - frac) * land
        refl = refl + rng.normal(0.0, NOISE_SIGMA, size=refl.shape)
        dn = np.clip(np.round((refl - sc.SR_OFFSET) / sc.SR_SCALE), 1, 65535).astype(np.uint16)
        dn[~truth.band_valid(item_id, band, x, y)] = sc.NODATA
        out[band] = dn
    return out


def write_cog(path: Path, data: np.ndarray, scene: sc.Scene, band: str) -> None:
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy
    from rasterio.transform import Affine

    profile = {
        "driver": "GTiff",
        "dtype": "uint16",
        "nodata": sc.NODATA,
        "width": scene.width,
        "height": scene.height,
        "count": 1,
        "crs": sc.CRS,
        "transform": Affine(*scene.transform),
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(data, 1)
            tmp.scales = (sc.SR_SCALE,)
            tmp.offsets = (sc.SR_OFFSET,)
            tmp.set_band_description(1, sc.BANDS[band][0])
        with mem.open() as tmp:
            rio_copy(
                tmp,
                str(path),
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="2",
                BLOCKSIZE=str(COG_BLOCKSIZE),
                OVERVIEW_RESAMPLING="NEAREST",
            )
    with rasterio.open(path) as check:  # the scale/offset survive the COG copy
        assert check.scales == (sc.SR_SCALE,), check.scales


def _lonlat(xs: list[float], ys: list[float]) -> list[list[float]]:
    from rasterio.warp import transform

    lons, lats = transform(sc.CRS, "EPSG:4326", xs, ys)
    return [[round(lon, 9), round(lat, 9)] for lon, lat in zip(lons, lats, strict=True)]


def _footprint_lonlat(scene: sc.Scene) -> list[list[float]]:
    """The valid-data footprint (green band) as a closed lon/lat ring."""
    fx, fy = zip(*scene.footprint("green"), strict=True)
    return _lonlat([*fx, fx[0]], [*fy, fy[0]])


def _bbox(ring: list[list[float]]) -> list[float]:
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    return [min(lons), min(lats), max(lons), max(lats)]


def plan() -> list[dict[str, Any]]:
    """Every acquisition the STAC API serves: id, datetime, eo:cloud_cover, bbox and footprint ring.

    In (path, row, datetime) order, as :data:`dev.scenes.SCENES`. Needs rasterio (lon/lat).
    """
    out = []
    for item_id, scene in sc.SCENES.items():
        ring = _footprint_lonlat(scene)
        out.append(
            {
                "id": item_id,
                "datetime": scene.datetime,
                "eo:cloud_cover": scene.cloud_cover,
                "wrs_path_row": f"{scene.wrs_path:03d}/{scene.wrs_row:03d}",
                "bbox": _bbox(ring),
                "footprint": ring,
            }
        )
    return out


def asset_href(s3_endpoint: str, item_id: str, band: str) -> str:
    return f"{s3_endpoint.rstrip('/')}/{sc.INPUTS_BUCKET}/{sc.asset_key(item_id, band)}"


def item_dict(item_id: str, s3_endpoint: str) -> dict[str, Any]:
    """The input STAC Item (Planetary Computer style) with HTTP asset hrefs, as loaded into pgstac.

    No links: the STAC API makes them (``self`` is its item URL).
    """
    scene = sc.scene(item_id)
    minx, miny, maxx, maxy = scene.bounds
    # Footprint where both bands have data, as the geometry (like the real items' data footprint).
    ring = _footprint_lonlat(scene)
    assets: dict[str, Any] = {}
    for band, (suffix, eo_band) in sc.BANDS.items():
        assets[band] = {
            "href": asset_href(s3_endpoint, item_id, band),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": f"{eo_band['common_name']} band (surface reflectance, {suffix})",
            "roles": ["data", "reflectance"],
            "eo:bands": [eo_band],
            "raster:bands": [
                {
                    "nodata": sc.NODATA,
                    "data_type": "uint16",
                    "spatial_resolution": sc.PIXEL,
                    "scale": sc.SR_SCALE,
                    "offset": sc.SR_OFFSET,
                    "unit": "none",
                }
            ],
        }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        ],
        "id": item_id,
        "collection": sc.COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": _bbox(ring),
        "properties": {
            "datetime": scene.datetime,
            "platform": scene.platform,
            "instruments": ["oli", "tirs"],
            "eo:cloud_cover": scene.cloud_cover,
            "landsat:wrs_path": f"{scene.wrs_path:03d}",
            "landsat:wrs_row": f"{scene.wrs_row:03d}",
            "proj:epsg": sc.EPSG,
            "proj:shape": [scene.height, scene.width],
            "proj:bbox": [minx, miny, maxx, maxy],
            "proj:transform": [*scene.transform, 0.0, 0.0, 1.0],
            "description": "Synthetic Landsat-8-like scene of the airflow-provider-ogc dev stack",
        },
        "links": [],
        "assets": assets,
    }


def collection_dict(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``landsat-c2-l2`` collection of the given items (extent from them)."""
    boxes = [i["bbox"] for i in items]
    datetimes = sorted(i["properties"]["datetime"] for i in items)
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": sc.COLLECTION,
        "title": "Landsat Collection 2 Level-2 (synthetic)",
        "description": (
            "Synthetic Landsat-8-like Collection 2 Level-2 scenes of the airflow-provider-ogc dev "
            "stack (dev/scenes.py), with the Planetary Computer's collection id, item ids and assets."
        ),
        "license": "proprietary",
        "keywords": ["Landsat", "synthetic", "dev"],
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        min(b[0] for b in boxes),
                        min(b[1] for b in boxes),
                        max(b[2] for b in boxes),
                        max(b[3] for b in boxes),
                    ]
                ]
            },
            "temporal": {"interval": [[datetimes[0], datetimes[-1]]]},
        },
        "summaries": {
            "platform": sorted({i["properties"]["platform"] for i in items}),
            "instruments": ["oli", "tirs"],
            "eo:cloud_cover": {
                "minimum": min(i["properties"]["eo:cloud_cover"] for i in items),
                "maximum": max(i["properties"]["eo:cloud_cover"] for i in items),
            },
        },
        "item_assets": {
            band: {
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data", "reflectance"],
                "eo:bands": [eo_band],
            }
            for band, (_, eo_band) in sc.BANDS.items()
        },
        "links": [],
    }


def write_stac(out: Path, s3_endpoint: str, item_ids: list[str]) -> dict[str, Any]:
    """Write ``collection.json`` and ``items.ndjson`` (for pypgstac) under `out`; return their paths."""
    items = [item_dict(i, s3_endpoint) for i in item_ids]
    collection_path = out / "collection.json"
    items_path = out / "items.ndjson"
    collection_path.write_text(json.dumps(collection_dict(items), indent=2) + "\n")
    items_path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return {"collection": str(collection_path), "items": str(items_path), "ids": item_ids}


def cache_key() -> str:
    """What the COGs' bytes depend on: this generator's, the world's and the truth's code, GDAL, numpy."""
    import hashlib

    import rasterio

    digest = hashlib.sha256()
    for module in (sc, truth, sys.modules[__name__]):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(f"{rasterio.__gdal_version__} {rasterio.__version__} {np.__version__}".encode())
    return digest.hexdigest()[:16]


def generate(
    out: Path, item_ids: list[str] | None = None, cache: Path | None = None
) -> dict[str, dict[str, Path]]:
    """Write every scene's COGs under `out`; return {item id: {band: path}}.

    With `cache`, the COGs live in ``cache/{cache_key()}/`` instead and are rendered only when
    missing there (rendering is deterministic, so a cached file is the file a fresh run writes).
    """
    out.mkdir(parents=True, exist_ok=True)
    folder = out if cache is None else cache / cache_key()
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, Path]] = {}
    for item_id in item_ids or list(sc.SCENES):
        scene = sc.scene(item_id)
        paths = {band: folder / Path(sc.asset_key(item_id, band)).name for band in sc.BANDS}
        written[item_id] = paths
        if cache is not None and all(path.exists() for path in paths.values()):
            continue
        for band, data in render(item_id).items():
            # Another stack may be filling the same cache: write aside, then rename (atomic).
            tmp = paths[band].with_name(f".{paths[band].name}.{os.getpid()}.tmp")
            write_cog(tmp, data, scene, band)
            tmp.replace(paths[band])
    return written


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "dev-stack"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "dev-stack-secret"),
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def publish(endpoint: str, files: dict[str, dict[str, Path]]) -> None:
    """Create the buckets and upload the COGs (readable anonymously)."""
    s3 = s3_client(endpoint)
    for bucket in (sc.INPUTS_BUCKET, sc.RESULTS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for item_id, bands in files.items():
        for band, path in bands.items():
            s3.put_object(
                Bucket=sc.INPUTS_BUCKET,
                Key=sc.asset_key(item_id, band),
                Body=path.read_bytes(),
                ContentType="image/tiff; application=geotiff; profile=cloud-optimized",
                ACL="public-read",
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the COGs and STAC files")
    parser.add_argument("--endpoint", help="S3 endpoint to publish to (moto); omit to only write the COGs")
    parser.add_argument("--scene", action="append", dest="scenes", help="scene id (default: all)")
    parser.add_argument("--cache", type=Path, help="keep the COGs here and reuse them (see generate)")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    files = generate(args.out, args.scenes, args.cache)
    t1 = time.monotonic()
    where = f" (cache {args.cache / cache_key()})" if args.cache else ""
    print(f"rendered or found {len(files)} scene(s) in {t1 - t0:.2f}s{where}", file=sys.stderr)
    if args.endpoint:
        publish(args.endpoint, files)
        stac = write_stac(args.out, args.endpoint, list(files))
        print(f"published to {args.endpoint} in {time.monotonic() - t1:.2f}s", file=sys.stderr)
        print(json.dumps(stac))
    return 0


if __name__ == "__main__":
    sys.exit(main())
