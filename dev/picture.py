"""A picture per scene for the demo: the false-colour scene, the water mask and the known lakes' outline.

:func:`write_scene_picture` writes one PNG for a water mask (e.g. a job's ``otsu.tif``):

* the background is a false-colour composite of the scene the process read, its ``green`` and
  ``nir08`` COGs (found through the input STAC item's assets) cropped to the mask's grid:
  red = NIR, green = blue = green band, on a fixed reflectance stretch, so vegetation is red,
  bare soil pink-grey, water dark; pixels without data in either band are dark grey;
* the water mask (value 1) is overlaid semi-transparently in blue;
* the boundary of the known lakes (:func:`dev.truth.water_mask` on the mask's grid) is drawn in
  yellow, one pixel wide, on top;
* a header above the image gives the scene id, the IoU and a legend (a tiny built-in bitmap
  font: the demo's virtualenv has neither Pillow nor matplotlib, and needs neither).

numpy and rasterio only; the PNG is written with GDAL's PNG driver (scene id and IoU also go in
as PNG text chunks).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# Colours (RGB).
WATER_RGB = (30, 110, 255)
WATER_ALPHA = 0.55
OUTLINE_RGB = (255, 230, 0)
NODATA_RGB = (45, 45, 45)
HEADER_RGB = (24, 24, 24)
TEXT_RGB = (235, 235, 235)

# Fixed stretch (surface reflectance mapped to 0..255): comparable across scenes.
NIR_MAX = 0.35
GREEN_MAX = 0.25

GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_PAM_ENABLED": "NO",  # no .aux.xml next to the PNG
}

# A 5x7 bitmap font (rows top to bottom, 5 bits each, MSB left): upper case, digits, a few signs.
_FONT: dict[str, tuple[int, ...]] = {
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    " ": (0, 0, 0, 0, 0, 0, 0),
    "_": (0, 0, 0, 0, 0, 0, 0x1F),
    ".": (0, 0, 0, 0, 0, 0x0C, 0x0C),
    ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0),
    "=": (0, 0, 0x1F, 0, 0x1F, 0, 0),
    "-": (0, 0, 0, 0x1F, 0, 0, 0),
    "+": (0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0),
    "/": (0, 0x01, 0x02, 0x04, 0x08, 0x10, 0),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04),
}
_GLYPH_W, _GLYPH_H, _ADVANCE = 5, 7, 6


def text_width(text: str, scale: int) -> int:
    return len(text) * _ADVANCE * scale


def draw_text(canvas: np.ndarray, text: str, x: int, y: int, scale: int, rgb: tuple[int, int, int]) -> int:
    """Draw `text` (upper-cased) with its top-left corner at (x, y); return the x after it."""
    height, width = canvas.shape[:2]
    for char in text.upper():
        rows = _FONT.get(char, _FONT["?"])
        bits = np.array([[(row >> (4 - i)) & 1 for i in range(_GLYPH_W)] for row in rows], dtype=bool)
        glyph = np.kron(bits, np.ones((scale, scale), dtype=bool))
        gh = min(glyph.shape[0], height - y)
        gw = min(glyph.shape[1], width - x)
        if gh > 0 and gw > 0:
            canvas[y : y + gh, x : x + gw][glyph[:gh, :gw]] = rgb
        x += _ADVANCE * scale
    return x


def outline(mask: np.ndarray) -> np.ndarray:
    """The inner boundary of a boolean mask: pixels of it with a 4-neighbour outside it."""
    m = np.asarray(mask, dtype=bool)
    padded = np.pad(m, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    result: np.ndarray = m & ~interior
    return result


def read_item(item: str | dict[str, Any]) -> dict[str, Any]:
    """A STAC item, given as a dict, an http(s) URL or a local path."""
    if isinstance(item, dict):
        return item
    if item.startswith(("http://", "https://")):
        with urllib.request.urlopen(item, timeout=30) as response:
            loaded: dict[str, Any] = json.load(response)
    else:
        loaded = json.loads(Path(item).read_text())
    if isinstance(item, str):
        loaded.setdefault("_href", item)
    return loaded


def band_sources(item: str | dict[str, Any], bands: tuple[str, ...] = ("green", "nir08")) -> dict[str, Any]:
    """{band: (href, scale, offset)} of the item's assets (scale/offset from ``raster:bands``, if any)."""
    data = read_item(item)
    base = data.get("_href") or (item if isinstance(item, str) else "")
    out: dict[str, Any] = {}
    for band in bands:
        asset = data["assets"][band]
        href = asset["href"]
        if base and "://" not in href and not href.startswith("/"):
            href = urllib.parse.urljoin(base, href)
        raster = (asset.get("raster:bands") or [{}])[0]
        out[band] = (href, raster.get("scale"), raster.get("offset"))
    return out


