"""Quick-look PNGs of result rasters, rendered on the api-server from the GeoTIFF (COG) bytes.

Needs ``rasterio`` (and numpy), which the provider does not require: install
``airflow-provider-ogc[ui]``. Both are imported here only, when a quick-look is asked for.

A single-band 8-bit raster with few values is a classification (the water-bodies process writes
``1 = water``, ``0 = nodata``): value 1 is drawn in :data:`WATER_RGBA`, other values in a grey,
nodata transparent. Anything else is drawn in greys stretched between its 2nd and 98th percentiles.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["LEGENDS", "MAX_SIZE", "QuicklookUnavailable", "render_png"]

MAX_SIZE = 512  # the longest side of a quick-look, in pixels
WATER_RGBA = (30, 110, 255, 255)
OTHER_RGBA = (200, 200, 190, 255)
LEGENDS = {
    "classes": [
        {"label": "water (1)", "color": "#1e6eff"},
        {"label": "other values", "color": "#c8c8be"},
        {"label": "no data", "color": "transparent"},
    ],
    "continuous": [
        {"label": "low (2nd percentile)", "color": "#000000"},
        {"label": "high (98th percentile)", "color": "#ffffff"},
        {"label": "no data", "color": "transparent"},
    ],
}
_INSTALL_HINT = "pip install 'airflow-provider-ogc[ui]'"


class QuicklookUnavailable(RuntimeError):
    """rasterio is not installed on the api-server."""


def render_png(data: bytes, max_size: int = MAX_SIZE) -> tuple[bytes, str, tuple[int, int]]:
    """The raster in ``data`` as an RGBA PNG at most ``max_size`` pixels on its longest side.

    :returns: the PNG, the legend's name in :data:`LEGENDS` and the PNG's (width, height).
    :raises QuicklookUnavailable: without rasterio.
    """
    try:
        import numpy as np
        import rasterio
        import rasterio.errors
        from rasterio.enums import Resampling
        from rasterio.io import MemoryFile
    except ImportError as err:
        raise QuicklookUnavailable(
            f"Quick-looks need rasterio on the api-server ({_INSTALL_HINT}): {err}"
        ) from None

    with MemoryFile(data) as memfile, memfile.open() as src:
        scale = min(1.0, max_size / max(src.width, src.height))
        width, height = max(1, round(src.width * scale)), max(1, round(src.height * scale))
        classified = src.count == 1 and src.dtypes[0] == "uint8"
        band = src.read(
            1,
            out_shape=(height, width),
            resampling=Resampling.nearest if classified else Resampling.average,
            masked=True,
        )
    valid = ~np.ma.getmaskarray(band)
    values = np.ma.getdata(band)
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    if classified and len(np.unique(values[valid])) <= 16:
        legend = "classes"
        water = valid & (values == 1)
        rgba[valid & ~water] = OTHER_RGBA
        rgba[water] = WATER_RGBA
    else:
        legend = "continuous"
        floats = values.astype("float64")
        good = valid & np.isfinite(floats)
        if good.any():
            low, high = np.percentile(floats[good], [2, 98])
            span = high - low if high > low else 1.0
            grey = np.clip((floats - low) / span * 255.0, 0, 255).astype(np.uint8)
            for channel in range(3):
                rgba[..., channel] = np.where(good, grey, 0)
            rgba[..., 3] = np.where(good, 255, 0)
    profile: dict[str, Any] = {"driver": "PNG", "width": width, "height": height, "count": 4}
    profile["dtype"] = "uint8"
    with warnings.catch_warnings(), MemoryFile() as out:
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with out.open(**profile) as dst:
            dst.write(np.moveaxis(rgba, -1, 0))
        png = bytes(out.read())
    return png, legend, (width, height)
