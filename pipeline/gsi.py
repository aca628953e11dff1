"""GSI elevation tiles (基盤地図情報 数値標高モデル, JPGIS GML) to arrays and GeoTIFF.

The Geospatial Information Authority of Japan distributes its DEMs as one XML
file per mesh (``FG-GML-5238-74-00-DEM5A-20161001.xml``). Format facts used here:

- ``gml:Envelope`` gives ``lowerCorner`` / ``upperCorner`` as "lat lon" in
  JGD2011 (EPSG:6668); the grid is ``gml:high`` + 1 columns by rows (225 x 150
  for a 5 m tile, 1125 x 750 for a 10 m tile);
- ``gml:tupleList`` holds one ``type,height`` line per cell: ``地表面`` (ground),
  ``表層面`` (surface), ``海水面`` (sea), ``内水面`` (inland water),
  ``データなし`` (no data), ``その他``; -9999 marks a cell without height;
- ``gml:sequenceRule order="+x-y"``: rows run west to east, the first row is the
  north edge;
- ``gml:startPoint "x y"``: the first tuple is cell (x, y); cells before it and
  after the last tuple are missing.

Vertical accuracy (standard deviation) of each DEM type, from GSI's table
「数値標高モデルの種類と概要」 (https://fgd.gsi.go.jp/download/ref_dem.html):
DEM5A airborne laser 0.3 m (2.0 m where a cell has no laser ground point),
DEM5B photogrammetry 0.7 m, DEM5C photogrammetry 1.4 m, DEM10A volcano-map
contours 2.5 m, DEM10B 1:25,000 map contours 5 m. The 1 m DEM (DEM1A) is not in
that table; its accuracy is left unknown.

Credit when publishing: 「出典：国土地理院 基盤地図情報（数値標高モデル）」.
"""

from __future__ import annotations

import logging
import math
import os
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import InputNotFoundError, OutputError, RasterError

if TYPE_CHECKING:
    from affine import Affine

logger = logging.getLogger(__name__)

NODATA = -9999.0
CRS_EPSG = 6668
CREDIT = "出典：国土地理院 基盤地図情報（数値標高モデル）"
SOURCE_URL = "https://fgd.gsi.go.jp/download/ref_dem.html"

DEM_TYPES: dict[str, tuple[str, float | None, str]] = {
    "DEM1A": ("laser1m", None, "1 m, airborne laser (accuracy not in GSI's table)"),
    "DEM5A": ("laser5m", 0.3, "5 m, airborne laser"),
    "DEM5B": ("photo5m", 0.7, "5 m, photogrammetry (20 cm aerial photos)"),
    "DEM5C": ("photo5m", 1.4, "5 m, photogrammetry (40 cm aerial photos)"),
    "DEM10A": ("contour10m", 2.5, "10 m, volcano base map contours"),
    "DEM10B": ("contour10m", 5.0, "10 m, 1:25,000 topographic map contours"),
}
"""GSI DEM type -> (siteplan DEM kind, vertical accuracy in m, description)."""

_NO_HEIGHT_TYPES = ("海水面", "データなし")
_SNAP = 36000.0  # GSI grids sit on 0.1 arc-second multiples


@dataclass(frozen=True)
class _Header:
    path: Path
    dem_type: str
    type_label: str
    mesh: str
    date: str
    west: float
    south: float
    east: float
    north: float
    cols: int
    rows: int
    order: str
    start: tuple[int, int]

    @property
    def res(self) -> tuple[float, float]:
        return (self.east - self.west) / self.cols, (self.north - self.south) / self.rows


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _snap(v: float) -> float:
    """Snap a coordinate written with 9 decimals back onto the 0.1" lattice."""
    k = round(v * _SNAP)
    return k / _SNAP if abs(v * _SNAP - k) < 1e-3 else v


def _dem_type(path: Path, label: str) -> str:
    m = re.search(r"DEM(1A|5A|5B|5C|10A|10B)", path.name, re.IGNORECASE)
    if m:
        return f"DEM{m.group(1).upper()}"
    m = re.match(r"\s*(\d+)m", label)
    return f"DEM{m.group(1)}" if m else "DEM"


