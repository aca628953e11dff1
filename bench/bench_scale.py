"""Scale benchmark: the hazard stage's zonal statistics in process and on Dask.

Two measurements, each configuration in a fresh subprocess (libraries imported
and parcels read before the clock starts):

``bounded``
    Bounded memory on one machine: a 40,000 x 40,000 float32 DEM (6.4 GB of
    pixels) and 100,000 parcels. (a) The hazard stage's zonal-statistics call on
    the DEM (min, mean, max, count, nodata, area, the 5th percentile and the
    slope) in process; (b) the whole ``hazard`` stage through the Runner on a
    generated study (parcels in a GeoPackage, one run-up scenario). Peak memory
    is the subprocess's ``ru_maxrss``; the target is < 3 GB.
``scale``
    1,000,000 parcels over a 20,000 x 20,000 DEM, the same call in process, on
    a local Dask cluster of 1 worker and of 2 workers: wall time (cluster
    start-up apart), peak memory of the driver process and of each worker
    (``client.run`` of ``resource.getrusage`` on every worker), the speed-up,
    and a check that the Dask results equal the in-process ones.

The rasters are written block row by block row with windowed writes (tiled
512 x 512, deflate with the floating-point predictor, BigTIFF), the parcels as
GeoParquet, all into ``bench/_data/scale/``, and reused by later runs (a
manifest records what was generated). Free disk space is checked first;
``--clean`` deletes the folder afterwards.

Run from the repository root::

    .venv/bin/python bench/bench_scale.py --repeat 3            # as in RESULTS.md, ~15 min
    .venv/bin/python bench/bench_scale.py --runs bounded        # the 40k DEM only, ~3 min
    .venv/bin/python bench/bench_scale.py --runs scale --parcels 200000 --configs local,2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "_data" / "scale"
CRS = "EPSG:6677"  # JGD2011 / Japan Plane Rectangular CS IX (metres)
RES = 5.0
ORIGIN = (-100_000.0, 100_000.0)  # upper-left corner, plane-rectangular metres
VERSION = 1

# The hazard stage's call (pipeline.hazard.run_stage) for a study with a DEM only.
HAZARD_KWARGS: dict[str, Any] = {
    "stats": ("min", "mean", "max", "count", "nodata", "area"),
    "mode": "exact",
    "percentiles": (5.0,),
    "classes": {},
    "wet_threshold": {},
    "slope": "dem",
}

STUDY = """\
[study]
name = "Bounded-memory benchmark ({n} parcels, {size} x {size} DEM)"
crs = "{crs}"
output = "output"

[layers.parcels]
path = "parcels.gpkg"
layer = "parcels"
id_column = "site_id"

[layers.dem]
path = "{dem}"
kind = "laser5m"

[[scenario]]
name = "tsunami"
kind = "tsunami"
runup = 13.9
"""


# --------------------------------------------------------------------------- data


def _manifest() -> dict[str, Any]:
    try:
        return json.loads((DATA / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _record(name: str, spec: dict[str, Any]) -> None:
    manifest = _manifest()
    manifest[name] = spec
    (DATA / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _fresh(name: str, spec: dict[str, Any]) -> bool:
    return _manifest().get(name) == spec and (DATA / name).exists()


def check_disk(need: int) -> None:
    """Stop unless the data folder's file system has ``need`` bytes free (plus 2 GB)."""
    DATA.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(DATA).free
    print(f"disk: {free / 2**30:.1f} GiB free in {DATA}, this run may write up to "
          f"{need / 2**30:.1f} GiB")
    if free < need + 2 * 2**30:
        sys.exit(f"not enough free disk in {DATA}: {free / 2**30:.1f} GiB free, "
                 f"{need / 2**30 + 2:.1f} GiB needed; free some or pass --data elsewhere")


def land_rows(size: int) -> int:
    """Rows of land: the southern twentieth of the DEM is sea (nodata)."""
    return size - size // 20


