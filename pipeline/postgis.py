"""PostGIS layers and results: read a table as a layer, write the sites table back.

A study may name a table instead of a file (``[layers.parcels] table = "public.parcels"``)
and a results table (``[database] results_table``). The connection string comes from the
environment variable named by ``[database] url_env`` (default ``SITEPLAN_DATABASE_URL``),
never from the study file. It is never written to outputs, state files, logs or messages:
those show it masked (:func:`mask_url`), and database error texts are scrubbed of it.

Only psycopg 3 is needed (``pip install 'psycopg[binary]'``). Geometries travel as WKB and
are decoded by shapely; the CRS comes from the geometry column's SRID through
``spatial_ref_sys``. A table's fingerprint (:func:`table_digest`) hashes its column types
and the text of every row, so it changes exactly when the content does.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.errors import (
    ConfigError,
    CRSError,
    InputNotFoundError,
    LayerError,
    OutputError,
    SiteplanError,
)

if TYPE_CHECKING:
    import psycopg

    from pipeline.config import Study

logger = logging.getLogger(__name__)

DEFAULT_URL_ENV = "SITEPLAN_DATABASE_URL"
RESULTS_MARK = "siteplan results table"
"""Start of the comment :func:`write_table` puts on its tables; only those are replaced."""

_RELKINDS = ("r", "p", "v", "m", "f")  # tables, partitioned tables, views, mat. views, foreign
_POSTGIS_TABLES = {"spatial_ref_sys", "geometry_columns", "geography_columns",
                   "raster_columns", "raster_overviews"}
_DIGEST_SETTINGS = ("SET LOCAL TimeZone = 'UTC'", "SET LOCAL DateStyle = 'ISO, YMD'",
                    "SET LOCAL IntervalStyle = 'postgres'", "SET LOCAL extra_float_digits = 1",
                    "SET LOCAL bytea_output = 'hex'")


# --------------------------------------------------------------------------- connection


def database_url(study: Study) -> str:
    """The connection string of the study's database, from the environment.

    Parameters
    ----------
    study : Study
        Its ``[database] url_env`` names the environment variable.

    Returns
    -------
    str
        The connection string (a ``postgresql://`` URL or libpq ``key=value`` pairs).
        Never log or store it; show :func:`mask_url` of it instead.

    Raises
    ------
    ConfigError
        The variable is not set or is empty.

    Examples
    --------
    >>> import os
    >>> from pathlib import Path
    >>> from pipeline.config import study_from_dict
    >>> study = study_from_dict({"study": {"name": "x"}, "database": {"url_env": "MY_DB"},
    ...     "layers": {"parcels": {"table": "public.parcels"}, "dem": {"path": "d.tif"}}},
    ...     Path("s.toml"))
    >>> os.environ["MY_DB"] = "postgresql://gis:secret@localhost/gis"
    >>> mask_url(database_url(study))
    'postgresql://gis:***@localhost/gis'
    >>> del os.environ["MY_DB"]
    >>> database_url(study)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: [database] url_env: the environment variable MY_DB is not set; ...
    """
    return _url_from_env(study.database.url_env)


def _url_from_env(url_env: str) -> str:
    url = os.environ.get(url_env, "").strip()
    if not url:
        raise ConfigError(
            f"[database] url_env: the environment variable {url_env} is not set; the study reads "
            f"or writes PostGIS tables. Set it to the connection string before running, e.g. "
            f"export {url_env}='postgresql://USER:PASSWORD@HOST:5432/DATABASE' (or leave the "
            "password out and use ~/.pgpass or PGPASSWORD); siteplan never stores it"
        )
    return url


def mask_url(url: str) -> str:
    """The connection string for messages: ``postgresql://user:***@host:port/db``.

    Only the user, host, port and database name are shown; the password and every
    other parameter are left out.

    Examples
    --------
    >>> mask_url("postgresql://gis:s3cret@127.0.0.1:5433/towns?sslmode=require")
    'postgresql://gis:***@127.0.0.1:5433/towns'
    >>> mask_url("host=db.example password='a b' user=gis dbname=towns")
    'postgresql://gis:***@db.example/towns'
    >>> mask_url("not a connection string")
    '(an unreadable connection string)'
    """
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except ProgrammingError:
        return "(an unreadable connection string)"
    user = str(info.get("user", ""))
    secret = ":***" if info.get("password") else ""
    login = f"{user}{secret}@" if user or secret else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{login}{info.get('host', '')}{port}/{info.get('dbname', '')}"


def _scrub(text: str, url: str) -> str:
    """``text`` with the connection string and its password replaced by the masked form."""
    from urllib.parse import quote

    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    text = text.replace(url, mask_url(url))
    try:
        password = str(conninfo_to_dict(url).get("password") or "")
    except ProgrammingError:
        password = ""
    for secret in {password, quote(password, safe="")} - {""}:
        text = text.replace(secret, "***")
    return " ".join(text.split())


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError("the study reads or writes PostGIS tables but psycopg is not "
                          "installed; install it with pip install 'psycopg[binary]>=3.1'") from None
    return psycopg


@contextmanager
def _connect(url: str, *, error: type[SiteplanError]) -> Iterator[psycopg.Connection]:
    """A connection (closed on exit); ``error`` when the server cannot be reached."""
    psycopg = _psycopg()
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.types.numeric import FloatLoader

    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError as err:
        raise ConfigError(f"the PostGIS connection string (the environment variable named by "
                          f"[database] url_env) is not valid ({_scrub(str(err), url)}); give "
                          "postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from None
    extra = {k: v for k, v in {"connect_timeout": 10, "application_name": "siteplan"}.items()
             if k not in given}
    try:
        conn = psycopg.connect(url, **extra)
    except psycopg.Error as err:
        raise error(
            f"PostGIS database {mask_url(url)}: cannot connect ({_scrub(str(err), url)}); check "
            "that the server is running and reachable from this machine, and the host, port, "
            "user, password and database name of the connection string"
        ) from None
    conn.adapters.register_loader("numeric", FloatLoader)  # numeric -> float, not Decimal
    try:
        yield conn
    finally:
        conn.close()


# --------------------------------------------------------------------------- tables


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = table.strip().rpartition(".")
    return (schema or None), name


def _qualified(schema: str, name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(schema, name)


def _relations(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Every table and view the user can see, schema first, in search-path order."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = ANY(%s) AND n.nspname <> 'information_schema' "
        "AND n.nspname NOT LIKE 'pg\\_%%' "
        "ORDER BY array_position(current_schemas(false), n.nspname::name), 1, 2",
        [list(_RELKINDS)]).fetchall()
    return [(str(s), str(n)) for s, n in rows]


def _resolve(conn: psycopg.Connection, table: str, where: str, url: str) -> tuple[str, str]:
    """(schema, name) of ``table``: exact match first, then PostgreSQL's lower-case folding.

    A table without schema is looked up along the search path.
    """
    schema, name = _split(table)
    relations = _relations(conn)
    for fold in (str, str.lower):
        found = [(s, n) for s, n in relations
                 if n == fold(name) and (schema is None or s == fold(schema))]
        if found:
            return found[0]
    names = [f"{s}.{n}" for s, n in relations if n not in _POSTGIS_TABLES]
    close = difflib.get_close_matches(table if schema else f"public.{name}", names, n=5,
                                      cutoff=0.5)
    if close:
        hint = f"similar tables: {', '.join(close)}"
    elif names:
        hint = f"tables there: {', '.join(names[:10])}" + (" ..." if len(names) > 10 else "")
    else:
        hint = "the database has no tables"
    raise InputNotFoundError(f"{where}: no such table or view in PostGIS database "
                             f"{mask_url(url)} ({hint}); fix `table` in the study file "
                             "('schema.table')")


def _columns(conn: psycopg.Connection, schema: str, name: str) -> list[tuple[str, str, str, int]]:
    """(name, type name, formatted type, typmod SRID) of each column, in table order."""
    srid = ("CASE WHEN t.typname IN ('geometry', 'geography') AND a.atttypmod > 0 "
            "THEN postgis_typmod_srid(a.atttypmod) ELSE 0 END" if _has_postgis(conn) else "0")
    rows = conn.execute(
        "SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod), " + srid
        + " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum", [schema, name]).fetchall()
    return [(str(c), str(t), str(f), int(s)) for c, t, f, s in rows]


def _has_postgis(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
    return row is not None


def _primary_key(conn: psycopg.Connection, schema: str, name: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary ORDER BY a.attnum",
        [schema, name]).fetchall()
    return [str(r[0]) for r in rows]


def _srid(conn: psycopg.Connection, schema: str, name: str, column: str, typmod_srid: int,
          where: str) -> int:
    """The column's SRID: declared in its type, else the one SRID of its geometries."""
    from psycopg import sql

    if typmod_srid > 0:
        return typmod_srid
    found = [int(r[0]) for r in conn.execute(
        sql.SQL("SELECT DISTINCT ST_SRID({c}::geometry) FROM {t} WHERE {c} IS NOT NULL LIMIT 3")
        .format(c=sql.Identifier(column), t=_qualified(schema, name))).fetchall()]
    if len(found) > 1:
        raise CRSError(f"{where}: geometry column {column!r} mixes SRIDs "
                       f"{', '.join(map(str, sorted(found)))}; give every geometry one SRID "
                       "(ST_Transform) and declare it in the column type")
    return found[0] if found else 0


def _crs_of(conn: psycopg.Connection, srid: int, where: str) -> str:
    row = conn.execute("SELECT auth_name, auth_srid, srtext FROM spatial_ref_sys WHERE srid = %s",
                       [srid]).fetchone()
    if row is None:
        raise CRSError(f"{where}: SRID {srid} is not in the database's spatial_ref_sys; use an "
                       "EPSG code as SRID (UpdateGeometrySRID)")
    auth, code, wkt = row
    return f"{auth}:{code}" if auth and code else str(wkt)


def read_table(table: str, *, url_env: str = DEFAULT_URL_ENV, layer: str = "",
               crs: str = "") -> gpd.GeoDataFrame:
    """Read a PostGIS table or view as a GeoDataFrame in its own CRS.

    Parameters
    ----------
    table : str
        ``"schema.table"`` (or ``"table"``, looked up along the search path).
    url_env : str
        Environment variable holding the connection string.
    layer : str
        The layer's role in the study (``"parcels"``...), for messages.
    crs : str
        CRS to assume when the geometry column has no SRID (the layer's ``crs``); a
        column with an SRID keeps its own.

    Returns
    -------
    GeoDataFrame
        Every attribute column (``numeric`` read as float) and the first geometry (or
        geography) column as ``geometry``; rows in primary-key order when there is one.
        Checks and reprojection are left to :mod:`pipeline.layers`.

    Raises
    ------
    ConfigError
        ``url_env`` is not set.
    InputNotFoundError
        The server cannot be reached, or the table does not exist (similar tables named).
    LayerError
        The table has no geometry column, or cannot be read.
    CRSError
        The geometry column has no SRID (and ``crs`` is empty), mixed SRIDs, or an SRID
        missing from ``spatial_ref_sys``.

    Examples
    --------
    >>> read_table("public.parcels", url_env="NO_SUCH_VARIABLE")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: [database] url_env: the environment variable NO_SUCH_VARIABLE ...
    """
    url = _url_from_env(url_env)
    where = f"layer {layer!r} (postgis:{table})" if layer else f"PostGIS table {table!r}"
    psycopg = _psycopg()
    with _connect(url, error=InputNotFoundError) as conn:
        try:
            schema, name = _resolve(conn, table, where, url)
            frame, srid = _read(conn, schema, name, where)
            crs_text = _crs_of(conn, srid, where) if srid else crs
        except psycopg.Error as err:
            raise LayerError(f"{where}: cannot be read from {mask_url(url)} "
                             f"({_scrub(str(err), url)})") from None
    if not crs_text:
        raise CRSError(
            f"{where}: the geometry column has no SRID (0), so its CRS is unknown; set it in "
            f"the database (SELECT UpdateGeometrySRID('{schema}', '{name}', "
            f"'{frame.geometry.name}', 6681), with your CRS's EPSG code) or declare it in the "
            f"study file ([layers.{layer or 'NAME'}] crs = 'EPSG:....')")
    logger.info("%s: read %d rows from %s.%s at %s (SRID %d)", where, len(frame), schema, name,
                mask_url(url), srid)
    return frame.set_crs(crs_text)


def _read(conn: psycopg.Connection, schema: str, name: str, where: str
          ) -> tuple[gpd.GeoDataFrame, int]:
    from psycopg import sql

    columns = _columns(conn, schema, name)
    spatial = [c for c in columns if c[1] in ("geometry", "geography")]
    if not spatial:
        raise LayerError(
            f"{where}: the table has no geometry column (columns: "
            f"{', '.join(c[0] for c in columns) or 'none'}); point `table` at a table or view "
            "with a PostGIS geometry column, or add one (AddGeometryColumn)"
            + ("" if _has_postgis(conn) else
               "; the database has no PostGIS extension (CREATE EXTENSION postgis)"))
    geom, _, _, typmod_srid = spatial[0]
    if len(spatial) > 1:
        logger.info("%s: using geometry column %r of %s", where, geom,
                    ", ".join(c[0] for c in spatial))
    srid = _srid(conn, schema, name, geom, typmod_srid, where)
    attrs = [c[0] for c in columns if c[1] not in ("geometry", "geography", "raster")]
    order = _primary_key(conn, schema, name)
    query = sql.SQL("SELECT {a}ST_AsBinary({g}::geometry) FROM {t}{o}").format(
        a=sql.SQL("").join(sql.SQL("{}, ").format(sql.Identifier(c)) for c in attrs),
        g=sql.Identifier(geom), t=_qualified(schema, name),
        o=sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(map(sql.Identifier, order)))
        if order else sql.SQL(""))
    rows = conn.execute(query).fetchall()
    data = pd.DataFrame.from_records([r[:-1] for r in rows], columns=attrs)
    wkb = np.array([r[-1] for r in rows], dtype=object)
    geom_name = "geometry" if "geometry" not in attrs else geom
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(shapely.from_wkb(wkb)).rename(geom_name)
                            .set_axis(data.index)), srid