def _parse(path: Path, *, values: bool) -> tuple[_Header, str | None]:
    """Stream through a tile; return its header and (if asked) the tupleList text."""
    found: dict[str, Any] = {}
    tuples: str | None = None
    where = f"GSI DEM tile {path}"
    try:
        with open(path, "rb") as fh:
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                name = _local(elem.tag)
                if event == "start":
                    if name == "tupleList" and not values:
                        break  # the header is all a mosaic needs before writing
                    continue
                if name == "tupleList":
                    tuples = elem.text or ""
                elif name == "sequenceRule":
                    found["order"] = elem.get("order", "+x-y")
                elif name in ("type", "mesh", "lowerCorner", "upperCorner", "low", "high",
                              "startPoint") and name not in found:
                    found[name] = (elem.text or "").strip()
                elif name == "timePosition" and "date" not in found:
                    found["date"] = (elem.text or "").strip()
                elem.clear()
    except ET.ParseError as err:
        raise RasterError(f"{where}: not well-formed XML ({err}); the download may be truncated: "
                          "download the tile again") from None
    missing = [k for k in ("lowerCorner", "upperCorner", "high") if k not in found]
    if missing:
        raise RasterError(f"{where}: no {', '.join(missing)} element; is it a GSI DEM "
                          "(数値標高モデル) JPGIS GML file?")
    try:
        south, west = (float(x) for x in found["lowerCorner"].split())
        north, east = (float(x) for x in found["upperCorner"].split())
        lo = [int(x) for x in found.get("low", "0 0").split()]
        hi = [int(x) for x in found["high"].split()]
        start = tuple(int(x) for x in found.get("startPoint", "0 0").split())
    except ValueError as err:
        raise RasterError(f"{where}: unreadable Envelope/GridEnvelope/startPoint ({err})") from None
    header = _Header(
        path=path, dem_type=_dem_type(path, found.get("type", "")),
        type_label=found.get("type", ""), mesh=found.get("mesh", ""), date=found.get("date", ""),
        west=_snap(west), south=_snap(south), east=_snap(east), north=_snap(north),
        cols=hi[0] - lo[0] + 1, rows=hi[1] - lo[1] + 1, order=found.get("order", "+x-y"),
        start=(start[0], start[1]),
    )
    if header.order != "+x-y":
        raise RasterError(f"{where}: sequenceRule order {header.order!r} is not supported "
                          "(only '+x-y', which GSI uses)")
    if values and tuples is None:
        raise RasterError(f"{where}: no gml:tupleList; the file holds no heights")
    return header, tuples


def _values(header: _Header, text: str) -> tuple[np.ndarray, dict[str, int]]:
    """Grid of heights (nodata -9999) and the count of each cell type.

    The tuples are parsed by pandas' C CSV reader in one pass (a 10 m tile has
    843,750 of them).
    """
    import io

    import pandas as pd

    n_cells = header.cols * header.rows
    offset = header.start[1] * header.cols + header.start[0]
    grid = np.full(n_cells, NODATA, dtype=np.float32)
    counts: dict[str, int] = {}
    if text.strip():
        try:
            table = pd.read_csv(io.StringIO(text), header=None, names=["kind", "z"],
                                dtype={"kind": "category", "z": "float64"})
        except (ValueError, pd.errors.ParserError) as err:
            raise RasterError(f"GSI DEM tile {header.path}: unreadable tupleList ({err})") from None
        if len(table) + offset > n_cells:
            raise RasterError(f"GSI DEM tile {header.path}: {len(table)} heights from cell "
                              f"{offset} do not fit a {header.cols} x {header.rows} grid")
        z = table["z"].to_numpy(dtype=np.float64, na_value=NODATA, copy=True)
        z[table["kind"].isin(_NO_HEIGHT_TYPES).to_numpy() | (z <= NODATA)] = NODATA
        grid[offset:offset + len(z)] = z
        counts = {str(k): int(c) for k, c in table["kind"].value_counts(sort=False).items()
                  if c > 0}
    return grid.reshape(header.rows, header.cols), counts


def _transform(h: _Header) -> Affine:
    from affine import Affine

    dx, dy = h.res
    return Affine(dx, 0.0, h.west, 0.0, -dy, h.north)