def write_dem(size: int) -> Path:
    """A ``size`` x ``size`` float32 DEM of smooth hills with 0.3 m noise, rounded to
    1 cm as GSI's, with a nodata sea to the south; written block row by block row."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    name = f"dem_{size}.tif"
    spec = {"size": size, "version": VERSION}
    path = DATA / name
    if _fresh(name, spec):
        return path
    check_disk(size * size * 4)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1,
               "dtype": "float32", "crs": CRS, "nodata": -9999.0, "tiled": True,
               "blockxsize": 512, "blockysize": 512, "compress": "deflate", "predictor": 3,
               "zlevel": 1, "bigtiff": "YES", "num_threads": "ALL_CPUS",
               "transform": Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1])}
    t0 = time.perf_counter()
    tmp = path.with_suffix(".part.tif")
    cols = np.arange(size, dtype=np.float32)[None, :]
    sea = land_rows(size)
    with rasterio.open(tmp, "w", **profile) as ds:
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            rows = np.arange(r0, r0 + h, dtype=np.float32)[:, None]
            rng = np.random.default_rng([VERSION, r0])
            z = (12 + 15 * np.sin(cols / 300) * np.cos(rows / 450)
                 + 40 * np.sin(cols / 2900 + 1) * np.sin(rows / 3700) + 40)
            z += rng.standard_normal((h, size), dtype=np.float32) * np.float32(0.3)
            z = np.round(z, 2).astype(np.float32)
            z[np.broadcast_to(rows >= sea, z.shape)] = -9999.0
            ds.write(z[None], window=Window(0, r0, size, h))
    tmp.replace(path)
    _record(name, spec)
    print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB on disk, "
          f"{size * size * 4 / 1e9:.1f} GB of pixels) in {time.perf_counter() - t0:.0f} s")
    return path


def write_parcels(n: int, size: int, *, seed: int) -> Path:
    """``n`` squares of 10-40 m at seeded random places on the DEM's land, as GeoParquet."""
    import geopandas as gpd
    import shapely

    name = f"parcels_{n}_{size}.parquet"
    spec = {"n": n, "size": size, "seed": seed, "version": VERSION}
    path = DATA / name
    if _fresh(name, spec):
        return path
    rng = np.random.default_rng(seed)
    extent = size * RES
    x = ORIGIN[0] + rng.uniform(10, extent - 50, n)
    y = ORIGIN[1] - rng.uniform(10, land_rows(size) * RES - 50, n)
    side = rng.uniform(10, 40, n)
    frame = gpd.GeoDataFrame({"site_id": [f"P{i:07d}" for i in range(n)]},
                             geometry=shapely.box(x, y - side, x + side, y), crs=CRS)
    frame.to_parquet(path)
    _record(name, spec)
    return path


def write_study(parcels: Path, dem: Path) -> Path:
    """A study folder for the hazard stage: parcels.gpkg and study.toml (DEM by path)."""
    import geopandas as gpd

    folder = DATA / f"study_{parcels.stem}"
    name = folder.name
    spec = {"parcels": parcels.name, "dem": dem.name, "version": VERSION}
    if not _fresh(name, spec):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        gpd.read_parquet(parcels).to_file(folder / "parcels.gpkg", layer="parcels",
                                           driver="GPKG")
        _record(name, spec)
    import pyarrow.parquet as pq

    n = pq.ParquetFile(parcels).metadata.num_rows
    size = int(dem.stem.split("_")[1])
    (folder / "study.toml").write_text(STUDY.format(n=n, size=size, crs=CRS, dem=dem))
    shutil.rmtree(folder / "output", ignore_errors=True)
    return folder / "study.toml"


# --------------------------------------------------------------------------- measured steps


