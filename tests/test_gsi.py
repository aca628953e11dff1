"""GSI DEM XML tiles: the real Fuji tile and small tiles made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from pipeline.errors import InputNotFoundError, OutputError, RasterError
from pipeline.gsi import NODATA, gsi_to_geotiff, make_tile_xml, read_gsi_tile

STEP = 1 / 18000  # 0.2 arc-second, the 5 m DEM's cell
TILE = "FG-GML-5238-74-00-DEM5A-20161001.xml"


def tile(path: Path, heights: list[list[float | None]], *, south: float = 35.0,
         west: float = 138.0, start: tuple[int, int] = (0, 0), step: float = STEP,
         name: str = "t-DEM5A.xml") -> Path:
    rows, cols = len(heights), len(heights[0])
    xml = make_tile_xml(heights, south=south, west=west, north=south + rows * step,
                        east=west + cols * step, start=start)
    out = path / name
    out.write_text(xml, encoding="utf-8")
    return out


# --- the real tile -------------------------------------------------------------

def test_real_tile(fixtures_dir: Path) -> None:
    z, transform, meta = read_gsi_tile(fixtures_dir / "gsi_dem" / TILE)
    assert z.shape == (150, 225) and z.dtype == np.float32
    # Envelope: lowerCorner 35.25 138.5, upperCorner 35.258333333 138.5125 (lat lon)
    west, south, east, north = meta["bounds"]
    assert (west, south, east) == (138.5, 35.25, 138.5125)
    assert north == pytest.approx(35.258333333, abs=1e-9)
    assert transform.c == 138.5 and transform.f == pytest.approx(north)
    assert transform.a == pytest.approx(STEP) and transform.e == pytest.approx(-STEP)
    valid = z[z != NODATA]
    assert 100 < valid.min() < valid.max() < 700  # hills near Fuji city, m T.P.
    assert z[0, 0] == pytest.approx(145.30)  # first tuple: north-west corner
    assert z[-1, -1] == pytest.approx(261.59)  # last tuple: south-east corner
    assert (z == NODATA).sum() == 302  # the inland-water cells
    assert meta["cell_types"] == {"地表面": 33448, "内水面": 302}
    assert (meta["dem_type"], meta["kind"], meta["vertical_accuracy"]) == ("DEM5A", "laser5m", 0.3)
    assert (meta["mesh"], meta["crs"]) == ("52387400", "EPSG:6668")


def test_real_tile_to_geotiff(fixtures_dir: Path, tmp_path: Path) -> None:
    src = fixtures_dir / "gsi_dem" / TILE
    out = gsi_to_geotiff([src], tmp_path / "dem.tif")
    z, transform, _ = read_gsi_tile(src)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 6668 and ds.nodata == NODATA
        assert np.array_equal(ds.read(1), z)
        assert ds.transform.almost_equals(transform)
        tags = ds.tags()
    assert tags["GSI_DEM_TYPES"] == "DEM5A" and tags["DEM_KIND"] == "laser5m"
    assert tags["VERTICAL_ACCURACY_M"] == "0.3" and tags["GSI_MESHES"] == "52387400"
    assert "国土地理院" in tags["CREDIT"]


# --- small tiles -------------------------------------------------------------------

def test_start_point_offset(tmp_path: Path) -> None:
    heights = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    z, _, _ = read_gsi_tile(tile(tmp_path, heights, start=(1, 0)))
    # the first cell is omitted, so it is nodata; the others keep their places
    assert z.tolist() == [[NODATA, 2.0, 3.0], [4.0, 5.0, 6.0]]
    z, _, _ = read_gsi_tile(tile(tmp_path, heights, start=(2, 1), name="u-DEM5A.xml"))
    assert z.tolist() == [[NODATA] * 3, [NODATA, NODATA, 6.0]]


def test_sea_cells_are_nodata(tmp_path: Path) -> None:
    z, _, meta = read_gsi_tile(tile(tmp_path, [[None, 1.25], [None, None]]))
    assert z.tolist() == [[NODATA, 1.25], [NODATA, NODATA]]
    assert meta["cell_types"] == {"地表面": 1, "海水面": 3}


def test_ten_metre_contour_tile(tmp_path: Path) -> None:
    z, transform, meta = read_gsi_tile(tile(tmp_path, [[5.5, 6.5]], step=2 * STEP,
                                            name="FG-GML-5238-74-DEM10B-20161001.xml"))
    assert z.tolist() == [[5.5, 6.5]]
    assert transform.a == pytest.approx(2 * STEP)
    assert (meta["kind"], meta["vertical_accuracy"]) == ("contour10m", 5.0)


def test_two_adjacent_tiles_mosaic(tmp_path: Path) -> None:
    a = tile(tmp_path, [[1.0, 2.0], [3.0, 4.0]], name="a-DEM5A.xml")
    b = tile(tmp_path, [[5.0, None], [7.0, 8.0]], west=138.0 + 2 * STEP, name="b-DEM5B.xml")
    below = tile(tmp_path, [[9.0, 9.0], [9.0, 9.0]], south=35.0 - 2 * STEP, name="c-DEM5A.xml")
    out = gsi_to_geotiff([a, b, below], tmp_path / "dem.tif")
    with rasterio.open(out) as ds:
        z = ds.read(1)
        assert (ds.width, ds.height) == (4, 4)
        assert ds.bounds.left == 138.0 and ds.bounds.top == pytest.approx(35.0 + 2 * STEP)
        tags = ds.tags()
        assert ds.profile["compress"] == "deflate"
    assert z.tolist() == [[1, 2, 5, NODATA], [3, 4, 7, 8], [9, 9, NODATA, NODATA],
                          [9, 9, NODATA, NODATA]]
    # mixed DEM types: the worse accuracy is recorded
    assert tags["GSI_DEM_TYPES"] == "DEM5A,DEM5B" and tags["VERTICAL_ACCURACY_M"] == "0.7"


def test_overlapping_nodata_does_not_erase(tmp_path: Path) -> None:
    a = tile(tmp_path, [[1.0, 2.0]], name="a-DEM5A.xml")
    b = tile(tmp_path, [[None, 20.0]], name="b-DEM5A.xml")
    out = gsi_to_geotiff([a, b], tmp_path / "dem.tif")
    with rasterio.open(out) as ds:
        assert ds.read(1).tolist() == [[1.0, 20.0]]


def test_mixed_resolutions_refused(tmp_path: Path) -> None:
    a = tile(tmp_path, [[1.0]], name="a-DEM5A.xml")
    b = tile(tmp_path, [[1.0]], west=138.1, step=2 * STEP, name="b-DEM10B.xml")
    with pytest.raises(RasterError, match="mosaic 5 m and 10 m tiles separately"):
        gsi_to_geotiff([a, b], tmp_path / "dem.tif")


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        read_gsi_tile(tmp_path / "none.xml")
    cut = tmp_path / "cut-DEM5A.xml"
    cut.write_text(make_tile_xml([[1.0, 2.0]], south=35, west=138, north=35.1, east=138.1)[:600],
                   encoding="utf-8")
    with pytest.raises(RasterError, match="not well-formed XML"):
        read_gsi_tile(cut)
    a = tile(tmp_path, [[1.0]])
    gsi_to_geotiff([a], tmp_path / "dem.tif")
    with pytest.raises(OutputError, match="exists"):
        gsi_to_geotiff([a], tmp_path / "dem.tif")