def read_gsi_tile(path: str | os.PathLike[str]) -> tuple[np.ndarray, Affine, dict[str, Any]]:
    """Read one GSI DEM XML tile.

    Parameters
    ----------
    path : str or Path
        A ``FG-GML-*-DEM*.xml`` file.

    Returns
    -------
    array : ndarray
        float32 heights in m T.P., north row first; -9999 where there is no
        height (sea, no data, inland water without a height, omitted cells).
    transform : affine.Affine
        In EPSG:6668 with x = longitude, y = latitude.
    meta : dict
        ``dem_type`` (``"DEM5A"``...), ``kind`` (``"laser5m"``...),
        ``vertical_accuracy`` (m or None), ``mesh``, ``date``, ``type_label``,
        ``bounds`` (west, south, east, north), ``crs`` (``"EPSG:6668"``),
        ``nodata``, ``cell_types`` (count of each tuple type).

    Examples
    --------
    >>> import tempfile
    >>> xml = Path(tempfile.mkdtemp()) / "FG-GML-5238-74-00-DEM5A-20161001.xml"
    >>> _ = xml.write_text(make_tile_xml([[1.5, 2.5], [3.5, None]], south=35.0, west=138.0,
    ...                                  north=35.0 + 2 / 18000, east=138.0 + 2 / 18000),
    ...                    encoding="utf-8")
    >>> z, transform, meta = read_gsi_tile(xml)
    >>> z.tolist()
    [[1.5, 2.5], [3.5, -9999.0]]
    >>> meta["dem_type"], meta["vertical_accuracy"], meta["cell_types"]
    ('DEM5A', 0.3, {'地表面': 3, '海水面': 1})
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"GSI DEM tile {path}: file not found; check the path")
    header, text = _parse(path, values=True)
    grid, counts = _values(header, text or "")
    kind, accuracy, _ = DEM_TYPES.get(header.dem_type, ("other", None, ""))
    meta = {
        "dem_type": header.dem_type, "kind": kind, "vertical_accuracy": accuracy,
        "mesh": header.mesh, "date": header.date, "type_label": header.type_label,
        "bounds": (header.west, header.south, header.east, header.north),
        "crs": f"EPSG:{CRS_EPSG}", "nodata": NODATA, "cell_types": counts,
    }
    return grid, _transform(header), meta


def gsi_to_geotiff(
    paths: Sequence[str | os.PathLike[str]],
    dst: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Mosaic GSI DEM XML tiles into one EPSG:6668 GeoTIFF (nodata -9999).

    Headers are read first to size the mosaic; then each tile is parsed and
    written into its window, one tile in memory at a time. Where tiles overlap,
    a later tile's heights replace earlier ones but its nodata cells do not.
    The GeoTIFF is tiled and deflate-compressed, written to a temporary file
    and moved into place. Its tags record the DEM type(s), the siteplan DEM
    kind and the vertical accuracy (the worst of the tiles'), the meshes and
    GSI's credit line: ``GSI_DEM_TYPES``, ``DEM_KIND``, ``VERTICAL_ACCURACY_M``
    (empty when unknown), ``GSI_MESHES``, ``CREDIT``, ``ACCURACY_SOURCE``.

    Parameters
    ----------
    paths : sequence of path
        Tiles of one resolution (5 m and 10 m tiles need separate mosaics).
    dst : str or Path
        Output GeoTIFF.
    overwrite : bool
        Replace an existing ``dst``.

    Returns
    -------
    Path
        ``dst``.

    Examples
    --------
    Two 2 x 2 tiles side by side make a 2 x 4 mosaic:

    >>> import tempfile, rasterio
    >>> d = Path(tempfile.mkdtemp())
    >>> step = 1 / 18000
    >>> for i, (name, w) in enumerate([("a", 138.0), ("b", 138.0 + 2 * step)]):
    ...     _ = (d / f"{name}-DEM5A.xml").write_text(make_tile_xml(
    ...         [[i, i], [i, i]], south=35.0, west=w, north=35.0 + 2 * step, east=w + 2 * step),
    ...         encoding="utf-8")
    >>> out = gsi_to_geotiff(sorted(d.glob("*.xml")), d / "dem.tif")
    >>> with rasterio.open(out) as ds:
    ...     ds.read(1).tolist(), ds.crs.to_epsg(), ds.tags()["VERTICAL_ACCURACY_M"]
    ([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]], 6668, '0.3')
    """
    import rasterio
    from rasterio.windows import Window

    dst = Path(dst)
    if not paths:
        raise RasterError("gsi_to_geotiff: no tile given")
    files = [Path(p) for p in paths]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise InputNotFoundError(f"GSI DEM tiles not found: {', '.join(missing)}")
    if dst.exists() and not overwrite:
        raise OutputError(f"GSI DEM mosaic: {dst} exists; pass overwrite=True (--overwrite) "
                          "or choose another output path")
    headers = [_parse(p, values=False)[0] for p in files]
    dx, dy = headers[0].res
    odd = [h.path.name for h in headers
           if not (math.isclose(h.res[0], dx, rel_tol=1e-6) and math.isclose(h.res[1], dy, rel_tol=1e-6))]
    if odd:
        raise RasterError(f"GSI DEM mosaic: tiles {odd} have another cell size than "
                          f"{headers[0].path.name}; mosaic 5 m and 10 m tiles separately")
    west, north = min(h.west for h in headers), max(h.north for h in headers)
    width = round((max(h.east for h in headers) - west) / dx)
    height = round((north - min(h.south for h in headers)) / dy)
    from affine import Affine

    transform = Affine(dx, 0.0, west, 0.0, -dy, north)
    profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "width": width,
               "height": height, "crs": f"EPSG:{CRS_EPSG}", "transform": transform,
               "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate", "predictor": 3}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        with rasterio.open(tmp, "w+", **profile) as out:
            for h in headers:
                col, row = round((h.west - west) / dx), round((north - h.north) / dy)
                full, text = _parse(h.path, values=True)  # startPoint follows the tuples
                grid, _ = _values(full, text or "")
                window = Window(col, row, h.cols, h.rows)
                old = out.read(1, window=window)
                out.write(np.where(grid != NODATA, grid, old), 1, window=window)
            out.update_tags(**_tags(headers))
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("GSI DEM mosaic: %d tiles (%s) -> %s (%d x %d)", len(headers),
                ",".join(sorted({h.dem_type for h in headers})), dst, width, height)
    return dst