def table_digest(url: str, table: str) -> str:
    """A fingerprint of a table's content: its column types and the text of every row.

    Row order does not matter; the same content gives the same digest whatever the
    session's settings, and any change of a value, a geometry, a row or a column type
    gives another. Costs one scan of the table.

    Parameters
    ----------
    url : str
        Connection string (from :func:`database_url`).
    table : str
        ``"schema.table"``.

    Returns
    -------
    str
        A hexadecimal SHA-256.

    Raises
    ------
    InputNotFoundError
        The server cannot be reached, or the table does not exist.
    LayerError
        The table cannot be read.
    """
    psycopg = _psycopg()
    from psycopg import sql

    where = f"PostGIS table {table!r}"
    with _connect(url, error=InputNotFoundError) as conn:
        try:
            schema, name = _resolve(conn, table, where, url)
            with conn.transaction():
                for setting in _DIGEST_SETTINGS:
                    conn.execute(setting)
                columns = [c[:1] + c[2:3] for c in _columns(conn, schema, name)]
                count, rows = conn.execute(sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), '')) "
                    "FROM (SELECT md5(t::text) AS h FROM {} AS t) AS q")
                    .format(_qualified(schema, name))).fetchall()[0]
        except psycopg.Error as err:
            raise LayerError(f"{where}: cannot be read from {mask_url(url)} "
                             f"({_scrub(str(err), url)})") from None
    payload = json.dumps([schema, name, columns, count, rows])
    return hashlib.sha256(payload.encode()).hexdigest()


