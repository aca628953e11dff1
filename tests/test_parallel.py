"""Tests for pipeline.parallel: the Dask engine gives the in-process engine's results."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psutil
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.windows import Window

from pipeline.errors import ConfigError, CRSError
from pipeline.network import network_from_lines, point_distance_matrix
from pipeline.parallel import dask_client, hilbert_partitions, point_distances, zonal
from pipeline.runner import Options
from pipeline.zonal import JAPAN_DEPTH_BREAKS, zonal_stats

CRS = "EPSG:6677"  # JGD2011 / Japan Plane Rectangular CS IX (metres)
LOCAL = Options()
DASK = Options(engine="dask", workers=2)

# The hazard stage's call (pipeline.hazard.run_stage) with a DEM and one depth raster.
HAZARD_KWARGS: dict[str, Any] = {
    "stats": ("min", "mean", "max", "count", "nodata", "area"),
    "mode": "exact",
    "percentiles": (5.0,),
    "classes": {"tsunami": JAPAN_DEPTH_BREAKS},
    "wet_threshold": {"tsunami": 0.01},
    "slope": "dem",
}


# --------------------------------------------------------------------------- generated data


def write_terrain(folder: Path, size: int, *, res: float = 5.0, seed: int = 0) -> dict[str, Path]:
    """A ``size`` x ``size`` DEM (smooth hills + 0.3 m noise, rounded to 1 cm, a nodata
    sea strip to the south) and a tsunami depth raster on the same grid, written
    tiled and compressed block row by block row."""
    rng = np.random.default_rng(seed)
    paths = {"dem": folder / "dem.tif", "tsunami": folder / "tsunami.tif"}
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1,
               "dtype": "float32", "crs": CRS, "nodata": -9999.0, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate",
               "transform": Affine(res, 0, 0, 0, -res, size * res)}
    sea = size - size // 20
    with rasterio.open(paths["dem"], "w", **profile) as dem, \
            rasterio.open(paths["tsunami"], "w", **profile) as depth:
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            rows = np.arange(r0, r0 + h)[:, None]
            cols = np.arange(size)[None, :]
            z = 12 + 15 * np.sin(cols / 300.0) * np.cos(rows / 450.0) - 0.002 * rows
            z = np.round(z + rng.normal(0, 0.3, (h, size)), 2).astype("float32")
            d = np.round(np.clip(10.0 - z, 0, None), 2).astype("float32")
            z[np.broadcast_to(rows >= sea, z.shape)] = -9999.0
            d[np.broadcast_to(rows >= sea + 10, d.shape)] = -9999.0
            dem.write(z[None], window=Window(0, r0, size, h))
            depth.write(d[None], window=Window(0, r0, size, h))
    return paths


def square_parcels(n: int, extent: float, *, seed: int = 1) -> gpd.GeoDataFrame:
    """``n`` squares of 10-40 m at random places over ``[0, extent]^2`` (some overlap,
    some reach past the raster's edge, a few are empty), indexed by string ids."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, extent, n), rng.uniform(0, extent, n)
    side = rng.uniform(10, 40, n)
    geoms = shapely.box(x, y, x + side, y + side)
    geoms[rng.choice(n, size=min(n, 3), replace=False)] = shapely.Polygon()
    return gpd.GeoDataFrame({"site_id": [f"P{i:06d}" for i in range(n)]}, geometry=geoms,
                            crs=CRS).set_index("site_id")


def assert_same(local: pd.DataFrame, dask: pd.DataFrame) -> None:
    """Equal index, columns, dtypes and values, bit for bit (percentiles included: each
    parcel's weighted quantiles use a running sum over its own pixels only)."""
    pd.testing.assert_index_equal(local.columns, dask.columns, exact=True)
    pd.testing.assert_frame_equal(local, dask, check_exact=True)


def cluster_processes() -> set[int]:
    """Child processes, but multiprocessing's resource tracker, which the first spawned
    process starts and which lives as long as this process (by design)."""
    return {p.pid for p in psutil.Process().children(recursive=True)
            if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())}


