"""The dev stack's science on small arrays: NDWI, Otsu, nodata, AOI crop; and the ground truth."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("rasterio")

from affine import Affine  # noqa: E402  (a rasterio dependency)

from dev import scenes, science, synth, truth  # noqa: E402

# --- NDWI and reflectance ---------------------------------------------------------------------


def test_ndwi_values() -> None:
    green = np.array([0.06, 0.05, 0.10, 0.20], dtype=np.float32)
    nir = np.array([0.02, 0.30, 0.10, 0.00], dtype=np.float32)
    np.testing.assert_allclose(science.ndwi(green, nir), [0.5, -0.25 / 0.35, 0.0, 1.0], rtol=1e-6)
    assert science.ndwi(green, nir).dtype == np.float32


def test_ndwi_is_undefined_for_nodata_and_non_positive_sums() -> None:
    green = np.array([np.nan, 0.05, -0.02, 0.0, -0.01], dtype=np.float32)
    nir = np.array([0.1, np.nan, -0.01, 0.0, 0.03], dtype=np.float32)
    result = science.ndwi(green, nir)
    assert np.isnan(result[:4]).all()
    # A positive sum with one slightly negative reflectance is defined, and clipped to [-1, 1].
    assert result[4] == pytest.approx(-1.0)


def test_to_reflectance_applies_landsat_scale_offset_and_nodata() -> None:
    dn = np.array([[0, 7273, 10000, 43636]], dtype=np.uint16)
    refl = science.to_reflectance(dn, scenes.SR_SCALE, scenes.SR_OFFSET, 0)
    assert np.isnan(refl[0, 0])
    np.testing.assert_allclose(refl[0, 1:], [0.0, 0.075, 1.0], atol=1e-4)


# --- Otsu -------------------------------------------------------------------------------------


def _brute_force_otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu by definition: try every histogram split, keep the one with the largest between-class variance."""
    counts, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    best, best_var = centres[0], -1.0
    for i in range(bins - 1):
        w0, w1 = counts[: i + 1].sum(), counts[i + 1 :].sum()
        if not w0 or not w1:
            continue
        m0 = (counts[: i + 1] * centres[: i + 1]).sum() / w0
        m1 = (counts[i + 1 :] * centres[i + 1 :]).sum() / w1
        var = w0 * w1 * (m0 - m1) ** 2
        if var > best_var:
            best, best_var = centres[i], var
    return float(best)


def test_otsu_splits_a_bimodal_histogram() -> None:
    rng = np.random.default_rng(1)
    land = rng.normal(-0.5, 0.1, 20_000)
    water = rng.normal(0.5, 0.08, 4_000)
    values = np.concatenate([land, water])
    threshold = science.otsu_threshold(values)
    assert -0.15 < threshold < 0.15
    assert (water > threshold).mean() > 0.999 and (land <= threshold).mean() > 0.999


def test_otsu_matches_its_definition_on_overlapping_classes() -> None:
    # Overlapping modes: no empty bins between them, so the best split is unique (no ties).
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(-0.3, 0.25, 30_000), rng.normal(0.35, 0.2, 10_000)])
    assert science.otsu_threshold(values) == pytest.approx(_brute_force_otsu(values), abs=1e-9)


def test_otsu_ignores_nan_and_handles_degenerate_input() -> None:
    values = np.array([np.nan, -0.6, -0.5, -0.55, 0.4, 0.5, np.nan, np.inf])
    assert -0.5 < science.otsu_threshold(values) < 0.4
    assert science.otsu_threshold(np.array([0.3, 0.3, np.nan])) == 0.3
    with pytest.raises(ValueError, match="empty"):
        science.otsu_threshold(np.array([np.nan, np.nan]))


def test_water_mask_keeps_nodata_at_zero() -> None:
    index = np.array([[0.6, 0.5, np.nan], [-0.6, np.nan, 0.55], [-0.5, -0.7, 0.45]], dtype=np.float32)
    mask, threshold = science.water_mask(index)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, [[1, 1, 0], [0, 0, 1], [0, 0, 1]])
    assert -0.5 < threshold < 0.45