def _tags(headers: Sequence[_Header]) -> dict[str, str]:
    types = sorted({h.dem_type for h in headers})
    known = [DEM_TYPES[t] for t in types if t in DEM_TYPES]
    accuracies = [a for _, a, _ in known if a is not None]
    unknown = len(accuracies) < len(types)
    worst = max(known, key=lambda k: k[1] or 0.0) if known else ("other", None, "")
    return {
        "GSI_DEM_TYPES": ",".join(types),
        "DEM_KIND": worst[0],
        "VERTICAL_ACCURACY_M": "" if unknown or not accuracies else f"{max(accuracies):g}",
        "GSI_MESHES": ",".join(sorted({h.mesh for h in headers if h.mesh})),
        "CREDIT": CREDIT,
        "ACCURACY_SOURCE": SOURCE_URL,
    }


def make_tile_xml(
    heights: Sequence[Sequence[float | None]],
    *,
    south: float,
    west: float,
    north: float,
    east: float,
    start: tuple[int, int] = (0, 0),
    mesh: str = "00000000",
    label: str = "5mメッシュ（標高）",
) -> str:
    """A minimal GSI DEM XML tile (for tests and examples).

    ``heights`` are rows north to south; None writes a ``海水面,-9999.`` cell.
    With ``start=(x, y)`` the cells before (x, y) are left out of the tupleList,
    as GSI does.

    Examples
    --------
    >>> print(make_tile_xml([[1.0]], south=35, west=138, north=35.1, east=138.1)[:38])
    <?xml version="1.0" encoding="UTF-8"?>
    """
    rows, cols = len(heights), len(heights[0])
    flat = [v for row in heights for v in row][start[1] * cols + start[0]:]
    tuples = "\n".join("海水面,-9999." if v is None else f"地表面,{v:.2f}" for v in flat)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Dataset xmlns:gml="http://www.opengis.net/gml/3.2" xmlns="http://fgd.gsi.go.jp/spec/2008/FGD_GMLSchema">
<DEM gml:id="DEM001"><type>{label}</type><mesh>{mesh}</mesh>
<coverage gml:id="DEM001-3"><gml:boundedBy><gml:Envelope srsName="fguuid:jgd2011.bl">
<gml:lowerCorner>{south:.9f} {west:.9f}</gml:lowerCorner>
<gml:upperCorner>{north:.9f} {east:.9f}</gml:upperCorner></gml:Envelope></gml:boundedBy>
<gml:gridDomain><gml:Grid dimension="2" gml:id="DEM001-4"><gml:limits><gml:GridEnvelope>
<gml:low>0 0</gml:low><gml:high>{cols - 1} {rows - 1}</gml:high></gml:GridEnvelope></gml:limits>
</gml:Grid></gml:gridDomain>
<gml:rangeSet><gml:DataBlock><gml:tupleList>
{tuples}
</gml:tupleList></gml:DataBlock></gml:rangeSet>
<gml:coverageFunction><gml:GridFunction><gml:sequenceRule order="+x-y">Linear</gml:sequenceRule>
<gml:startPoint>{start[0]} {start[1]}</gml:startPoint></gml:GridFunction></gml:coverageFunction>
</coverage></DEM></Dataset>
"""