@pytest.fixture(scope="module")
def terrain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_terrain(tmp_path_factory.mktemp("terrain"), 4000)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One local cluster for the tests that pass ``client=`` (saves its start-up); its
    worker processes must be gone once it is closed."""
    with dask_client(DASK) as c:
        pids = list(c.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        yield c
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in pids)


# --------------------------------------------------------------------------- the bundled study


def test_demo_study_hazard_and_access_equal_local_engine(tmp_path: Path) -> None:
    """The hazard and access stages of the bundled study, through the Runner, give the
    same tables (parquet) with --engine dask as in process; the clusters are closed."""
    from pipeline.config import load_study
    from pipeline.demo import write_demo_study
    from pipeline.runner import Runner
    from pipeline.stages import STAGES

    before = cluster_processes()
    tables = {}
    for name, options in (("local", LOCAL), ("dask", DASK)):
        study = load_study(write_demo_study(tmp_path / name))
        results = Runner(study, STAGES, options).run(["hazard", "access"])
        out = {r.name: r for r in results}
        tables[name] = {stage: pd.read_parquet(out[stage].outputs[stage])
                        for stage in ("hazard", "access")}
    for stage in ("hazard", "access"):
        local, dask = tables["local"][stage], tables["dask"][stage]
        assert len(local) >= 4
        pd.testing.assert_frame_equal(local, dask, check_exact=True)
    assert cluster_processes() <= before  # every worker and nanny process is gone


# --------------------------------------------------------------------------- generated studies


def test_zonal_20000_parcels_equal_local_engine(terrain: dict[str, Path], client: Any) -> None:
    parcels = square_parcels(20_000, 4000 * 5.0)
    local = zonal(LOCAL, parcels, terrain, **HAZARD_KWARGS)
    dask = zonal(DASK, parcels, terrain, client=client, **HAZARD_KWARGS)
    assert local["dem_count"].gt(0).sum() > 18_000
    assert local["tsunami_wet_area"].gt(0).sum() > 1_000
    assert_same(local, dask)


@pytest.mark.slow
def test_zonal_100000_parcels_equal_local_engine(tmp_path: Path) -> None:
    """The issue's size: 100,000 parcels over an 8000 x 8000 raster (about 25 s)."""
    rasters = write_terrain(tmp_path, 8000, seed=2)
    parcels = square_parcels(100_000, 8000 * 5.0, seed=3)
    local = zonal(LOCAL, parcels, rasters, **HAZARD_KWARGS)
    dask = zonal(DASK, parcels, rasters, **HAZARD_KWARGS)  # its own cluster, closed after
    assert len(dask) == 100_000
    assert_same(local, dask)


def test_centre_mode_is_exact_in_every_column(terrain: dict[str, Path], client: Any) -> None:
    """With unit weights (mode "centre") even the percentiles are bit for bit equal."""
    parcels = square_parcels(2_000, 4000 * 5.0, seed=4)
    kwargs = {**HAZARD_KWARGS, "mode": "centre", "stats": ("min", "mean", "median", "std")}
    local = zonal(LOCAL, parcels, terrain, **kwargs)
    dask = zonal(DASK, parcels, terrain, client=client, partition_parcels=500, **kwargs)
    pd.testing.assert_frame_equal(local, dask, check_exact=True)


def test_categorical_columns_are_united_in_zonal_stats_order(tmp_path: Path,
                                                              client: Any) -> None:
    """Partitions see different class values; the result has every class column, in
    zonal_stats' order, with 0 where a partition had none of that value."""
    path = tmp_path / "landuse.tif"
    classes = np.repeat(np.arange(1, 9, dtype="float32"), 25)[None, :].repeat(200, axis=0)
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=1,
                       dtype="float32", crs=CRS, nodata=0,
                       transform=Affine(1, 0, 0, 0, -1, 200)) as ds:
        ds.write(classes[None])
    xs = np.arange(0, 200, 10.0)
    parcels = gpd.GeoDataFrame(geometry=shapely.box(xs + 1, 50, xs + 6, 60), crs=CRS,
                               index=pd.Index(np.arange(len(xs))[::-1] * 7, name="pid"))
    kwargs: dict[str, Any] = {"stats": ("count", "max"), "categorical": ["landuse"],
                              "mode": "centre"}
    local = zonal(LOCAL, parcels, {"landuse": path}, **kwargs)
    dask = zonal(DASK, parcels, {"landuse": path}, client=client, partition_parcels=3, **kwargs)
    assert [c for c in local.columns if "_class_" in c] == [f"landuse_class_{k}"
                                                            for k in range(1, 9)]
    pd.testing.assert_frame_equal(local, dask, check_exact=True)


def test_existing_scheduler_is_used_and_left_running(terrain: dict[str, Path]) -> None:
    """``Options.scheduler``: connect to that cluster, close only the client."""
    from distributed import Client, LocalCluster

    parcels = square_parcels(300, 4000 * 5.0, seed=5)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0", silence_logs=logging.WARNING) as cluster:
        options = Options(engine="dask", scheduler=cluster.scheduler_address)
        dask = zonal(options, parcels, terrain, **HAZARD_KWARGS)
        with Client(cluster, set_as_default=False) as other:  # still up
            assert len(other.scheduler_info()["workers"]) == 1
    assert_same(zonal_stats(parcels, terrain, **HAZARD_KWARGS), dask)