# --------------------------------------------------------------------------- writing


def write_table(frame: gpd.GeoDataFrame, table: str, *, url_env: str = DEFAULT_URL_ENV) -> None:
    """Write a GeoDataFrame to a PostGIS table, replacing it atomically.

    The rows go into a staging table which then takes the table's place, all in one
    transaction: readers see the old table or the new one, never a part, and a failure
    leaves the old table as it was. Only a table written by this function (marked by
    its comment) is replaced; any other table of that name is an error. The index is
    not written (``reset_index()`` first to keep it).

    Parameters
    ----------
    frame : GeoDataFrame
        With a CRS that has an EPSG code (the SRID). Columns: booleans, integers,
        floats (NaN written as NULL), datetimes, and anything else as text.
    table : str
        ``"schema.table"`` (the schema must exist), or ``"table"`` in the first schema
        of the search path.
    url_env : str
        Environment variable holding the connection string.

    Raises
    ------
    ConfigError
        ``url_env`` is not set.
    OutputError
        The frame has no CRS with an EPSG code or a column name PostgreSQL cannot
        hold; the server cannot be reached; the schema does not exist; the table
        exists and was not written by siteplan; the database refuses the write.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> frame = gpd.GeoDataFrame({"site_id": ["A"]}, geometry=[Point(0, 0)])
    >>> write_table(frame, "public.sites")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.OutputError: cannot write PostGIS table 'public.sites': the frame has no CRS; ...
    """
    where = f"PostGIS table {table!r}"
    srid = _frame_srid(frame, where)
    columns = [_column(frame[c], c, where) for c in frame.columns if c != frame.geometry.name]
    geometry = _geometry_column(frame.geometry, srid, where)
    url = _url_from_env(url_env)
    psycopg = _psycopg()
    with _connect(url, error=OutputError) as conn:
        try:
            with conn.transaction():
                schema, name = _target(conn, table, where, url)
                _replace(conn, schema, name, [*columns, geometry], len(frame))
        except psycopg.Error as err:
            raise OutputError(f"cannot write {where} at {mask_url(url)} "
                              f"({_scrub(str(err), url)}); the previous table, if any, is "
                              "unchanged") from None
    logger.info("wrote %d rows to PostGIS table %s.%s at %s", len(frame), schema, name,
                mask_url(url))


