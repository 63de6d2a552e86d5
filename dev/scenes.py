"""The synthetic Landsat-8-like world of the dev stack (pure data, stdlib only).

Everything is defined in UTM zone 10N (EPSG:32610) metres, near Lake Almanor (California), the
area of the seed's ``water-bodies`` run. The lakes belong to the *world*, not to a scene, so two
overlapping scenes see the same water; each scene has its own grid (30 m pixels on the Landsat
grid, i.e. corners at ``...15`` / ``...85`` metres), its own valid-data footprint (a tilted
quadrilateral, as real Landsat scenes have nodata triangles in the corners), a one-pixel
band-to-band offset of that footprint for ``nir08`` and, for the first scene, a small dropout
of the ``green`` band in the middle of a lake (so nodata in *one* band is exercised).

Three footprints (WRS-2 path/row 044/032, 043/033, 044/033), each acquired on four dates 16 days
apart with varied ``eo:cloud_cover`` (:data:`REVISITS`): twelve scenes, among them the seed's.

``dev.synth`` renders the COGs from these definitions and ``dev.truth`` computes the ground truth
from the very same ones, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

EPSG = 32610
CRS = f"EPSG:{EPSG}"
PIXEL = 30.0
COLLECTION = "landsat-c2-l2"

# Landsat Collection 2 Level-2 surface reflectance: reflectance = DN * SCALE + OFFSET, DN 0 = nodata.
SR_SCALE = 2.75e-05
SR_OFFSET = -0.2
NODATA = 0

# Asset key -> (Landsat 8 OLI band file suffix, eo:bands entry), as on the Planetary Computer.
BANDS: dict[str, tuple[str, dict[str, object]]] = {
    "green": (
        "SR_B3",
        {"name": "OLI_B3", "common_name": "green", "center_wavelength": 0.56, "full_width_half_max": 0.06},
    ),
    "nir08": (
        "SR_B5",
        {"name": "OLI_B5", "common_name": "nir08", "center_wavelength": 0.86, "full_width_half_max": 0.03},
    ),
}

# The default area of interest (EPSG:4326, "minx,miny,maxx,maxy" as the seed sends it). It cuts
# both default scenes: the west and north of LC08_L2SP_044032 and the east and south of
# LC08_L2SP_043033 (including part of its reservoir) fall outside.
DEFAULT_AOI = "-121.226,40.065,-120.942,40.259"


@dataclass(frozen=True)
class Ellipse:
    name: str
    cx: float
    cy: float
    a: float  # semi-axis along `angle` (metres)
    b: float  # the other semi-axis (metres)
    angle: float = 0.0  # degrees, counter-clockwise from east
    green: float = 0.065  # surface reflectance of the water
    nir: float = 0.018


@dataclass(frozen=True)
class Polygon:
    name: str
    vertices: tuple[tuple[float, float], ...]  # (x, y) in EPSG:32610, not closed
    green: float = 0.065
    nir: float = 0.018


Lake = Ellipse | Polygon

LAKES: tuple[Lake, ...] = (
    # A large, tilted lake: inside the first scene, cut by the second scene's top edge.
    Ellipse("big-lake", 661500.0, 4450500.0, 4200.0, 2100.0, angle=25.0),
    Ellipse("north-lake", 655200.0, 4456800.0, 900.0, 550.0, angle=-15.0, green=0.08, nir=0.03),
    # A pond of about 12 pixels across.
    Ellipse("pond", 657300.0, 4446300.0, 180.0, 180.0),
    # Straddles the first scene's west edge and its nodata corner.
    Ellipse("edge-lake", 651500.0, 4452000.0, 600.0, 600.0),
    # A non-convex reservoir with arms, in the second scene.
    Polygon(
        "reservoir",
        (
            (668500.0, 4441500.0),
            (671000.0, 4443800.0),
            (673800.0, 4443200.0),
            (675200.0, 4440500.0),
            (676800.0, 4439800.0),
            (676500.0, 4438600.0),
            (674000.0, 4439000.0),
            (672200.0, 4437600.0),
            (670300.0, 4438900.0),
            (669000.0, 4438300.0),
        ),
        green=0.09,
        nir=0.035,
    ),
    # In the third scene only.
    Polygon(
        "south-lake",
        (
            (651000.0, 4437000.0),
            (654500.0, 4438800.0),
            (657800.0, 4436500.0),
            (656200.0, 4433800.0),
            (652300.0, 4434200.0),
        ),
    ),
)


@dataclass(frozen=True)
class Scene:
    id: str
    datetime: str
    wrs_path: int
    wrs_row: int
    ulx: float
    uly: float
    width: int
    height: int
    # Valid-data footprint as (col, row) pixel positions of the grid's corners, clockwise from
    # the top; the nir08 band's footprint is this one shifted by `nir_shift` pixels east.
    footprint_px: tuple[tuple[float, float], ...]
    seed: int
    nir_shift: float = 1.0
    gain: float = 1.0  # date-to-date radiometric difference of the land
    # (minx, miny, maxx, maxy) in EPSG:32610 where `green` is nodata although `nir08` is not.
    green_dropouts: tuple[tuple[float, float, float, float], ...] = field(default=())
    cloud_cover: float = 0.0

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """Affine coefficients (a, b, c, d, e, f), as rasterio's ``Affine``."""
        return (PIXEL, 0.0, self.ulx, 0.0, -PIXEL, self.uly)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.ulx, self.uly - self.height * PIXEL, self.ulx + self.width * PIXEL, self.uly)

    def footprint(self, band: str = "green") -> tuple[tuple[float, float], ...]:
        """The band's valid-data polygon in EPSG:32610."""
        shift = self.nir_shift if band == "nir08" else 0.0
        return tuple(
            (self.ulx + (col + shift) * PIXEL, self.uly - row * PIXEL) for col, row in self.footprint_px
        )

    @property
    def platform(self) -> str:
        return "landsat-9" if self.id.startswith("LC09") else "landsat-8"