def test_scheduler_that_does_not_answer_or_has_no_worker(monkeypatch: pytest.MonkeyPatch,
                                                        terrain: dict[str, Path]) -> None:
    import socket

    from distributed import LocalCluster

    import pipeline.parallel

    monkeypatch.setattr(pipeline.parallel, "CONNECT_TIMEOUT", 1.0)
    parcels = square_parcels(10, 4000 * 5.0)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConfigError, match=rf"--scheduler tcp://127.0.0.1:{port}: no Dask "
                                          r"scheduler answers there .*leave out --scheduler"):
        zonal(Options(engine="dask", scheduler=f"tcp://127.0.0.1:{port}"), parcels, terrain)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0",
                      silence_logs=logging.WARNING) as cluster, \
            pytest.raises(ConfigError, match="the scheduler has no worker .*dask worker"):
        zonal(Options(engine="dask", scheduler=cluster.scheduler_address), parcels, terrain)


def test_errors_in_a_task_reach_the_caller_with_their_type(tmp_path: Path,
                                                           client: Any) -> None:
    path = tmp_path / "v.tif"
    with rasterio.open(path, "w", driver="GTiff", width=10, height=10, count=1,
                       dtype="float32", crs="EPSG:6681", transform=Affine(1, 0, 0, 0, -1, 10)) as ds:
        ds.write(np.ones((1, 10, 10), "float32"))
    parcels = square_parcels(8, 10.0)
    with pytest.raises(CRSError, match="v raster v.tif is in .* but the parcels are in"):
        zonal(DASK, parcels, {"v": path}, client=client)


def test_no_parcels_needs_no_cluster(terrain: dict[str, Path]) -> None:
    empty = square_parcels(5, 100.0).iloc[:0]
    out = zonal(Options(engine="dask", scheduler="tcp://127.0.0.1:9"), empty, terrain,
                **HAZARD_KWARGS)  # an unreachable scheduler: never contacted
    pd.testing.assert_frame_equal(out, zonal_stats(empty, terrain, **HAZARD_KWARGS))


# --------------------------------------------------------------------------- partitions


def test_hilbert_partitions_are_compact_balanced_and_complete() -> None:
    parcels = square_parcels(10_000, 10_000.0, seed=6)
    parts = hilbert_partitions(parcels, 16)
    assert len(parts) == 16
    assert sorted(np.concatenate(parts).tolist()) == list(range(10_000))
    assert {len(p) for p in parts} == {625}
    total = shapely.box(*parcels.total_bounds).area
    boxes = [shapely.box(*parcels.geometry.iloc[p[~parcels.geometry.iloc[p].is_empty.to_numpy()]]
                         .total_bounds).area for p in parts]
    # a 16th of the parcels covers a compact area: on average well under a quarter of the extent
    assert np.mean(boxes) < 0.25 * total
    empty = np.flatnonzero(parcels.geometry.is_empty.to_numpy())
    assert set(parts[-1][-len(empty):]) == set(empty)  # missing or empty geometries last
    assert [p.tolist() for p in hilbert_partitions(parcels, 16)] == [p.tolist() for p in parts]
    assert len(hilbert_partitions(parcels.iloc[:3], 16)) == 3


# --------------------------------------------------------------------------- network distances


def test_point_distances_equal_local_engine(client: Any) -> None:
    ticks = np.arange(30) * 100.0
    lines = gpd.GeoDataFrame(
        geometry=[shapely.LineString([(x, y) for x in ticks]) for y in ticks]
        + [shapely.LineString([(x, y) for y in ticks]) for x in ticks], crs=CRS)
    net = network_from_lines(lines)
    rng = np.random.default_rng(7)
    src = gpd.GeoSeries(shapely.points(rng.uniform(-50, 2950, (403, 2))), crs=CRS)
    tgt = gpd.GeoSeries(shapely.points(rng.uniform(-50, 2950, (17, 2))), crs=CRS)
    local = point_distance_matrix(net, src, tgt)
    dask = point_distances(DASK, net, src, tgt, client=client, batch_size=50)
    assert dask.shape == (403, 17) and np.isfinite(dask).all()
    np.testing.assert_array_equal(local, dask)
    # coordinates as arrays and lists work the same, with the default batches
    xy, txy = shapely.get_coordinates(src.values), shapely.get_coordinates(tgt.values)
    np.testing.assert_array_equal(point_distances(DASK, net, xy, txy.tolist(), client=client),
                                  local)
    assert point_distances(DASK, net, xy[:0], txy, client=client).shape == (0, 17)