def _frame_srid(frame: gpd.GeoDataFrame, where: str) -> int:
    if frame.crs is None:
        raise OutputError(f"cannot write {where}: the frame has no CRS; set one (set_crs) "
                          "before writing")
    srid = frame.crs.to_epsg()
    if srid is None:
        raise OutputError(f"cannot write {where}: its CRS ({frame.crs.name}) has no EPSG "
                          "code to use as the SRID; reproject it to an EPSG CRS first")
    return int(srid)


def _column(series: pd.Series, name: Any, where: str) -> tuple[str, str, list[Any]]:
    """(name, SQL type, values with None for missing) of an attribute column."""
    label = str(name)
    if not label or len(label.encode()) > 63:
        raise OutputError(f"cannot write {where}: column name {label!r} is empty or longer "
                          "than PostgreSQL's 63 bytes; rename it")
    values = series.astype(object).where(series.notna(), None).tolist()
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if pd.api.types.is_bool_dtype(series.dtype) or kind == "boolean":
        return label, "boolean", values
    if pd.api.types.is_integer_dtype(series.dtype) or kind == "integer":
        return label, "numeric" if series.dtype == np.uint64 else "bigint", values
    if pd.api.types.is_float_dtype(series.dtype) or kind in ("floating", "mixed-integer-float"):
        return label, "double precision", [None if v is None else float(v) for v in values]
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return label, "timestamp with time zone", values
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return label, "timestamp", values
    return label, "text", [None if v is None else str(v) for v in values]