def read_reflectance(
    href: str,
    transform: Any,
    shape: tuple[int, int],
    crs: Any,
    scale: float | None = None,
    offset: float | None = None,
) -> np.ndarray:
    """Band `href` cropped/resampled (nearest) to the grid, as reflectance (float32, NaN = nodata)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    height, width = shape
    with rasterio.open(href) as src:
        nodata = src.nodata if src.nodata is not None else 0
        if scale is None or offset is None:
            scale, offset = src.scales[0], src.offsets[0]
        with WarpedVRT(
            src,
            crs=crs,
            transform=transform,
            width=width,
            height=height,
            src_nodata=nodata,
            nodata=nodata,
            resampling=Resampling.nearest,
        ) as vrt:
            dn = vrt.read(1)
    refl = dn.astype(np.float32) * np.float32(scale) + np.float32(offset)
    refl[dn == nodata] = np.nan
    return refl


def compose(green: np.ndarray, nir: np.ndarray, mask: np.ndarray, lakes: np.ndarray | None) -> np.ndarray:
    """The picture's image part (height, width, 3) uint8: false colour, water overlay, lakes' outline."""
    valid = np.isfinite(green) & np.isfinite(nir)
    r = np.clip(np.nan_to_num(nir) / NIR_MAX, 0, 1)
    g = np.clip(np.nan_to_num(green) / GREEN_MAX, 0, 1)
    rgb = np.stack([r, g, g], axis=-1) * 255.0
    rgb[~valid] = NODATA_RGB
    water = np.asarray(mask, dtype=bool)
    rgb[water] = (1 - WATER_ALPHA) * rgb[water] + WATER_ALPHA * np.array(WATER_RGB, dtype=np.float64)
    if lakes is not None:
        rgb[outline(lakes)] = OUTLINE_RGB
    result: np.ndarray = np.round(rgb).astype(np.uint8)
    return result


def header(width: int, item_id: str, iou: float | None) -> np.ndarray:
    """Title (scene id, IoU) and legend, as an RGB band `width` pixels wide (or wider if needed)."""
    title = item_id
    subtitle = "IOU " + (f"{iou:.4f}" if iou is not None else "N/A") + " (WATER MASK VS KNOWN LAKES)"
    swatch = 14
    legend = [(WATER_RGB, "WATER MASK"), (OUTLINE_RGB, "KNOWN LAKES")]
    bands = "FALSE COLOUR: R = NIR, G = B = GREEN"
    legend_w = sum(swatch + 8 + text_width(label, 2) + 24 for _, label in legend)
    needed = 16 + max(text_width(title, 2), text_width(subtitle, 2), legend_w, text_width(bands, 2))
    canvas = np.empty((4 * 22 + 10, max(width, needed), 3), dtype=np.uint8)
    canvas[:] = HEADER_RGB
    draw_text(canvas, title, 8, 6, 2, TEXT_RGB)
    draw_text(canvas, subtitle, 8, 28, 2, TEXT_RGB)
    x = 8
    for rgb, label in legend:
        canvas[50 : 50 + swatch, x : x + swatch] = rgb
        x = draw_text(canvas, label, x + swatch + 8, 50, 2, TEXT_RGB) + 24
    draw_text(canvas, bands, 8, 72, 2, TEXT_RGB)
    return canvas


def write_png(path: Path, rgb: np.ndarray, tags: dict[str, str] | None = None) -> Path:
    """Write an (height, width, 3) uint8 array as a PNG with GDAL's PNG driver."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = rgb.shape[:2]
    with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        profile = {"driver": "PNG", "width": width, "height": height, "count": 3, "dtype": "uint8"}
        with rasterio.open(path, "w", WRITE_METADATA_AS_TEXT="YES", **profile) as dst:
            dst.write(np.moveaxis(rgb, -1, 0))
            if tags:
                dst.update_tags(**tags)
    return path


def render(
    item_id: str,
    mask: np.ndarray,
    transform: Any,
    crs: Any,
    item: str | dict[str, Any],
    *,
    lakes: np.ndarray | None = None,
    iou: float | None = None,
) -> np.ndarray:
    """The whole picture (header above the image) as an RGB array.

    :param mask: the water mask (bool or 1 = water) on the grid `transform`, `crs`.
    :param item: the input STAC item (URL, path or dict) whose ``green``/``nir08`` assets are shown.
    :param lakes: the known lakes on the same grid (default: :func:`dev.truth.water_mask`).
    """
    import rasterio

    shape = (int(mask.shape[0]), int(mask.shape[1]))
    sources = band_sources(item)
    with rasterio.Env(**GDAL_ENV):
        green, nir = (read_reflectance(h, transform, shape, crs, s, o) for h, s, o in sources.values())
    if lakes is None:
        from dev import truth

        lakes = truth.water_mask(item_id, transform, shape, crs)
    image = compose(green, nir, np.asarray(mask) == 1, lakes)
    top = header(image.shape[1], item_id, iou)
    if top.shape[1] > image.shape[1]:
        pad = np.empty((image.shape[0], top.shape[1] - image.shape[1], 3), dtype=np.uint8)
        pad[:] = HEADER_RGB
        image = np.concatenate([image, pad], axis=1)
    return np.concatenate([top, image], axis=0)


def write_scene_picture(
    path: Path,
    item_id: str,
    mask: np.ndarray,
    transform: Any,
    crs: Any,
    item: str | dict[str, Any],
    *,
    lakes: np.ndarray | None = None,
    iou: float | None = None,
) -> Path:
    """Render the scene's picture (see :func:`render`) and write it as a PNG at `path`; return it."""
    rgb = render(item_id, mask, transform, crs, item, lakes=lakes, iou=iou)
    tags = {"Title": item_id, "Description": "false colour (R=NIR, G=B=green), water mask, known lakes"}
    if iou is not None:
        tags["IoU"] = f"{iou:.4f}"
    return write_png(Path(path), rgb, tags).resolve()
