"""Where the heavy work runs: in this process, or on a Dask cluster.

The stages call :func:`zonal` and :func:`point_distances` instead of the kernels
directly; ``--engine dask`` (``Options.engine``) sends the work to a Dask
``distributed`` cluster: a local one of ``Options.workers`` single-threaded
worker processes, or the existing cluster at ``Options.scheduler``.

Zonal statistics
    The parcels are sorted along a Hilbert curve over their extent and cut into
    contiguous runs of equal size, so each partition covers a compact area;
    each task runs :func:`pipeline.zonal.zonal_stats` on one partition and so
    reads only the raster windows of its own parcels. The partitions' frames are
    put back in the parcels' order.
Network distances
    The sources are split into batches, one task each; the road network and the
    targets are shipped to every worker once (``Client.scatter``); the row blocks
    are stacked in the sources' order.

Results equal the in-process engine's, bit for bit: every statistic of a
parcel depends on that parcel alone (weighted percentiles included: their
running sums restart at each parcel), and every distance on its source alone.

Workers read the rasters by path: an existing cluster's workers must see the
same files at the same paths and have siteplan installed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

PARTITION_PARCELS = 5_000
"""Parcels per zonal-statistics task, at most."""

MIN_PARTITIONS = 4
"""Zonal-statistics tasks made at least (when there are parcels enough). The
partitions depend on the parcels alone, not on the cluster, so a study gives the
same partitions, hence the same bits, on any number of workers."""

TASKS_PER_WORKER = 4
"""Tasks per worker when splitting work that has no natural size (source batches)."""

CONNECT_TIMEOUT = 20.0
"""Seconds to wait for an existing scheduler (``--scheduler``) and its first worker."""


@contextlib.contextmanager
def dask_client(options: Any, *, memory_limit: str | int = "auto") -> Iterator[Client]:
    """A ``distributed`` client for ``options``: a new local cluster, or ``options.scheduler``.

    The local cluster has ``options.workers`` worker processes of one thread each
    (which import siteplan's kernels before the block starts) and its dashboard
    on a free port; it is closed (client first, then cluster) on leaving the
    block, also on error. A client of an existing cluster is closed and the
    cluster left running. Workers are started as new interpreters (spawn): a
    script that opens a local cluster needs the ``if __name__ == "__main__":``
    guard (the ``siteplan`` command has it).

    Parameters
    ----------
    options : Options
        ``workers`` and ``scheduler`` are used (:class:`pipeline.runner.Options`).
    memory_limit : str or int, default "auto"
        Memory of each local worker (bytes, or a string such as ``"4GiB"``);
        ``"auto"`` shares the machine's memory among the workers. A worker is
        paused at 80 % and restarted at 95 % of it.

    Yields
    ------
    distributed.Client

    Examples
    --------
    >>> from pipeline.runner import Options
    >>> with dask_client(Options(engine="dask", workers=1)) as client:
    ...     client.submit(sum, [1, 2, 3]).result()
    6
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        from pipeline.errors import ConfigError

        raise ConfigError("--engine dask needs the packages dask and distributed; install them "
                          "(pip install dask distributed) or use --engine local") from None
    if options.scheduler:
        with _connect(options.scheduler) as client:
            yield client
        return
    t0 = time.perf_counter()
    with LocalCluster(n_workers=int(options.workers), threads_per_worker=1, processes=True,
                      memory_limit=memory_limit, dashboard_address=":0",
                      silence_logs=logging.WARNING) as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.run(_warm_up)
        logger.info("dask: local cluster of %d worker process(es) up in %.1f s",
                    int(options.workers), time.perf_counter() - t0)
        yield client
        # A heartbeat in flight while the scheduler shuts down makes the worker log
        # "Failed to communicate with scheduler during heartbeat" (an OSError, harmless):
        # the workers stop sending them before the cluster closes.
        client.run(_stop_heartbeat)


@contextlib.contextmanager
def _connect(address: str) -> Iterator[Client]:
    """A client of the existing cluster at ``address``, once it has a worker."""
    from distributed import Client

    from pipeline.errors import ConfigError

    logger.info("dask: connecting to the scheduler at %s", address)
    try:
        client = Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as err:
        raise ConfigError(f"--scheduler {address}: no Dask scheduler answers there ({err}); "
                          "start one (`dask scheduler`, then `dask worker ADDRESS`) or leave "
                          "out --scheduler to run a local cluster of --workers N") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise ConfigError(f"--scheduler {address}: the scheduler has no worker (waited "
                              f"{CONNECT_TIMEOUT:g} s); start some with `dask worker "
                              f"{address}`") from None
        yield client


def _stop_heartbeat(dask_worker: Any) -> None:
    dask_worker.periodic_callbacks["heartbeat"].stop()


def _warm_up() -> None:
    """Import the kernels on a worker (a few seconds, once) before tasks arrive."""
    import pipeline.network
    import pipeline.zonal  # noqa: F401


@contextlib.contextmanager
def _using(options: Any, client: Client | None) -> Iterator[Client]:
    """The given client, or a new one for ``options`` (closed afterwards)."""
    if client is not None:
        yield client
        return
    with dask_client(options) as new:
        yield new


def _n_workers(client: Client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def hilbert_partitions(parcels: gpd.GeoDataFrame, n: int) -> list[np.ndarray]:
    """Positions of the parcels cut into ``n`` spatially compact runs of (nearly) equal size.

    Parcels are sorted by the Hilbert distance of their bounding-box centres
    over the parcels' extent (:meth:`geopandas.GeoSeries.hilbert_distance`,
    ties kept in input order); missing and empty geometries go last.

    Parameters
    ----------
    parcels : GeoDataFrame
    n : int
        Number of partitions (capped at the number of parcels; at least 1).

    Returns
    -------
    list of numpy.ndarray
        Integer positions into ``parcels``, one array per partition; together
        a permutation of ``range(len(parcels))``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> p = gpd.GeoDataFrame(geometry=[box(x, y, x + 1, y + 1) for x, y in
    ...     [(0, 0), (90, 90), (1, 0), (91, 90)]], crs="EPSG:6677")
    >>> [a.tolist() for a in hilbert_partitions(p, 2)]
    [[0, 2], [1, 3]]
    """
    count = len(parcels)
    n = max(1, min(int(n), count))
    geoms = parcels.geometry
    present = ~(geoms.isna() | geoms.is_empty).to_numpy()
    order = np.flatnonzero(present)
    if len(order) > 1:
        dist = geoms[present].hilbert_distance().to_numpy()
        order = order[np.argsort(dist, kind="stable")]
    order = np.concatenate([order, np.flatnonzero(~present)])
    return [part for part in np.array_split(order, n) if len(part)]


def zonal(options: Any, parcels: gpd.GeoDataFrame, rasters: Mapping[str, Path],
          *, client: Client | None = None, partition_parcels: int = PARTITION_PARCELS,
          **kwargs: Any) -> pd.DataFrame:
    """:func:`pipeline.zonal.zonal_stats` on the engine ``options.engine`` selects.

    Parameters
    ----------
    options : Options
        ``engine`` ("local" or "dask"), ``workers``, ``scheduler``.
    parcels : GeoDataFrame
        As for :func:`pipeline.zonal.zonal_stats`.
    rasters : mapping of str to Path
        Raster key to GeoTIFF path (workers open them by path).
    client : distributed.Client, optional
        With the dask engine: run on this client instead of opening one for the
        call (keeps a cluster up across calls).
    partition_parcels : int
        With the dask engine: parcels per task, at most (at least
        :data:`MIN_PARTITIONS` tasks are made when there are parcels enough).
    **kwargs
        Options of :func:`pipeline.zonal.zonal_stats`.

    Returns
    -------
    DataFrame
        Aligned to ``parcels.index``, with the columns and dtypes of the
        in-process call.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> from shapely.geometry import box
    >>> from pipeline.runner import Options
    >>> tif = Path(tempfile.mkdtemp()) / "v.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=4, height=4, count=1,
    ...                    dtype="float32", crs="EPSG:6677", nodata=-9999,
    ...                    transform=Affine(1, 0, 0, 0, -1, 4)) as ds:
    ...     ds.write(np.arange(16, dtype="float32").reshape(1, 4, 4))
    >>> parcels = gpd.GeoDataFrame(geometry=[box(0, 3, 1.4, 4), box(2, 0, 4, 2)],
    ...                            index=["A", "B"], crs="EPSG:6677")
    >>> zonal(Options(engine="dask", workers=1), parcels, {"v": tif}, stats=["count", "max"])
       v_count  v_max
    A      1.4    1.0
    B      4.0   15.0
    """
    from pipeline.zonal import zonal_stats

    if options.engine == "local" or len(parcels) == 0:
        return zonal_stats(parcels, rasters, **kwargs)
    _check_engine(options)
    t0 = time.perf_counter()
    rasters = {key: Path(path) for key, path in rasters.items()}
    with _using(options, client) as c:
        workers = _n_workers(c)
        n_parts = max(math.ceil(len(parcels) / max(1, partition_parcels)), MIN_PARTITIONS)
        parts = hilbert_partitions(parcels, n_parts)
        # partitions are scattered (the task graph stays small), unhashed: tokenizing
        # geometries costs 15x their pickling
        data = c.scatter([parcels.iloc[p] for p in parts], hash=False)
        futures = c.map(_zonal_task, data, rasters=rasters, zonal_kwargs=kwargs,
                        per_host=_workers_per_host(c), pure=False)
        frames = c.gather(futures)
    out = _assemble(frames, parts, parcels.index, kwargs.get("categorical", ()), list(rasters))
    logger.info("zonal (dask, %d workers): %d parcels in %d partitions in %.2f s", workers,
                len(parcels), len(parts), time.perf_counter() - t0)
    return out


def _check_engine(options: Any) -> None:
    from pipeline.errors import ConfigError

    if options.engine != "dask":
        raise ConfigError(f"engine = {options.engine!r}: use 'local' or 'dask'")


def _workers_per_host(client: Client) -> dict[str, int]:
    """Number of workers on each host of the cluster."""
    hosts = [w.get("host", "") for w in client.scheduler_info().get("workers", {}).values()]
    return {h: hosts.count(h) for h in set(hosts)}


def _zonal_task(parcels: gpd.GeoDataFrame, *, rasters: Mapping[str, Path],
                zonal_kwargs: Mapping[str, Any], per_host: Mapping[str, int]) -> pd.DataFrame:
    """One partition's zonal statistics (runs on a worker).

    GDAL decodes blocks with the host's cores shared among its workers (all of
    them for a lone worker, one each for as many workers as cores), unless the
    caller chose ``decode_threads``.
    """
    import os

    from distributed import get_worker
    from distributed.comm import get_address_host

    from pipeline.zonal import zonal_stats

    kwargs = dict(zonal_kwargs)
    if "decode_threads" not in kwargs:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
            (os.cpu_count() or 1)
        sharing = per_host.get(get_address_host(get_worker().address), 1)
        kwargs["decode_threads"] = max(1, cores // max(1, sharing))
    return zonal_stats(parcels, rasters, **kwargs)


def _class_key(column: str, categorical: Sequence[str]) -> str | None:
    """The categorical raster key of a ``<key>_class_<value>`` column, else None."""
    for key in sorted(categorical, key=len, reverse=True):
        prefix = f"{key}_class_"
        if column.startswith(prefix):
            try:
                float(column[len(prefix):])
            except ValueError:
                continue
            return key
    return None


def _columns(frames: Sequence[pd.DataFrame], categorical: Sequence[str],
             keys: Sequence[str]) -> list[str]:
    """The columns of the whole result in zonal_stats' order.

    Every partition has the same columns except the ``<key>_class_<value>``
    ones, which exist for the values found in it; zonal_stats puts them, sorted
    by value, after the other columns of their key.
    """
    base = [c for c in frames[0].columns if _class_key(c, categorical) is None]
    after: dict[str | None, dict[str, set[str]]] = {}
    for frame in frames:
        prev: str | None = None
        for col in frame.columns:
            key = _class_key(col, categorical)
            if key is None:
                prev = col
            else:
                after.setdefault(prev, {}).setdefault(key, set()).add(col)

    def classes(anchor: str | None) -> list[str]:
        found = after.get(anchor, {})
        return [c for k in keys if k in found
                for c in sorted(found[k], key=lambda c: float(c[len(f"{k}_class_"):]))]

    cols = classes(None)
    for col in base:
        cols += [col, *classes(col)]
    return cols


def _assemble(frames: Sequence[pd.DataFrame], parts: Sequence[np.ndarray], index: pd.Index,
              categorical: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
    """The partitions' frames as one frame in the parcels' order."""
    cols = _columns(frames, categorical, keys)
    filled = []
    for frame in frames:
        missing = [c for c in cols if c not in frame.columns]  # class values it lacks: 0
        if missing:
            frame = frame.assign(**{c: np.zeros(len(frame)) for c in missing})
        filled.append(frame[cols].reset_index(drop=True))
    out = pd.concat(filled, ignore_index=True)
    where = np.empty(len(index), dtype=np.int64)
    where[np.concatenate(parts)] = np.arange(len(index))
    out = out.iloc[where]
    out.index = index
    return out


def point_distances(options: Any, net: Any, sources: Any, targets: Any, *,
                    client: Client | None = None, batch_size: int | None = None) -> np.ndarray:
    """:func:`pipeline.network.point_distance_matrix` on the selected engine.

    Parameters
    ----------
    options : Options
        ``engine``, ``workers``, ``scheduler``.
    net : RoadNetwork
    sources, targets : array-like or GeoSeries
        Points, as for :func:`pipeline.network.point_distance_matrix`.
    client : distributed.Client, optional
        With the dask engine: run on this client instead of opening one.
    batch_size : int, optional
        With the dask engine: sources per task (default: four tasks per worker).

    Returns
    -------
    numpy.ndarray
        ``(S, T)`` distances along the road, equal to the in-process result.

    Examples
    --------
    >>> from pipeline.network import _example_network
    >>> from pipeline.runner import Options
    >>> net = _example_network()
    >>> src, tgt = [[30.0, 5.0], [100.0, 50.0]], [[150.0, -2.0], [100.0, 50.0]]
    >>> point_distances(Options(engine="dask", workers=1), net, src, tgt).tolist()
    [[120.0, 120.0], [100.0, 0.0]]
    """
    from pipeline.network import point_distance_matrix

    if options.engine == "local":
        return point_distance_matrix(net, sources, targets)
    _check_engine(options)
    t0 = time.perf_counter()
    n = len(sources)
    if n == 0:
        return point_distance_matrix(net, sources, targets)
    if isinstance(targets, (list, tuple)):  # scatter would split a list into items
        targets = np.asarray(targets, dtype=object if _geometries(targets) else float)
    with _using(options, client) as c:
        workers = _n_workers(c)
        size = batch_size or math.ceil(n / (TASKS_PER_WORKER * workers))
        starts = range(0, n, max(1, int(size)))
        net_f = c.scatter(net, broadcast=True, hash=False)
        tgt_f = c.scatter(targets, broadcast=True, hash=False)
        futures = [c.submit(point_distance_matrix, net_f, _rows(sources, a, a + size), tgt_f,
                            pure=False) for a in starts]
        blocks = c.gather(futures)
    logger.info("point_distances (dask, %d workers): %d x %d in %d batches in %.2f s", workers,
                n, len(targets), len(blocks), time.perf_counter() - t0)
    return np.vstack(blocks)


def _geometries(points: Sequence[Any]) -> bool:
    import shapely

    return len(points) > 0 and isinstance(points[0], shapely.Geometry)


def _rows(points: Any, start: int, stop: int) -> Any:
    """Points ``start:stop`` of a GeoSeries/GeoDataFrame, an array or a list."""
    if hasattr(points, "iloc"):
        return points.iloc[start:stop]
    if isinstance(points, (list, tuple)):
        return np.asarray(points[start:stop], dtype=object if _geometries(points) else float)
    return np.asarray(points)[start:stop]
