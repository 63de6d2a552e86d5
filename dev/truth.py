"""Ground truth of the dev stack's synthetic scenes, on any grid (numpy only).

A pixel is *water* in the truth when its centre lies inside one of the lakes of
:data:`dev.scenes.LAKES` **and** both bands of the scene have data there (centre inside the
``green`` and the ``nir08`` footprints, outside any ``green`` dropout). That is what a correct
``water-bodies`` run can see: pixels that are nodata in either band must come out 0 (nodata).

Use it to score a water mask (e.g. the job's ``otsu.tif``) against the truth::

    from dev.truth import water_mask, iou, IOU_THRESHOLD
    truth = water_mask(item_id, src.transform, src.shape)
    assert iou(src.read(1) == 1, truth) >= IOU_THRESHOLD

Recommended threshold: **IoU >= 0.97** (:data:`IOU_THRESHOLD`). IoU against the truth, measured
on the three scenes (whole scenes; the default AOI crop scores the same):

* the stack's process (reflectance NDWI + Otsu): 0.993 - 0.996;
* variants that are just as right: NDWI of the raw DNs 0.997 - 0.998, fixed NDWI > 0 0.994 - 0.996;
* the mask misregistered by 1 / 2 / 3 pixels: 0.978 - 0.985 / 0.957 - 0.970 / 0.936 - 0.955;
* nodata (DN 0) not masked, i.e. used as reflectance -0.2: 0.30 - 0.39;
* green and NIR swapped: 0.001.

Why a correct mask is not 1.0: shore pixels are mixed (the generator renders every pixel as the
area-weighted mix of 4x4 sub-pixels) and the truth counts a pixel as water when its *centre* is in
the lake, while NDWI + Otsu only calls a mixed pixel water when it is ~80 % water (bright
vegetation NIR dominates the mix). That costs ~0.3 pixel along every shore, 0.4-0.7 % of the
water; noise (sigma 0.006 reflectance against classes ~1 NDWI apart) flips practically nothing.
0.97 leaves 2 % of margin below every correct variant and fails every gross error (nodata, band
order, CRS/transform mistakes, a misregistration of 2+ pixels on the seed's two scenes). Sub-pixel
and one-pixel misregistrations are *not* visible in an IoU at any threshold that correct variants
pass: check the output grid itself (``proj:transform`` on the scene's 30 m grid) for those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dev import scenes as _scenes
from dev.scenes import Ellipse

if TYPE_CHECKING:
    from collections.abc import Sequence

IOU_THRESHOLD = 0.97

Transform = Any  # rasterio/affine Affine, or a sequence (a, b, c, d, e, f[, 0, 0, 1])


def _coefficients(transform: Transform) -> tuple[float, float, float, float, float, float]:
    if hasattr(transform, "a") and hasattr(transform, "f"):
        return (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)
    values = [float(v) for v in transform]
    if len(values) not in (6, 9):
        raise ValueError(
            "transform must be an Affine or (a, b, c, d, e, f[, 0, 0, 1]) as in proj:transform, "
            f"got {len(values)} values"
        )
    return (values[0], values[1], values[2], values[3], values[4], values[5])


def _check_crs(crs: Any) -> None:
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else crs
    if isinstance(epsg, str):
        epsg = epsg.upper().removeprefix("EPSG:")
    if str(epsg) != str(_scenes.EPSG):
        raise ValueError(f"the synthetic scenes are in EPSG:{_scenes.EPSG}, not {crs}")


def _pixel_centres(
    transform: Transform, shape: tuple[int, int], supersample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """x, y (float64, shape ``(h*s, w*s)``) of the centres of every (sub-)pixel."""
    a, b, c, d, e, f = _coefficients(transform)
    height, width = shape
    s = supersample
    cols = (np.arange(width * s, dtype=np.float64) + 0.5) / s
    rows = (np.arange(height * s, dtype=np.float64) + 0.5) / s
    cc, rr = np.meshgrid(cols, rows)
    return a * cc + b * rr + c, d * cc + e * rr + f


def _in_ellipse(x: np.ndarray, y: np.ndarray, lake: Ellipse) -> np.ndarray:
    theta = np.radians(lake.angle)
    dx, dy = x - lake.cx, y - lake.cy
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    result: np.ndarray = (u / lake.a) ** 2 + (v / lake.b) ** 2 <= 1.0
    return result


def in_polygon(x: np.ndarray, y: np.ndarray, vertices: Sequence[tuple[float, float]]) -> np.ndarray:
    """Even-odd (ray casting) point-in-polygon test, vectorised over the points."""
    inside = np.zeros(np.shape(x), dtype=bool)
    n = len(vertices)
    for i in range(n):
        x1, y1 = vertices[i]
        x2, y2 = vertices[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        x_at_y = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at_y)
    return inside


def lake_cover(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For points x, y: index of the lake covering each (-1: land) and a bool 'is water'."""
    index = np.full(np.shape(x), -1, dtype=np.int16)
    for i, lake in enumerate(_scenes.LAKES):
        inside = _in_ellipse(x, y, lake) if isinstance(lake, Ellipse) else in_polygon(x, y, lake.vertices)
        index[inside & (index < 0)] = i
    return index, index >= 0


def band_valid(item_id: str, band: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the scene's `band` has data (pixel centres x, y in EPSG:32610)."""
    sc = _scenes.scene(item_id)
    minx, miny, maxx, maxy = sc.bounds
    valid = (x >= minx) & (x < maxx) & (y > miny) & (y <= maxy)
    valid &= in_polygon(x, y, sc.footprint(band))
    if band == "green":
        for dminx, dminy, dmaxx, dmaxy in sc.green_dropouts:
            valid &= ~((x >= dminx) & (x < dmaxx) & (y > dminy) & (y <= dmaxy))
    return valid


def valid_mask(
    item_id: str, transform: Transform, shape: tuple[int, int], crs: Any = _scenes.CRS
) -> np.ndarray:
    """Pixels (by centre) where both bands of the scene have data."""
    _check_crs(crs)
    x, y = _pixel_centres(transform, shape)
    result: np.ndarray = band_valid(item_id, "green", x, y) & band_valid(item_id, "nir08", x, y)
    return result


def water_mask(
    item_id: str, transform: Transform, shape: tuple[int, int], crs: Any = _scenes.CRS
) -> np.ndarray:
    """The ground-truth water mask (bool, ``shape``) of scene `item_id` on the given grid.

    :param item_id: one of :data:`dev.scenes.SCENES`.
    :param transform: the grid's affine transform (``Affine`` or ``proj:transform``-style list).
    :param shape: ``(height, width)``.
    :param crs: must be EPSG:32610 (the scenes' CRS).
    """
    _check_crs(crs)
    x, y = _pixel_centres(transform, shape)
    _, water = lake_cover(x, y)
    result: np.ndarray = water & band_valid(item_id, "green", x, y) & band_valid(item_id, "nir08", x, y)
    return result


def water_fraction(transform: Transform, shape: tuple[int, int], supersample: int = 4) -> np.ndarray:
    """Share of each pixel's area covered by lakes (float32), from `supersample`² sub-pixels."""
    x, y = _pixel_centres(transform, shape, supersample)
    _, water = lake_cover(x, y)
    h, w = shape
    s = supersample
    frac: np.ndarray = water.reshape(h, s, w, s).mean(axis=(1, 3)).astype(np.float32)
    return frac


def iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a = np.asarray(mask_a, dtype=bool)
    b = np.asarray(mask_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b) / union)
