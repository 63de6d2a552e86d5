"""The science of the dev stack's ``water-bodies`` process, on plain arrays (numpy; rasterio for CRSs).

Per scene: crop both bands to the area of interest (reprojected into the scene's CRS), convert the
DNs to surface reflectance, compute NDWI = (green - nir) / (green + nir), pick a threshold with
Otsu's method over the valid NDWI values, and write 1 (water) where NDWI > threshold; everything
else, land and nodata alike, is 0 = nodata, as in the seed's ``otsu.tif`` (whose statistics show
min = max = 1).

Otsu is implemented here (a dozen lines of numpy) rather than taken from scikit-image: the
result is the same (``skimage.filters.threshold_otsu`` also maximises the between-class variance
over a 256-bin histogram and returns a bin centre), and scikit-image would pull scipy,
networkx, pillow, imageio, ... into the pygeoapi environment for one function.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

OTSU_BINS = 256


def parse_aoi(aoi: str | list[float] | tuple[float, ...]) -> tuple[float, float, float, float]:
    """``"minx,miny,maxx,maxy"`` (or a 4-sequence) -> floats, checked."""
    parts = aoi.split(",") if isinstance(aoi, str) else list(aoi)
    if len(parts) != 4:
        raise ValueError(f"aoi must be 'minx,miny,maxx,maxy', got {aoi!r}")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"aoi must be four numbers 'minx,miny,maxx,maxy', got {aoi!r}") from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise ValueError(f"aoi must be finite numbers, got {aoi!r}")
    if minx >= maxx or miny >= maxy:
        raise ValueError(f"aoi must have minx < maxx and miny < maxy, got {aoi!r}")
    return minx, miny, maxx, maxy


def to_reflectance(dn: np.ndarray, scale: float, offset: float, nodata: float | None) -> np.ndarray:
    """DN -> reflectance (float32), NaN where the DN is nodata."""
    refl = dn.astype(np.float32) * np.float32(scale) + np.float32(offset)
    if nodata is not None:
        refl[dn == nodata] = np.nan
    return refl


def ndwi(green: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """McFeeters' NDWI (float32, in [-1, 1]); NaN where either band is NaN or green + nir <= 0.

    A non-positive denominator only occurs for nodata or for reflectances below zero in both bands
    (noise around very dark targets); the ratio is meaningless there, so it is left undefined.
    """
    g = green.astype(np.float32)
    n = nir.astype(np.float32)
    den = g + n
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, (g - n) / den, np.nan).astype(np.float32)
    clipped: np.ndarray = np.clip(out, -1.0, 1.0)  # NaN stays NaN
    return clipped


def otsu_threshold(values: np.ndarray, bins: int = OTSU_BINS) -> float:
    """Otsu's threshold of the finite `values`: the bin centre maximising the between-class variance.

    Pixels strictly above the returned value form the upper class (as with scikit-image).
    :raises ValueError: if there is no finite value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("Otsu threshold of an empty set of values")
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return lo
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    # Class probabilities and means for every split "bins[:i+1] | bins[i+1:]".
    w0 = np.cumsum(counts)
    w1 = np.cumsum(counts[::-1])[::-1]
    m0 = np.cumsum(counts * centres) / np.maximum(w0, 1)
    m1 = (np.cumsum((counts * centres)[::-1]) / np.maximum(w1[::-1], 1))[::-1]
    between = w0[:-1] * w1[1:] * (m0[:-1] - m1[1:]) ** 2
    return float(centres[int(np.argmax(between))])


def water_mask(index: np.ndarray) -> tuple[np.ndarray, float]:
    """Otsu-threshold the NDWI: uint8 1 = water, 0 = not water or nodata (NaN); and the threshold."""
    threshold = otsu_threshold(index)
    with np.errstate(invalid="ignore"):
        water = np.isfinite(index) & (index > threshold)
    return water.astype(np.uint8), threshold


def aoi_window(
    aoi: tuple[float, float, float, float],
    aoi_crs: Any,
    scene_crs: Any,
    transform: Any,
    width: int,
    height: int,
) -> Any:
    """The scene pixels covering the AOI: a rasterio ``Window`` on the scene grid, or None.

    The AOI box is reprojected into the scene's CRS (densified edges, so the curved sides of a
    lon/lat box are covered) and its envelope widened to whole pixels, then clipped to the scene.
    """
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    left, bottom, right, top = transform_bounds(aoi_crs, scene_crs, *aoi, densify_pts=21)
    win = from_bounds(left, bottom, right, top, transform=transform)
    col0 = max(math.floor(win.col_off + 1e-6), 0)
    row0 = max(math.floor(win.row_off + 1e-6), 0)
    col1 = min(math.ceil(win.col_off + win.width - 1e-6), width)
    row1 = min(math.ceil(win.row_off + win.height - 1e-6), height)
    if col0 >= col1 or row0 >= row1:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def band_stats(data: np.ndarray, nodata: float = 0) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``raster:bands`` statistics and histogram of a band, shaped as rio-stac (and the seed) do.

    rio-stac computes them on a read decimated to at most 1024 pixels a side; the dev stack's
    rasters are smaller than that, so this is the full-resolution equivalent.
    """
    valid = data[data != nodata]
    valid_percent = float(valid.size / data.size * 100) if data.size else 0.0
    if valid.size == 0:
        return {"valid_percent": valid_percent}, None
    statistics = {
        "mean": float(valid.mean()),
        "minimum": valid.min().item(),
        "maximum": valid.max().item(),
        "stddev": float(valid.std()),
        "valid_percent": valid_percent,
    }
    counts, edges = np.histogram(valid, bins=10)
    histogram = {
        "count": len(edges),
        "min": float(edges.min()),
        "max": float(edges.max()),
        "buckets": counts.tolist(),
    }
    return statistics, histogram
