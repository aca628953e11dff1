"""PostGIS layers and results against a real PostgreSQL + PostGIS server.

The tests start their own throw-away server from Debian's packages (installed by
``docs/ci-postgis.sh``): a fresh cluster in a temporary folder, listening on 127.0.0.1
only, on a free port, with a random password that lives only in this process (it runs
as the ``postgres`` user when the tests run as root). One database is created for the
tests and dropped at the end, and the server is stopped and its folder removed.

They skip only when that server cannot be started, and say why; with
``SITEPLAN_POSTGIS_REQUIRED=1`` (CI) they fail instead. ``SITEPLAN_TEST_DATABASE_URL``
points them at an existing server instead (its user must be allowed to create
databases).

Layers are loaded into the database independently of :mod:`pipeline.postgis`, the way a
user would (``ogr2ogr -f PGDump``: GDAL's SQL, through pyogrio).
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import CRS

from pipeline import layers
from pipeline.config import load_study
from pipeline.demo import write_demo_study
from pipeline.errors import ConfigError, CRSError, InputNotFoundError, LayerError, OutputError
from pipeline.postgis import database_url, mask_url, read_table, table_digest, write_table

URL_ENV = "SITEPLAN_TEST_PG_URL"  # the study's [database] url_env in these tests
STAGES4 = ["hazard", "envelope", "access", "score"]


# --------------------------------------------------------------------------- the server


def _unavailable(reason: str) -> NoReturn:
    """Skip (fail under SITEPLAN_POSTGIS_REQUIRED=1) saying why there is no server."""
    if os.environ.get("SITEPLAN_TEST_DATABASE_URL"):
        message = f"the server of SITEPLAN_TEST_DATABASE_URL cannot be used: {reason}"
    else:
        message = (f"PostgreSQL with PostGIS could not be started: {reason}. Install it with "
                   "`bash docs/ci-postgis.sh` (as root)")
    if os.environ.get("SITEPLAN_POSTGIS_REQUIRED") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _server_binaries() -> Path:
    """The newest /usr/lib/postgresql/NN/bin whose version has PostGIS installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0, reverse=True)
    for initdb in found:
        if (Path("/usr/share/postgresql") / initdb.parts[-3] / "extension"
                / "postgis.control").is_file():
            return initdb.parent
    if found:
        _unavailable(f"PostgreSQL {found[0].parts[-3]} is installed but PostGIS is not "
                     f"(postgresql-{found[0].parts[-3]}-postgis-3)")
    _unavailable("no PostgreSQL server binaries in /usr/lib/postgresql")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], as_user: dict[str, object], what: str, log: Path | None = None
         ) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False,
                              **as_user)  # type: ignore[call-overload]
    except (OSError, subprocess.TimeoutExpired) as err:
        _unavailable(f"{what} failed ({err})")
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-800:] if log and log.exists() else ""
        _unavailable(f"{what} failed: {(done.stderr or done.stdout).strip()[-800:]} {tail}")


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """Connection string of a superuser (with a password) on a running server."""
    given = os.environ.get("SITEPLAN_TEST_DATABASE_URL")
    if given:
        yield given
        return
    bindir = _server_binaries()
    as_user: dict[str, object] = {}
    folder = Path(tempfile.mkdtemp(prefix="siteplan-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            _unavailable("running as root and there is no 'postgres' user to run the server")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    password = f"pw-{secrets.token_hex(8)}:@/ %"  # characters a URL must escape
    data, log = folder / "data", folder / "server.log"
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    if as_user:
        os.chown(pwfile, int(as_user["user"]), int(as_user["group"]))  # type: ignore[call-overload]
    port = _free_port()
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "siteplan", f"--pwfile={pwfile}",
              "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"], as_user, "initdb")
        pwfile.unlink()
        settings = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories="
                    f"{folder} -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
              "-o", settings, "start"], as_user, "starting the server", log)
        yield f"postgresql://siteplan:{quote(password, safe='')}@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60, check=False,
                           **as_user)  # type: ignore[call-overload]
        shutil.rmtree(folder, ignore_errors=True)