def _geometry_column(geoms: gpd.GeoSeries, srid: int, where: str) -> tuple[str, str, list[Any]]:
    values = geoms.values
    present = values[~(geoms.isna().to_numpy() | shapely.is_empty(values))]
    kinds = set(shapely.get_type_id(present).tolist())
    names = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
             6: "MultiPolygon", 7: "GeometryCollection"}
    kind = names.get(kinds.pop(), "Geometry") if len(kinds) == 1 else "Geometry"
    has_z = shapely.has_z(present)
    if has_z.any() and not has_z.all():
        raise OutputError(f"cannot write {where}: some geometries have Z values and others "
                          "do not; make them all 2D (shapely.force_2d) or all 3D")
    kind += "Z" if has_z.any() else ""
    wkb = shapely.to_wkb(shapely.set_srid(values, srid), hex=True, include_srid=True)
    return str(geoms.name), f"geometry({kind}, {srid})", list(wkb)


def _target(conn: psycopg.Connection, table: str, where: str, url: str) -> tuple[str, str]:
    """(schema, name) to write, after checking the schema exists and the guard."""
    schema, name = _split(table)
    if schema is None:
        schema = str(conn.execute("SELECT current_schema()").fetchall()[0][0])
    if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone() is None:
        raise OutputError(f"cannot write {where}: schema {schema!r} does not exist in "
                          f"{mask_url(url)}; create it (CREATE SCHEMA {schema}) or fix "
                          "[database] results_table")
    row = conn.execute(
        "SELECT c.relkind, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        [schema, name]).fetchone()
    if row is not None and (row[0] != "r" or not str(row[1] or "").startswith(RESULTS_MARK)):
        raise OutputError(
            f"cannot write {where}: {schema}.{name} exists in {mask_url(url)} and was not written "
            "by siteplan, so it is left alone; choose another [database] results_table, or drop "
            "that table yourself if it may go")
    return schema, name


def _replace(conn: psycopg.Connection, schema: str, name: str,
             columns: Sequence[tuple[str, str, list[Any]]], rows: int) -> None:
    """Inside the caller's transaction: fill a staging table, then swap it in."""
    from psycopg import sql

    staging = f"{name[:40]}_siteplan_staging"
    target, temp = _qualified(schema, name), _qualified(schema, staging)
    names = sql.SQL(", ").join(sql.Identifier(c[0]) for c in columns)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(temp))
    conn.execute(sql.SQL("CREATE TABLE {t} ({cols})").format(t=temp, cols=sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(kind)) for c, kind, _ in columns)))
    with conn.cursor().copy(sql.SQL("COPY {t} ({c}) FROM STDIN").format(t=temp, c=names)) as copy:
        for i in range(rows):
            copy.write_row([values[i] for _, _, values in columns])
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(temp, sql.Identifier(name)))
    conn.execute(sql.SQL("CREATE INDEX ON {t} USING gist ({g})").format(
        t=target, g=sql.Identifier(columns[-1][0])))
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(target, sql.Literal(
        f"{RESULTS_MARK}: written by siteplan's score stage and replaced on each run")))