# The seed's three acquisitions: the scenes of its request (and a third one south of them).
_SEED_SCENES = (
    Scene(
        id="LC08_L2SP_044032_20231208_02_T1",
        datetime="2023-12-08T18:45:23.598169Z",
        wrs_path=44,
        wrs_row=32,
        ulx=650985.0,
        uly=4460985.0,
        width=600,
        height=600,
        footprint_px=((60, 5), (595, 75), (540, 595), (5, 525)),
        seed=44032,
        green_dropouts=((660885.0, 4449885.0, 661215.0, 4450125.0),),
        cloud_cover=0.4,
    ),
    Scene(
        id="LC08_L2SP_043033_20231201_02_T1",
        datetime="2023-12-01T18:39:41.392050Z",
        wrs_path=43,
        wrs_row=33,
        ulx=659985.0,
        uly=4451985.0,
        width=640,
        height=560,
        footprint_px=((70, 0), (640, 60), (575, 560), (0, 500)),
        seed=43033,
        gain=0.94,
        cloud_cover=1.2,
    ),
    Scene(
        id="LC08_L2SP_044033_20231208_02_T1",
        datetime="2023-12-08T18:45:47.485013Z",
        wrs_path=44,
        wrs_row=33,
        ulx=647985.0,
        uly=4445985.0,
        width=500,
        height=480,
        footprint_px=((50, 0), (500, 55), (450, 480), (0, 425)),
        seed=44033,
        nir_shift=-1.0,
        gain=1.03,
        cloud_cover=0.1,
    ),
)