def _sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run statements in autocommit; the rows of the last one that returns any."""
    import psycopg

    rows: list[tuple[object, ...]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            cur = conn.execute(statement)  # type: ignore[call-overload]
            if cur.description is not None:
                rows = cur.fetchall()
    return rows


@pytest.fixture(scope="session")
def db_url(admin_url: str) -> Iterator[str]:
    """A fresh database with PostGIS, dropped at the end."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"siteplan_test_{secrets.token_hex(4)}"
    try:
        _sql(admin_url, f"CREATE DATABASE {name}")
    except psycopg.Error as err:
        _unavailable(f"{mask_url(admin_url)} did not create a database "
                     f"({' '.join(str(err).split())})")
    url = make_conninfo(admin_url, dbname=name)  # key=value form; admin_url is a URL
    try:
        _sql(url, "CREATE EXTENSION postgis", "CREATE SCHEMA gis")
        yield url
    finally:
        _sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo study's folder (layers and study.toml), written once."""
    return write_demo_study(tmp_path_factory.mktemp("pgdemo") / "layers").parent


def load_layer(url: str, frame: gpd.GeoDataFrame, table: str, folder: Path) -> None:
    """Load a frame as a user would: GDAL's PGDump SQL (ogr2ogr -f PGDump), then run it."""
    import pyogrio

    schema, name = table.split(".")
    script = folder / f"{schema}.{name}.sql"
    before = pyogrio.get_gdal_config_option("PG_USE_COPY")
    pyogrio.set_gdal_config_options({"PG_USE_COPY": "NO"})
    try:
        pyogrio.write_dataframe(frame, script, driver="PGDUMP", layer=name, layer_options={
            "SCHEMA": schema, "CREATE_SCHEMA": "NO", "GEOMETRY_NAME": "geom"})
    finally:
        pyogrio.set_gdal_config_options({"PG_USE_COPY": before})
    _sql(url, script.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def gis(db_url: str, demo: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``gis.parcels`` (stored in EPSG:4326) and ``gis.roads`` (EPSG:6681) from the demo."""
    folder = tmp_path_factory.mktemp("sql")
    load_layer(db_url, gpd.read_file(demo / "parcels.gpkg").to_crs(4326), "gis.parcels", folder)
    load_layer(db_url, gpd.read_file(demo / "roads.gpkg"), "gis.roads", folder)
    return db_url


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, gis: str) -> str:
    monkeypatch.setenv(URL_ENV, gis)
    return gis


def study_toml(folder: Path, schema: str, results: str = "") -> Path:
    """The demo study with parcels and roads read from ``schema``."""
    text = (folder / "study.toml").read_text(encoding="utf-8")
    for name in ("parcels", "roads"):
        old = f'[layers.{name}]\npath = "{name}.gpkg"\nlayer = "{name}"\n'
        assert old in text
        text = text.replace(old, f'[layers.{name}]\ntable = "{schema}.{name}"\n')
    text += f'\n[database]\nurl_env = "{URL_ENV}"\nresults_table = "{results}"\n'
    path = folder / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def secrets_of(url: str) -> list[str]:
    """The connection string and its password, raw and URL-escaped."""
    from psycopg.conninfo import conninfo_to_dict

    password = str(conninfo_to_dict(url)["password"])
    return [url, password, quote(password, safe="")]


# --------------------------------------------------------------------------- no server


def test_missing_variable_names_it_and_how_to_set_it(tmp_path, monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    (tmp_path / "study.toml").write_text(
        f'[study]\nname = "x"\n[layers.parcels]\ntable = "gis.parcels"\n[layers.dem]\n'
        f'path = "d.tif"\n[database]\nurl_env = "{URL_ENV}"\n')
    study = load_study(tmp_path / "study.toml")
    with pytest.raises(ConfigError, match=rf"environment variable {URL_ENV} is not set.*"
                                          rf"export {URL_ENV}='postgresql://"):
        database_url(study)


def test_mask_url_shows_no_password():
    assert mask_url("postgresql://u:p%40ss@db:5432/gis?sslmode=require") == \
        "postgresql://u:***@db:5432/gis"
    assert mask_url("dbname=gis user=u password=secret") == "postgresql://u:***@/gis"
    assert mask_url("postgresql://db/gis") == "postgresql://db/gis"


# --------------------------------------------------------------------------- reading


def test_read_parcels_stored_in_4326(env, demo):
    frame = read_table("gis.parcels", url_env=URL_ENV, layer="parcels")
    original = gpd.read_file(demo / "parcels.gpkg")
    assert frame.crs.to_epsg() == 4326
    assert frame.geometry.name == "geometry"
    assert list(frame["site_id"]) == list(original["site_id"])  # primary-key order
    assert frame["ogc_fid"].tolist() == [1, 2, 3, 4, 5]
    assert frame["corner"].dtype == bool and frame["far"].dtype == float
    assert frame["name_ja"].tolist() == original["name_ja"].tolist()
    np.testing.assert_allclose(frame.to_crs(6681).area, original.area, rtol=1e-9)


def test_parcels_from_postgis_are_checked_and_reprojected_by_the_pipeline(env, demo, tmp_path):
    shutil.copy(demo / "study.toml", tmp_path / "study.toml")
    study = load_study(study_toml(tmp_path, "gis"))
    parcels = layers.read_parcels(study, CRS.from_epsg(6681))
    original = gpd.read_file(demo / "parcels.gpkg").set_index("site_id")
    assert parcels.crs.to_epsg() == 6681
    assert list(parcels.index) == list(original.index)
    np.testing.assert_allclose(parcels.area, original.area, rtol=1e-9)
    assert shapely.equals_exact(parcels.geometry.values, original.geometry.values,
                                tolerance=1e-3).all()


def test_read_roads(env, demo):
    roads = read_table("gis.roads", url_env=URL_ENV, layer="roads")
    original = gpd.read_file(demo / "roads.gpkg")
    assert roads.crs.to_epsg() == 6681
    assert len(roads) == len(original) == 15
    assert roads["width"].tolist() == original["width"].tolist()
    assert roads["oneway"].tolist() == original["oneway"].tolist()
    assert shapely.equals_exact(roads.geometry.values, original.geometry.values,
                                tolerance=0).all()


def test_table_names_fold_to_lower_case_like_postgresql(env):
    assert len(read_table("GIS.Roads", url_env=URL_ENV)) == 15


def test_missing_table_lists_similar_tables(env):
    with pytest.raises(InputNotFoundError, match=r"layer 'parcels' \(postgis:gis.parcel\): no such "
                       r"table or view in PostGIS database postgresql://siteplan:\*\*\*@127.0.0.1:"
                       r"\d+/siteplan_test_\w+ \(similar tables: gis.parcels"):
        read_table("gis.parcel", url_env=URL_ENV, layer="parcels")


def test_malformed_connection_string(monkeypatch):
    monkeypatch.setenv(URL_ENV, "host=db password=Secret-99 sslmode")
    with pytest.raises(ConfigError, match=r"connection string .* is not valid \(missing \"=\" "
                                          r"after \"sslmode\"") as err:
        read_table("gis.parcels", url_env=URL_ENV, layer="parcels")
    assert "Secret-99" not in str(err.value)


def test_table_without_geometry_column(env):
    _sql(env, "CREATE TABLE gis.plain (id integer, name text)")
    with pytest.raises(LayerError, match=r"'gis.plain'.*has no geometry column \(columns: id, "
                                         r"name\)"):
        read_table("gis.plain", url_env=URL_ENV)


def test_geometry_without_srid(env):
    _sql(env, "CREATE TABLE gis.nosrid (id integer, geom geometry)",
         "INSERT INTO gis.nosrid VALUES (1, 'POINT(70000 -101000)')")
    with pytest.raises(CRSError, match=r"layer 'poi' \(postgis:gis.nosrid\): the geometry column "
                       r"has no SRID.*UpdateGeometrySRID.*\[layers.poi\] crs = 'EPSG:...."):
        read_table("gis.nosrid", url_env=URL_ENV, layer="poi")
    frame = read_table("gis.nosrid", url_env=URL_ENV, layer="poi", crs="EPSG:6681")
    assert frame.crs.to_epsg() == 6681 and frame.geometry.iloc[0].x == 70000


def test_unreachable_server_says_so_without_the_password(monkeypatch):
    password = "Secret-Pass-123"
    url = f"postgresql://siteplan:{password}@127.0.0.1:{_free_port()}/gis"
    monkeypatch.setenv(URL_ENV, url)
    with pytest.raises(InputNotFoundError, match=r"PostGIS database postgresql://siteplan:\*\*\*@"
                       r"127.0.0.1:\d+/gis: cannot connect \(.*\); check that the server is "
                       "running") as err:
        read_table("gis.parcels", url_env=URL_ENV, layer="parcels")
    assert password not in str(err.value)
    with pytest.raises(OutputError, match="cannot connect") as err:
        write_table(gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=6681), "gis.x",
                    url_env=URL_ENV)
    assert password not in str(err.value)


# --------------------------------------------------------------------------- digest, writing


def test_table_digest_follows_the_content(env):
    _sql(env, "CREATE TABLE gis.digest AS SELECT * FROM gis.roads")
    first = table_digest(env, "gis.digest")
    assert table_digest(env, "gis.digest") == first
    _sql(env, "UPDATE gis.digest SET width = width")  # new row versions, same content
    assert table_digest(env, "gis.digest") == first
    _sql(env, "UPDATE gis.digest SET width = width + 0.5 WHERE ogc_fid = 3")
    changed = table_digest(env, "gis.digest")
    assert changed != first
    _sql(env, "UPDATE gis.digest SET geom = ST_Translate(geom, 0.001, 0) WHERE ogc_fid = 3")
    assert table_digest(env, "gis.digest") not in (first, changed)
    with pytest.raises(InputNotFoundError, match="similar tables: gis.digest"):
        table_digest(env, "gis.digests")


def _sites(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"site_id": [f"S{i}" for i in range(n)], "n": np.arange(n, dtype="int64"),
         "share": [0.5] * (n - 1) + [np.nan], "ok": [True] * n, "mark": ["◎"] * n},
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(n)], crs=6681)


def test_write_table_replaces_atomically_and_round_trips(env):
    write_table(_sites(3), "gis.out", url_env=URL_ENV)
    write_table(_sites(2), "gis.out", url_env=URL_ENV)
    back = read_table("gis.out", url_env=URL_ENV)
    expected = _sites(2)
    assert back.crs.to_epsg() == 6681
    pd.testing.assert_frame_equal(pd.DataFrame(back.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")),
                                  check_dtype=False)
    assert shapely.equals_exact(back.geometry.values, expected.geometry.values, 0).all()
    assert _sql(env, "SELECT type, srid FROM geometry_columns WHERE f_table_name = 'out'") == \
        [("POLYGON", 6681)]
    # a write that fails half-way (an integer PostgreSQL cannot hold) leaves the old table
    bad = _sites(2)
    bad["n"] = pd.Series([1, 2**70], dtype=object)
    with pytest.raises(OutputError, match=r"cannot write PostGIS table 'gis.out' at .*out of "
                                          r"range.*the previous table, if any, is unchanged"):
        write_table(bad, "gis.out", url_env=URL_ENV)
    assert len(read_table("gis.out", url_env=URL_ENV)) == 2
    assert _sql(env, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%staging%'") == [(0,)]


def test_write_table_leaves_tables_it_did_not_write_alone(env):
    before = table_digest(env, "gis.roads")
    with pytest.raises(OutputError, match=r"gis.roads exists in .* and was not written by "
                                          r"siteplan, so it is left alone"):
        write_table(_sites(2), "gis.roads", url_env=URL_ENV)
    assert table_digest(env, "gis.roads") == before
    with pytest.raises(OutputError, match=r"schema 'nowhere' does not exist.*CREATE SCHEMA"):
        write_table(_sites(2), "nowhere.sites", url_env=URL_ENV)


# --------------------------------------------------------------------------- a whole study


@pytest.fixture
def pipeline_logging() -> Iterator[None]:
    """Let caplog see the pipeline's records even after a CLI test rewired the logger."""
    logger = logging.getLogger("pipeline")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:], logger.propagate = [], True
    logger.setLevel(logging.DEBUG)
    yield
    logger.handlers[:], logger.propagate = saved[0], saved[2]
    logger.setLevel(saved[1])


def test_study_with_layers_in_postgis(env, demo, tmp_path, caplog, pipeline_logging):
    from pipeline.cli import cli
    from pipeline.runner import Runner
    from pipeline.stages import STAGES

    stages = {k: v for k, v in STAGES.items() if k in STAGES4}
    folder = tmp_path / "layers"
    shutil.copytree(demo, folder)
    _sql(env, "CREATE SCHEMA town")
    load_layer(env, gpd.read_file(demo / "parcels.gpkg").to_crs(4326), "town.parcels", tmp_path)
    load_layer(env, gpd.read_file(demo / "roads.gpkg"), "town.roads", tmp_path)
    path = study_toml(folder, "town", results="town.sites")
    caplog.set_level(logging.DEBUG)

    # first run, through the CLI: every stage runs and the results table is written
    result = CliRunner().invoke(cli, ["-v", "score", str(path)])
    assert result.exit_code == 0, result.output
    logging.getLogger("pipeline").handlers[:] = []  # the CLI rewired it; undo for caplog
    logging.getLogger("pipeline").propagate = True
    study = load_study(path)
    sites = pd.read_csv(study.output / "sites.csv", encoding="utf-8-sig")
    assert sites["site_id"].tolist() == ["S0", "S1", "S2", "S3", "S4"]

    # the numbers of the study read from files (the parcels went through EPSG:4326 and
    # back, which moves their edges by well under a millimetre: measures that sum or
    # average agree; the lowest DEM value may not, as a sliver of a pixel is picked up)
    reference = tmp_path / "files" / "layers"  # its output: files/maps
    shutil.copytree(demo, reference)
    Runner(load_study(reference / "study.toml"), stages).run(STAGES4)
    from_files = pd.read_csv(reference.parent / "maps" / "sites.csv", encoding="utf-8-sig")
    for column, rtol, atol in [("site_area", 1e-9, 0), ("ground_mean", 1e-5, 0),
                               ("dist_street_m", 0, 0.01), ("n_entrances", 0, 0)]:
        np.testing.assert_allclose(sites[column], from_files[column], rtol=rtol, atol=atol,
                                   err_msg=column)

    # the results table round-trips: same rows and values as sites.csv
    back = read_table("town.sites", url_env=URL_ENV)
    assert back.crs.to_epsg() == 6681
    assert back["site_id"].tolist() == sites["site_id"].tolist()
    assert list(back.columns.drop("geometry")) == list(sites.columns)
    for column in sites.columns:
        left, right = sites[column], back[column]
        if pd.api.types.is_numeric_dtype(left) and not pd.api.types.is_bool_dtype(left):
            np.testing.assert_allclose(left.astype(float), right.astype(float), rtol=1e-12,
                                       err_msg=column)
        else:
            assert left.fillna("").astype(str).tolist() == \
                right.fillna("").astype(str).replace({"nan": "", "None": ""}).tolist(), column

    # an unchanged database skips every stage; a changed parcel reruns them
    assert [r.name for r in Runner(load_study(path), stages).run(STAGES4) if r.ran] == []
    _sql(env, "UPDATE town.parcels SET name = 'Site 2: the hilltop' WHERE site_id = 'S2'")
    assert [r.name for r in Runner(load_study(path), stages).run(STAGES4) if r.ran] == STAGES4
    back = read_table("town.sites", url_env=URL_ENV)
    assert back.set_index("site_id").loc["S2", "name"] == "Site 2: the hilltop"

    # the connection string and password are nowhere: outputs, state, study folder, logs
    assert "read 5 rows from town.parcels" in caplog.text  # the logs were captured
    files = [p for p in [*study.output.rglob("*"), *folder.rglob("*")] if p.is_file()]
    assert len(files) > 10
    for secret in secrets_of(env):
        assert secret not in caplog.text
        assert secret not in result.output
        for file in files:
            assert secret.encode() not in file.read_bytes(), file
