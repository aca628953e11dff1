"""Reading and checking input layers, and bringing them into the study CRS.

Every vector layer is checked on read: the file exists and opens, it has a CRS
(or the study file declares one), it is not empty, its geometries are of the
expected family, invalid geometries are repaired when that barely changes them
and rejected otherwise, and it overlaps the study area. It is then reprojected
into the study's metric CRS. Problems are gathered and raised once, naming the
file, the layer and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from pipeline.config import LayerSpec, Study
from pipeline.crs import resolve_crs
from pipeline.errors import CRSError, InputNotFoundError, LayerError, raise_all

logger = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".fgb")

_FAMILIES = {
    "polygon": ("Polygon", "MultiPolygon"),
    "line": ("LineString", "MultiLineString"),
    "point": ("Point", "MultiPoint"),
}


def _where(name: str, path: Path | str) -> str:
    return f"layer {name!r} ({path})"


def _read_file(spec: LayerSpec, name: str, url_env: str = "SITEPLAN_DATABASE_URL"
               ) -> gpd.GeoDataFrame:
    if spec.table:
        from pipeline.postgis import read_table

        return read_table(spec.table, url_env=url_env, layer=name, crs=spec.crs)
    path = spec.path
    assert path is not None
    if not path.exists():
        raise InputNotFoundError(
            f"{_where(name, path)}: file does not exist; fix `path` in [layers.{name}] of the "
            "study file (relative paths are relative to the study file)"
        )
    suffix = path.suffix.lower()
    if suffix not in VECTOR_SUFFIXES:
        raise LayerError(f"{_where(name, path)}: unsupported format {suffix!r}; use one of "
                         f"{', '.join(VECTOR_SUFFIXES)}")
    try:
        if suffix in (".parquet", ".geoparquet"):
            return gpd.read_parquet(path)
        return gpd.read_file(path, layer=spec.layer or None, engine="pyogrio")
    except (OSError, ValueError, RuntimeError) as err:
        raise LayerError(f"{_where(name, path)}: cannot be read ({err}); check that the file is "
                         "a complete vector file" + (" and that the layer name exists"
                                                     if spec.layer else "")) from None


def _assign_crs(gdf: gpd.GeoDataFrame, spec: LayerSpec, name: str) -> gpd.GeoDataFrame:
    where = _where(name, spec.source)
    if gdf.crs is None:
        if not spec.crs:
            raise CRSError(
                f"{where}: has no CRS. Declare it in the study file ([layers.{name}] crs = "
                "'EPSG:....') or fix the file (e.g. add the .prj of a shapefile); siteplan never "
                "guesses a CRS"
            )
        return gdf.set_crs(spec.crs)
    if spec.crs and not CRS.from_user_input(spec.crs).equals(gdf.crs, ignore_axis_order=True):
        raise CRSError(f"{where}: the file declares {gdf.crs.to_string()} but the study file says "
                       f"crs = {spec.crs!r}; remove `crs` from [layers.{name}] or fix the file")
    return gdf


def _repair(gdf: gpd.GeoDataFrame, name: str, path: Path | str, max_change: float,
            id_column: str | None) -> gpd.GeoDataFrame:
    geoms = gdf.geometry.values
    invalid = ~shapely.is_valid(geoms)
    if not invalid.any():
        return gdf
    fixed = shapely.make_valid(geoms[invalid])
    polygonal = shapely.get_type_id(geoms[invalid]) >= 3
    if polygonal.any():  # keep only the polygonal parts of a repaired polygon
        fixed[polygonal] = _polygonal_part(fixed[polygonal])
        collapsed = polygonal & shapely.is_empty(fixed)
        if collapsed.any():
            ids = _ids(gdf.loc[invalid].loc[collapsed], id_column)
            raise LayerError(
                f"{_where(name, path)}: {collapsed.sum()} polygon(s) ({ids}) have zero area "
                "(collinear or repeated vertices) and cannot be repaired; redraw or remove them "
                "in the file"
            )
        before = np.abs(shapely.area(geoms[invalid]))  # signed-ring area of the invalid shape
        after = shapely.area(fixed)
        change = np.abs(after - before) / np.maximum(np.maximum(before, after), 1e-12)
        too_much = polygonal & (change > max_change)
        if too_much.any():
            ids = _ids(gdf.loc[invalid].loc[too_much], id_column)
            raise LayerError(
                f"{_where(name, path)}: {too_much.sum()} invalid polygon(s) ({ids}) would change "
                f"area by more than {max_change:.0%} if repaired (up to "
                f"{change[too_much].max():.0%}); fix them in a GIS (e.g. QGIS 'Fix geometries')"
                + (" or raise [layers.parcels] max_repair_change" if name == "parcels" else "")
            )
    logger.warning("%s: repaired %d invalid geometr%s (%s)", _where(name, path), invalid.sum(),
                   "y" if invalid.sum() == 1 else "ies", _ids(gdf.loc[invalid], id_column))
    out = gdf.copy()
    values = out.geometry.values.copy()
    values[invalid] = fixed
    out[out.geometry.name] = values
    return out


def _polygonal_part(geoms: np.ndarray) -> np.ndarray:
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_type_id(parts) == 3
    merged = np.empty(len(geoms), dtype=object)
    merged[:] = shapely.from_wkt("POLYGON EMPTY")
    if keep.any():
        groups = gpd.GeoSeries(parts[keep]).groupby(index[keep]).agg(
            lambda s: shapely.multipolygons(list(s)) if len(s) > 1 else s.iloc[0])
        merged[groups.index.to_numpy()] = groups.to_numpy()
    return merged


def _ids(frame: gpd.GeoDataFrame, id_column: str | None, limit: int = 5) -> str:
    values = frame[id_column] if id_column and id_column in frame else frame.index
    shown = [str(v) for v in list(values)[:limit]]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ("ids " if id_column else "rows ") + ", ".join(shown) + more


def read_vector(
    spec: LayerSpec,
    *,
    name: str,
    crs: CRS,
    family: str,
    columns: Sequence[str] = (),
    study_area: shapely.Geometry | None = None,
    id_column: str | None = None,
    max_repair_change: float = 0.01,
    url_env: str = "SITEPLAN_DATABASE_URL",
) -> gpd.GeoDataFrame:
    """Read one vector layer, check it, and reproject it into the study CRS.

    Parameters
    ----------
    spec : LayerSpec
        The layer's entry in the study file.
    name : str
        The layer's role (``"parcels"``, ``"roads"``...), used in messages.
    crs : pyproj.CRS
        The study's metric CRS.
    family : {"polygon", "line", "point"}
        The geometry family the layer must hold.
    columns : sequence of str
        Attribute columns that must be present.
    study_area : shapely geometry, optional
        In ``crs``; the layer must overlap it.
    id_column : str, optional
        Column that names features in messages.
    max_repair_change : float
        Largest relative area change accepted when repairing invalid polygons.
    url_env : str
        Environment variable with the PostGIS connection string (layers given by
        ``table``).

    Returns
    -------
    GeoDataFrame
        In ``crs``, without empty geometries, with valid geometries.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from shapely.geometry import box
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> gpd.GeoDataFrame({"site_id": ["A"]}, geometry=[box(145.1, 43.0, 145.11, 43.01)],
    ...                  crs=4326).to_file(folder / "p.gpkg")
    >>> gdf = read_vector(LayerSpec(path=folder / "p.gpkg"), name="parcels",
    ...                   crs=CRS.from_epsg(6681), family="polygon")
    >>> gdf.crs.to_epsg(), round(gdf.area.iloc[0] / 1e4)
    (6681, 91)
    """
    gdf = _read_file(spec, name, url_env)
    where = _where(name, spec.source)
    gdf = _assign_crs(gdf, spec, name)
    problems = []
    if len(gdf) == 0:
        raise LayerError(f"{where}: the layer is empty; it needs at least one feature")
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)} (found: "
                        f"{', '.join(c for c in gdf.columns if c != gdf.geometry.name)}); "
                        f"rename them in the file or set the column names in [layers.{name}]")
    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    if empty.all():
        raise LayerError(f"{where}: every geometry is empty ({len(gdf)} features without a "
                         "shape); export the layer again with its geometries")
    if empty.any():
        logger.warning("%s: dropped %d empty geometr%s (%s)", where, empty.sum(),
                       "y" if empty.sum() == 1 else "ies", _ids(gdf.loc[empty], id_column))
        gdf = gdf.loc[~empty]
    wrong = ~gdf.geom_type.isin(_FAMILIES[family])
    if wrong.any():
        kinds = ", ".join(sorted(set(gdf.geom_type[wrong])))
        problems.append(f"expected {family} geometries, found {kinds} ({_ids(gdf.loc[wrong], id_column)}); "
                        f"point [layers.{name}] at a {family} layer")
    raise_all(problems, LayerError, where)
    gdf = _repair(gdf, name, spec.source, max_repair_change, id_column)
    gdf = gdf.to_crs(crs)
    if study_area is not None and not gdf.geometry.intersects(study_area).any():
        raise LayerError(
            f"{where}: does not overlap the study area (the parcels' extent {_fmt_bounds(study_area)} "
            f"in {crs.to_string()}); its extent is {_fmt_bounds(gdf.total_bounds)}. Check the "
            "layer's CRS (a wrong CRS puts it elsewhere) and that it covers the study area"
        )
    logger.debug("%s: %d features in %s", where, len(gdf), crs.to_string())
    return gdf


def _fmt_bounds(geom_or_bounds: shapely.Geometry | np.ndarray) -> str:
    b = geom_or_bounds.bounds if hasattr(geom_or_bounds, "bounds") else geom_or_bounds
    return "(" + ", ".join(f"{v:.0f}" for v in b) + ")"


def check_raster_extent(path: Path, *, name: str, crs: CRS,
                        study_area: shapely.Geometry) -> None:
    """Raise LayerError when a raster does not overlap the study area (in ``crs``).

    Only the header is read; the raster's bounds are transformed into ``crs``.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> tif = Path(tempfile.mkdtemp()) / "d.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=2, height=2, count=1,
    ...                    dtype="float32", crs="EPSG:6681",
    ...                    transform=Affine(10, 0, 0, 0, -10, 20)) as ds:
    ...     ds.write(np.zeros((1, 2, 2), "float32"))
    >>> check_raster_extent(tif, name="dem", crs=CRS.from_epsg(6681),
    ...                     study_area=shapely.box(0, 0, 5, 5))
    >>> check_raster_extent(tif, name="dem", crs=CRS.from_epsg(6681),
    ...                     study_area=shapely.box(100, 100, 200, 200))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.LayerError: layer 'dem' (...d.tif): does not overlap the study area ...
    """
    import rasterio
    from rasterio.warp import transform_bounds

    from pipeline.raster import open_raster_checked

    info = open_raster_checked(path, layer=name)
    with rasterio.Env():
        bounds = transform_bounds(info.crs, crs.to_wkt(), *info.bounds)
    if not shapely.box(*bounds).intersects(study_area):
        raise LayerError(
            f"{_where(name, path)}: does not overlap the study area (the parcels' extent "
            f"{_fmt_bounds(study_area)} in {crs.to_string()}); its extent is "
            f"{_fmt_bounds(np.asarray(bounds))} (declared CRS {info.crs.to_string()}). Check the "
            "raster's CRS (a wrong CRS puts it elsewhere) and that it covers the study area"
        )


def study_crs(study: Study) -> CRS:
    """The study's metric CRS: declared, or picked from the parcels' location.

    Examples
    --------
    >>> from pipeline.config import study_from_dict
    >>> s = study_from_dict({"study": {"name": "x", "crs": "EPSG:6681"},
    ...     "layers": {"parcels": {"path": "p.gpkg"}, "dem": {"path": "d.tif"}}}, Path("s.toml"))
    >>> study_crs(s).to_epsg()
    6681
    """
    if study.study.crs != "auto":
        return resolve_crs(study.study.crs, lonlat_centre=None)
    spec = study.layers.parcels
    gdf = _assign_crs(_read_file(spec, "parcels", study.database.url_env), spec, "parcels")
    x0, y0, x1, y1 = gdf.to_crs(4326).total_bounds  # bounds need no valid geometry
    lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
    crs = resolve_crs("auto", lonlat_centre=(lon, lat))
    logger.info("study CRS: %s (%s), picked from the parcels' location", crs.to_string(), crs.name)
    return crs


def read_parcels(study: Study, crs: CRS) -> gpd.GeoDataFrame:
    """The candidate parcels, checked, in the study CRS, indexed by their id.

    Raises LayerError for duplicate or missing ids.
    """
    spec = study.layers.parcels
    gdf = read_vector(spec, name="parcels", crs=crs, family="polygon",
                      columns=(spec.id_column,), id_column=spec.id_column,
                      max_repair_change=spec.max_repair_change,
                      url_env=study.database.url_env)
    ids = gdf[spec.id_column]
    problems = []
    if ids.isna().any():
        problems.append(f"{ids.isna().sum()} parcel(s) have no {spec.id_column}")
    dupes = sorted(ids[ids.duplicated()].astype(str).unique())
    if dupes:
        problems.append(f"duplicate {spec.id_column} values: {', '.join(dupes[:10])}; "
                        "each parcel needs a unique id")
    raise_all(problems, LayerError, _where("parcels", spec.source))
    gdf = gdf.set_index(gdf[spec.id_column].astype(str).rename("site_id"))
    if spec.name_column not in gdf.columns:
        gdf["name"] = gdf.index
    elif spec.name_column != "name":
        gdf["name"] = gdf[spec.name_column]
    gdf["name"] = gdf["name"].astype(str)
    return gdf


def study_area(parcels: gpd.GeoDataFrame, margin: float) -> shapely.Geometry:
    """The parcels' bounding box buffered by ``margin`` metres."""
    return shapely.box(*parcels.total_bounds).buffer(margin, join_style="mitre")