def test_nodata_in_either_band_stays_nodata_end_to_end() -> None:
    # water everywhere, but green is nodata in one pixel and nir08 in another
    green_dn = np.array([[9455, 0, 9455], [9455, 9455, 13091]], dtype=np.uint16)
    nir_dn = np.array([[7928, 7928, 0], [7928, 7928, 18182]], dtype=np.uint16)
    g = science.to_reflectance(green_dn, scenes.SR_SCALE, scenes.SR_OFFSET, 0)
    n = science.to_reflectance(nir_dn, scenes.SR_SCALE, scenes.SR_OFFSET, 0)
    mask, _ = science.water_mask(science.ndwi(g, n))
    np.testing.assert_array_equal(mask, [[1, 0, 0], [1, 1, 0]])


# --- band statistics in the seed's shape --------------------------------------------------------


def test_band_stats_have_the_seeds_shape() -> None:
    mask = np.zeros((10, 20), dtype=np.uint8)
    mask[2:5, 3:8] = 1  # 15 water pixels of 200
    statistics, histogram = science.band_stats(mask, 0)
    assert statistics == {"mean": 1.0, "minimum": 1, "maximum": 1, "stddev": 0.0, "valid_percent": 7.5}
    assert isinstance(statistics["minimum"], int) and isinstance(statistics["maximum"], int)
    assert histogram == {"count": 11, "min": 0.5, "max": 1.5, "buckets": [0, 0, 0, 0, 0, 15, 0, 0, 0, 0]}


def test_band_stats_without_water() -> None:
    statistics, histogram = science.band_stats(np.zeros((4, 4), dtype=np.uint8), 0)
    assert statistics == {"valid_percent": 0.0} and histogram is None