# More acquisitions of the same three footprints (WRS-2 path/row), 16 days apart as Landsat 8
# revisits them (path 43 is flown 7 days before path 44), so a search over a week finds some and
# not others: (seed scene of the footprint, datetime, eo:cloud_cover, land gain). Each is rendered
# on its footprint's grid with its own noise; the lakes do not change, so the truth holds for all.
# eo:cloud_cover is metadata only: the rendered imagery is cloud-free whatever it says.
# 20.0 exactly (044033 on 2023-12-24) sits on the edge of an `eo:cloud_cover < 20` filter.
REVISITS: tuple[tuple[str, str, float, float], ...] = (
    ("LC08_L2SP_044032_20231208_02_T1", "2023-11-06T18:45:31.112842Z", 12.7, 1.02),
    ("LC08_L2SP_044032_20231208_02_T1", "2023-11-22T18:45:28.770954Z", 63.5, 0.97),
    ("LC08_L2SP_044032_20231208_02_T1", "2023-12-24T18:45:19.304127Z", 27.9, 1.05),
    ("LC08_L2SP_043033_20231201_02_T1", "2023-11-15T18:39:47.018366Z", 34.6, 0.99),
    ("LC08_L2SP_043033_20231201_02_T1", "2023-12-17T18:39:36.550781Z", 5.8, 0.96),
    ("LC08_L2SP_043033_20231201_02_T1", "2024-01-02T18:39:33.207419Z", 88.1, 1.01),
    ("LC08_L2SP_044033_20231208_02_T1", "2023-11-06T18:45:55.339210Z", 8.3, 1.0),
    ("LC08_L2SP_044033_20231208_02_T1", "2023-11-22T18:45:52.806117Z", 71.2, 1.04),
    ("LC08_L2SP_044033_20231208_02_T1", "2023-12-24T18:45:43.691578Z", 20.0, 0.98),
)


def landsat_id(path: int, row: int, datetime: str, platform: str = "LC08") -> str:
    """A Planetary Computer ``landsat-c2-l2`` item id (the USGS product id without its processing date)."""
    return f"{platform}_L2SP_{path:03d}{row:03d}_{datetime[:10].replace('-', '')}_02_T1"


def _revisit(index: int, of: str, datetime: str, cloud_cover: float, gain: float) -> Scene:
    base = next(s for s in _SEED_SCENES if s.id == of)
    return replace(
        base,
        id=landsat_id(base.wrs_path, base.wrs_row, datetime),
        datetime=datetime,
        seed=base.seed * 100 + index + 1,
        gain=gain,
        green_dropouts=(),
        cloud_cover=cloud_cover,
    )


# Every acquisition, in (path, row, datetime) order.
SCENES: dict[str, Scene] = {
    s.id: s
    for s in sorted(
        (*_SEED_SCENES, *(_revisit(i, *r) for i, r in enumerate(REVISITS))),
        key=lambda s: (s.wrs_path, s.wrs_row, s.datetime),
    )
}

# The two scenes of the seed's request, in the seed's order.
DEFAULT_SCENES = ("LC08_L2SP_044032_20231208_02_T1", "LC08_L2SP_043033_20231201_02_T1")


def scene(item_id: str) -> Scene:
    try:
        return SCENES[item_id]
    except KeyError:
        raise KeyError(f"unknown scene {item_id!r}; known: {', '.join(SCENES)}") from None


# --- where the stack publishes the inputs ---
# COGs: the `inputs` bucket, readable anonymously over plain HTTP. STAC Items: the stack's STAC API
# (stac-fastapi-pgstac), at the same paths as on the Planetary Computer's API.

INPUTS_BUCKET = "inputs"
RESULTS_BUCKET = "results"


def item_url(stac_api_url: str, item_id: str) -> str:
    """The item's URL in a STAC API, as the seed's ``{api}/collections/landsat-c2-l2/items/{id}``."""
    return f"{stac_api_url.rstrip('/')}/collections/{COLLECTION}/items/{item_id}"


def asset_key(item_id: str, band: str) -> str:
    s = scene(item_id)
    year = s.datetime[:4]
    return (
        f"landsat-c2/level-2/standard/oli-tirs/{year}/{s.wrs_path:03d}/{s.wrs_row:03d}/"
        f"{item_id}/{item_id}_{BANDS[band][0]}.TIF"
    )
