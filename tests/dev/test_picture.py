"""dev/picture.py: the demo's PNG per scene, rendered from one synthetic scene without any server."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
rasterio = pytest.importorskip("rasterio")

from dev import picture, scenes, science, synth, truth  # noqa: E402

ITEM_ID = "LC08_L2SP_044032_20231208_02_T1"


@pytest.fixture(scope="module")
def scene_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The scene's COGs as local files, its STAC item pointing at them, and the default AOI's grid."""
    from rasterio.transform import Affine
    from rasterio.windows import transform as window_transform

    folder = tmp_path_factory.mktemp("picture")
    files = synth.generate(folder / "cogs", [ITEM_ID])[ITEM_ID]
    item = synth.item_dict(ITEM_ID, "http://unused")
    for band, path in files.items():
        item["assets"][band]["href"] = str(path)
    item_path = folder / "item.json"
    item_path.write_text(json.dumps(item))
    scene = scenes.scene(ITEM_ID)
    full = Affine(*scene.transform)
    aoi = science.parse_aoi(scenes.DEFAULT_AOI)
    window = science.aoi_window(aoi, "EPSG:4326", scenes.CRS, full, scene.width, scene.height)
    transform = window_transform(window, full)
    shape = (int(window.height), int(window.width))
    return {"folder": folder, "item": str(item_path), "transform": transform, "shape": shape}


def _read_png(path: Path) -> np.ndarray:
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings(), rasterio.open(path) as src:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        assert src.driver == "PNG"
        assert src.count == 3
        return np.moveaxis(src.read(), 0, -1).astype(int)


def _blueish(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 2] > rgb[..., 0] + 60) & (rgb[..., 2] > rgb[..., 1] + 40)


def test_scene_picture_shows_mask_lakes_and_land(scene_inputs: dict) -> None:
    transform, shape = scene_inputs["transform"], scene_inputs["shape"]
    lakes = truth.water_mask(ITEM_ID, transform, shape, scenes.CRS)
    # The mask a correct run produces, as otsu.tif stores it (1 = water, 0 = not).
    mask = lakes.astype(np.uint8)
    out = scene_inputs["folder"] / "pictures" / f"{ITEM_ID}.png"

    written = picture.write_scene_picture(
        out, ITEM_ID, mask, transform, scenes.CRS, scene_inputs["item"], iou=0.9951
    )

    assert written == out.resolve()
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not Path(f"{written}.aux.xml").exists()
    rgb = _read_png(written)
    height, width = shape
    header = rgb.shape[0] - height
    assert 0 < header <= 120
    assert rgb.shape[1] == max(width, picture.header(width, ITEM_ID, 0.9951).shape[1])
    image = rgb[header:, :width]

    edge = picture.outline(lakes)
    inside = lakes & ~edge
    valid = truth.valid_mask(ITEM_ID, transform, shape, scenes.CRS)
    # Land: valid pixels more than 3 pixels away from any lake.
    near = lakes.copy()
    for _ in range(3):
        near = near | np.roll(near, 1, 0) | np.roll(near, -1, 0) | np.roll(near, 1, 1) | np.roll(near, -1, 1)
    land = valid & ~near
    assert inside.sum() > 1000 and edge.sum() > 100 and land.sum() > 100_000

    assert _blueish(image[inside]).mean() > 0.99
    assert (image[edge] == picture.OUTLINE_RGB).all(axis=-1).all()
    assert not _blueish(image[land]).any()
    # False colour: land (vegetation to soil) is bright in NIR, so red dominates blue there.
    assert (image[land][:, 0] > image[land][:, 2]).mean() > 0.9
    # Pixels without data (outside the footprint) are the nodata grey.
    assert (image[~valid & ~lakes] == picture.NODATA_RGB).all(axis=-1).all()
    # The header carries the title (non-background pixels) and the legend's swatches.
    top = rgb[:header]
    assert (top != picture.HEADER_RGB).any(axis=-1).sum() > 1000
    assert (top == picture.WATER_RGB).all(axis=-1).sum() >= 14 * 14
    assert (top == picture.OUTLINE_RGB).all(axis=-1).sum() >= 14 * 14
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(written) as src:
            tags = src.tags()
    assert tags.get("Title") == ITEM_ID and tags.get("IoU") == "0.9951"


def test_a_missed_lake_shows_the_scene_under_the_outline(scene_inputs: dict) -> None:
    """Water the mask misses is not blue: the scene's own dark water, inside the yellow outline."""
    transform, shape = scene_inputs["transform"], scene_inputs["shape"]
    lakes = truth.water_mask(ITEM_ID, transform, shape, scenes.CRS)
    empty = np.zeros(shape, dtype=np.uint8)
    rgb = picture.render(ITEM_ID, empty, transform, scenes.CRS, scene_inputs["item"], iou=0.0)
    image = rgb[rgb.shape[0] - shape[0] :, : shape[1]]
    inside = lakes & ~picture.outline(lakes)
    assert not _blueish(image[inside]).any()
    assert image[inside].mean() < 90  # dark: water reflects little NIR and green
    assert (image[picture.outline(lakes)] == picture.OUTLINE_RGB).all(axis=-1).all()


def test_outline_is_the_inner_boundary() -> None:
    square = np.zeros((6, 6), dtype=bool)
    square[1:5, 1:5] = True
    edge = picture.outline(square)
    assert edge.sum() == 12 and not edge[2:4, 2:4].any() and edge[1, 1:5].all()


def test_text_renders_within_its_width() -> None:
    canvas = np.zeros((20, 200, 3), dtype=np.uint8)
    end = picture.draw_text(canvas, "IoU 0.99", 2, 2, 2, (255, 255, 255))
    assert end == 2 + picture.text_width("IoU 0.99", 2)
    drawn = np.nonzero(canvas.any(axis=-1))
    assert drawn[1].min() >= 2 and drawn[1].max() < end and drawn[0].max() < 2 + 14