# --- AOI parsing and crop window -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("aoi", "message"),
    [
        ("1,2,3", "minx,miny,maxx,maxy"),
        ("a,b,c,d", "four numbers"),
        ("3,0,1,1", "minx < maxx"),
        ("0,0,1,nan", "finite"),
    ],
)
def test_parse_aoi_rejects_bad_boxes(aoi: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        science.parse_aoi(aoi)


def test_parse_aoi_accepts_the_seeds_string() -> None:
    assert science.parse_aoi("-121.399,39.834,-120.74,40.472") == (-121.399, 39.834, -120.74, 40.472)


GRID = Affine(30.0, 0.0, 650985.0, 0.0, -30.0, 4460985.0)  # the first scene's grid, 600 x 600


def test_aoi_window_in_the_scene_crs_is_exact() -> None:
    aoi = (650985.0 + 30 * 10, 4460985.0 - 30 * 50, 650985.0 + 30 * 110, 4460985.0 - 30 * 20)
    win = science.aoi_window(aoi, "EPSG:32610", "EPSG:32610", GRID, 600, 600)
    assert (win.col_off, win.row_off, win.width, win.height) == (10, 20, 100, 30)


def test_aoi_window_widens_to_whole_pixels_and_clips_to_the_scene() -> None:
    aoi = (650985.0 - 1000, 4460985.0 - 30 * 50 - 1, 650985.0 + 30 * 110 + 1, 4460985.0 + 500)
    win = science.aoi_window(aoi, "EPSG:32610", "EPSG:32610", GRID, 600, 600)
    assert (win.col_off, win.row_off, win.width, win.height) == (0, 0, 111, 51)


def test_aoi_window_of_a_lonlat_box_covers_its_reprojection() -> None:
    from rasterio.warp import transform

    aoi = science.parse_aoi(scenes.DEFAULT_AOI)
    win = science.aoi_window(aoi, "EPSG:4326", "EPSG:32610", GRID, 600, 600)
    assert win is not None and win.col_off == int(win.col_off) and win.row_off == int(win.row_off)
    # Every point of the AOI's (densified) outline that falls in the scene is inside the window.
    minx, miny, maxx, maxy = aoi
    t = np.linspace(0.0, 1.0, 50)
    lons = np.concatenate(
        [minx + (maxx - minx) * t, np.full(50, maxx), maxx - (maxx - minx) * t, np.full(50, minx)]
    )
    lats = np.concatenate(
        [np.full(50, miny), miny + (maxy - miny) * t, np.full(50, maxy), maxy - (maxy - miny) * t]
    )
    xs, ys = transform("EPSG:4326", "EPSG:32610", lons.tolist(), lats.tolist())
    cols, rows = ~GRID * (np.array(xs), np.array(ys))
    in_scene = (cols >= 0) & (cols <= 600) & (rows >= 0) & (rows <= 600)
    assert in_scene.any()
    assert (cols[in_scene] >= win.col_off - 1e-6).all() and (
        cols[in_scene] <= win.col_off + win.width + 1e-6
    ).all()
    assert (rows[in_scene] >= win.row_off - 1e-6).all() and (
        rows[in_scene] <= win.row_off + win.height + 1e-6
    ).all()
    # The AOI's north edge cuts the scene at row 81 (y = 4458555 m), as the e2e run's proj:transform shows.
    assert win.row_off == 81 and win.row_off + win.height == 600


def test_aoi_window_outside_the_scene_is_none() -> None:
    assert science.aoi_window((-100.0, 40.0, -99.0, 41.0), "EPSG:4326", "EPSG:32610", GRID, 600, 600) is None


# --- the ground truth -----------------------------------------------------------------------------


def test_iou() -> None:
    a = np.array([[1, 1, 0, 0]], dtype=bool)
    b = np.array([[0, 1, 1, 0]], dtype=bool)
    assert truth.iou(a, b) == pytest.approx(1 / 3)
    assert truth.iou(a, a) == 1.0
    assert truth.iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    with pytest.raises(ValueError, match="shapes"):
        truth.iou(a, a.T)


def test_truth_is_the_same_on_a_crop_of_the_grid() -> None:
    sc = scenes.scene("LC08_L2SP_044032_20231208_02_T1")
    full = truth.water_mask(sc.id, Affine(*sc.transform), sc.shape)
    crop_transform = Affine(*sc.transform) * Affine.translation(100, 200)
    crop = truth.water_mask(sc.id, crop_transform, (300, 400))
    np.testing.assert_array_equal(crop, full[200:500, 100:500])
    # proj:transform-style (9 numbers) works too
    np.testing.assert_array_equal(truth.water_mask(sc.id, list(crop_transform), (300, 400)), crop)
    assert 0.05 < full.mean() < 0.2


def test_truth_excludes_nodata_of_either_band() -> None:
    sc = scenes.scene("LC08_L2SP_044032_20231208_02_T1")
    grid = Affine(*sc.transform)
    water = truth.water_mask(sc.id, grid, sc.shape)
    valid = truth.valid_mask(sc.id, grid, sc.shape)
    assert not (water & ~valid).any()
    # The green dropout sits in the big lake: water around it, none inside.
    minx, miny, maxx, maxy = sc.green_dropouts[0]
    c0, r0 = (int(v) for v in ~grid * (minx, maxy))
    c1, r1 = (int(v) for v in ~grid * (maxx, miny))
    assert not water[r0:r1, c0:c1].any() and water[r0 - 3, c0:c1].all()


def test_truth_rejects_other_crss() -> None:
    with pytest.raises(ValueError, match="EPSG:32610"):
        truth.water_mask("LC08_L2SP_044032_20231208_02_T1", GRID, (10, 10), crs="EPSG:32611")


def test_generated_scenes_match_the_truth() -> None:
    """The rendered bands' nodata is exactly the truth's, and NDWI + Otsu on them scores above the threshold."""
    for item_id, sc in scenes.SCENES.items():
        bands = synth.render(item_id)
        grid = Affine(*sc.transform)
        x, y = truth._pixel_centres(grid, sc.shape)
        for band, dn in bands.items():
            assert dn.dtype == np.uint16 and dn.shape == sc.shape
            np.testing.assert_array_equal(dn != 0, truth.band_valid(item_id, band, x, y))
        g = science.to_reflectance(bands["green"], scenes.SR_SCALE, scenes.SR_OFFSET, 0)
        n = science.to_reflectance(bands["nir08"], scenes.SR_SCALE, scenes.SR_OFFSET, 0)
        mask, _ = science.water_mask(science.ndwi(g, n))
        assert truth.iou(mask == 1, truth.water_mask(item_id, grid, sc.shape)) > truth.IOU_THRESHOLD


def test_rendering_is_deterministic() -> None:
    a = synth.render("LC08_L2SP_043033_20231201_02_T1")
    b = synth.render("LC08_L2SP_043033_20231201_02_T1")
    for band in a:
        np.testing.assert_array_equal(a[band], b[band])