def _peak_mb() -> float:
    """This process's peak resident set (Linux reports KiB), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(args: argparse.Namespace) -> None:
    """One measured configuration (runs in its own subprocess); prints a JSON line."""
    import geopandas as gpd

    from pipeline.parallel import dask_client, zonal
    from pipeline.runner import Options

    out: dict[str, Any] = {"what": args.child, "engine": args.engine, "workers": args.workers}
    if args.child == "stage":
        from pipeline.config import load_study
        from pipeline.runner import Runner
        from pipeline.stages import STAGES

        study = load_study(args.study)
        out["before_mb"] = _rss_mb()
        t0 = time.perf_counter()
        results = Runner(study, STAGES, Options(force=True)).run(["hazard"])
        out["seconds"] = time.perf_counter() - t0
        out["summary"] = results[-1].summary
        out["peak_mb"] = _peak_mb()
        print("RESULT " + json.dumps(out), flush=True)
        return
    parcels = gpd.read_parquet(args.parcels_path).set_index("site_id")
    rasters = {"dem": Path(args.dem)}
    out["before_mb"] = _rss_mb()
    if args.engine == "local":
        t0 = time.perf_counter()
        stats = zonal(Options(), parcels, rasters, **HAZARD_KWARGS)
        out["seconds"] = time.perf_counter() - t0
    else:
        options = Options(engine="dask", workers=args.workers)
        t0 = time.perf_counter()
        with dask_client(options) as client:
            out["startup_seconds"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            stats = zonal(options, parcels, rasters, client=client, **HAZARD_KWARGS)
            out["seconds"] = time.perf_counter() - t1
            peaks = client.run(_peak_mb)
            out["worker_peak_mb"] = [peaks[k] for k in sorted(peaks)]
    out["peak_mb"] = _peak_mb()
    out["parcels"] = len(stats)
    out["with_dem"] = int(stats["dem_count"].gt(0).sum())
    if args.result:
        stats.to_parquet(args.result)
    print("RESULT " + json.dumps(out), flush=True)


def measure(argv: list[str]) -> dict[str, Any]:
    """Run ``bench_scale.py --child ...`` in a fresh interpreter; its JSON result, with
    ``children_peak_mb``: ``ru_maxrss`` over the subprocesses run so far (RUSAGE_CHILDREN)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
    print("  $ " + " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        sys.exit(f"measurement failed (exit {proc.returncode}): {' '.join(argv)}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    result["children_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def same_results(a: Path, b: Path) -> str:
    """Whether two zonal-statistics tables are equal: bit for bit but the percentile."""
    import pandas as pd

    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if not (x.index.equals(y.index) and list(x.columns) == list(y.columns)
            and x.dtypes.equals(y.dtypes)):
        return "DIFFERENT index, columns or dtypes"
    exact = [c for c in x.columns if c != "dem_p5"]
    bad = [c for c in exact if not x[c].equals(y[c])]
    diff = (x["dem_p5"] - y["dem_p5"]).abs().max()
    n_diff = int((~((x["dem_p5"] == y["dem_p5"]) | (x["dem_p5"].isna() & y["dem_p5"].isna())))
                 .sum())
    if bad:
        return f"DIFFERENT in {bad}"
    return (f"equal: {len(exact)} columns bit for bit; dem_p5 differs in {n_diff} parcels "
            f"by at most {diff:.1e} m")


# --------------------------------------------------------------------------- driver


def run_bounded(args: argparse.Namespace) -> None:
    size, n = args.bounded_size, args.bounded_parcels
    print(f"\n== bounded memory: {n:,} parcels, {size:,} x {size:,} float32 DEM "
          f"({size * size * 4 / 1e9:.1f} GB of pixels)")
    dem = write_dem(size)
    parcels = write_parcels(n, size, seed=11)
    study = write_study(parcels, dem)
    r = measure(["--child", "zonal", "--engine", "local", "--dem", str(dem),
                 "--parcels-file", str(parcels)])
    print(f"  zonal_stats (hazard call, DEM + slope + p5), in process: {r['seconds']:.1f} s, "
          f"peak {r['peak_mb']:.0f} MB (before the call {r['before_mb']:.0f} MB; "
          f"RUSAGE_CHILDREN {r['children_peak_mb']:.0f} MB); {r['with_dem']:,} parcels with "
          f"DEM data; target < 3072 MB: {'met' if r['peak_mb'] < 3072 else 'MISSED'}")
    s = measure(["--child", "stage", "--study", str(study)])
    print(f"  hazard stage (Runner, reads parcels.gpkg, writes parquet): {s['seconds']:.1f} s, "
          f"peak {s['peak_mb']:.0f} MB (before {s['before_mb']:.0f} MB); {s['summary']}; "
          f"target < 3072 MB: {'met' if s['peak_mb'] < 3072 else 'MISSED'}")


def run_scale(args: argparse.Namespace) -> None:
    size, n = args.size, args.parcels
    print(f"\n== scale: {n:,} parcels, {size:,} x {size:,} DEM; {args.repeat} round(s) of "
          f"{args.configs} (interleaved, so that load from elsewhere spreads over all)")
    dem = write_dem(size)
    parcels = write_parcels(n, size, seed=7)
    configs = args.configs.split(",")
    rows: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    for _ in range(args.repeat):
        for config in configs:
            engine, workers = ("local", 0) if config == "local" else ("dask", int(config))
            result = DATA / f"result_{n}_{config}.parquet"
            r = measure(["--child", "zonal", "--engine", engine, "--workers", str(workers),
                         "--dem", str(dem), "--parcels-file", str(parcels),
                         "--result", str(result)])
            r["result"] = result
            rows[config].append(r)
            where = "in process" if engine == "local" else f"dask, {workers} worker(s)"
            workers_txt = ("" if engine == "local" else
                           ", workers peak "
                           f"{', '.join(f'{m:.0f}' for m in r['worker_peak_mb'])} MB"
                           f", cluster start-up {r['startup_seconds']:.1f} s")
            print(f"  {where}: {r['seconds']:.1f} s, driver peak {r['peak_mb']:.0f} MB "
                  f"(before {r['before_mb']:.0f} MB){workers_txt}", flush=True)
    median = {c: float(np.median([r["seconds"] for r in rs])) for c, rs in rows.items()}
    print("  median wall time: " + ", ".join(f"{c} {t:.1f} s" for c, t in median.items()))
    for config in configs:
        if config == "local":
            continue
        parts = []
        if "local" in rows:
            parts.append(f"speed-up vs in process {median['local'] / median[config]:.2f}x; "
                         + same_results(rows["local"][-1]["result"],
                                        rows[config][-1]["result"]))
        if config != "1" and "1" in rows:
            parts.append(f"vs 1 worker {median['1'] / median[config]:.2f}x")
        print(f"  dask {config} worker(s): " + "; ".join(parts))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="bounded,scale",
                        help="comma-separated: bounded, scale (default both)")
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=20_000, help="raster side, pixels")
    parser.add_argument("--configs", default="local,1,2",
                        help="comma-separated: local and/or numbers of Dask workers")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the scale configurations (medians are compared)")
    parser.add_argument("--bounded-parcels", type=int, default=100_000)
    parser.add_argument("--bounded-size", type=int, default=40_000)
    parser.add_argument("--clean", action="store_true",
                        help="delete the generated data afterwards")
    # a measured configuration (internal)
    parser.add_argument("--child", choices=["zonal", "stage"], help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dem", help=argparse.SUPPRESS)
    parser.add_argument("--parcels-file", dest="parcels_path", help=argparse.SUPPRESS)
    parser.add_argument("--study", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    import platform

    import dask
    import exactextract
    import rasterio

    print(f"{time.strftime('%Y-%m-%d')} {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; dask {dask.__version__}, exactextract "
          f"{exactextract.__version__}, rasterio {rasterio.__version__}, GDAL "
          f"{rasterio.__gdal_version__}")
    runs = args.runs.split(",")
    try:
        if "bounded" in runs:
            run_bounded(args)
        if "scale" in runs:
            run_scale(args)
    finally:
        if args.clean:
            shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
