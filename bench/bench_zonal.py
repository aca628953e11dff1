"""Benchmark of pipeline.zonal.zonal_stats against rasterstats and bare exactextract.

Synthetic inputs (written once into bench/_data/, which git ignores):

- three 8000 x 8000 float32 rasters at 5 m on one grid (EPSG:6677), tiled
  256 x 256, deflate: a DEM with sea cells as nodata (``dem.tif``), a tsunami
  depth (``tsunami.tif``, nodata over the sea) and a flood depth (``flood.tif``,
  with a nodata block);
- 5,000 irregular 12-vertex parcels of 130-17,000 m2 (``parcels.gpkg``).

Every measurement runs in a fresh subprocess: the libraries are imported and
the parcels read first, then only the call is timed; peak memory is the
subprocess's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (GDAL's memory
included, unlike tracemalloc). Fast measurements take the best of ``--repeat``
runs. Run from the repository root::

    .venv/bin/python bench/bench_zonal.py --write-results

which prints a table and replaces the "Zonal statistics (hazard stage)" section
of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "_data"
RESULTS = HERE / "RESULTS.md"
HEADING = "## Zonal statistics (hazard stage)"
CRS = "EPSG:6677"
X0, Y0 = 500000.0, 3900000.0
CELL = 5.0
BASIC = ["min", "mean", "max", "count"]


# --- data ------------------------------------------------------------------------

def generate(data: Path, size: int, n_parcels: int, seed: int = 0) -> None:
    """Write the rasters and parcels, unless the same ones are already there."""
    import geopandas as gpd
    import numpy as np
    import rasterio
    import shapely
    from affine import Affine
    from rasterio.windows import Window

    manifest = {"size": size, "parcels": n_parcels, "seed": seed, "version": 1}
    mfile = data / "manifest.json"
    if mfile.exists() and json.loads(mfile.read_text()) == manifest:
        return
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1,
               "dtype": "float32", "crs": CRS, "nodata": -9999.0, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate",
               "transform": Affine(CELL, 0, X0, 0, -CELL, Y0 + size * CELL)}
    with rasterio.open(data / "dem.tif", "w", **profile) as dem, \
            rasterio.open(data / "tsunami.tif", "w", **profile) as tsu, \
            rasterio.open(data / "flood.tif", "w", **profile) as fld:
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            yy, xx = np.mgrid[r0:r0 + h, 0:size].astype("float32")
            z = (40 + 30 * np.sin(xx / 900) * np.cos(yy / 700) + 10 * np.sin(xx / 130 + yy / 170)
                 + rng.normal(0, 0.3, xx.shape)).astype("float32")
            sea = z < 5
            depth = np.clip(13.9 - z, 0, None).astype("float32")
            flood = (np.clip(25 - z, 0, None) * 0.3).astype("float32")
            z[sea] = -9999.0
            depth[sea] = -9999.0
            flood[(xx > 0.75 * size) & (yy > 0.75 * size)] = -9999.0
            window = Window(0, r0, size, h)
            dem.write(z, 1, window=window)
            tsu.write(depth, 1, window=window)
            fld.write(flood, 1, window=window)
    extent = size * CELL
    cx = rng.uniform(X0 + 200, X0 + extent - 200, n_parcels)
    cy = rng.uniform(Y0 + 200, Y0 + extent - 200, n_parcels)
    w = rng.uniform(20, 150, n_parcels)
    depth = w * rng.uniform(0.4, 1.0, n_parcels)
    ang = rng.uniform(0, np.pi, n_parcels)
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    rad = 1 + rng.uniform(-0.15, 0.15, (n_parcels, 12))
    px, py = (w[:, None] / 2) * np.cos(t) * rad, (depth[:, None] / 2) * np.sin(t) * rad
    xs = cx[:, None] + px * np.cos(ang)[:, None] - py * np.sin(ang)[:, None]
    ys = cy[:, None] + px * np.sin(ang)[:, None] + py * np.cos(ang)[:, None]
    ring = np.stack([xs, ys], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    gpd.GeoDataFrame({"pid": np.arange(n_parcels)}, geometry=shapely.polygons(ring),
                     crs=CRS).to_file(data / "parcels.gpkg")
    mfile.write_text(json.dumps(manifest))


# --- measurements (run in a subprocess each) -----------------------------------------

MEASURES = {
    "siteplan_1": "siteplan zonal_stats, exact, DEM only, min/mean/max/count",
    "siteplan_1_centre": "siteplan zonal_stats, centre, DEM only, min/mean/max/count",
    "siteplan_3_basic": "siteplan zonal_stats, exact, 3 rasters, min/mean/max/count",
    "siteplan_3_stage": "siteplan zonal_stats, exact, 3 rasters, the hazard stage's stats",
    "siteplan_3_stage_slope": "the same + DEM slope mean/max",
    "ee_1": "bare exactextract, DEM only, min/mean/max/count",
    "ee_3": "bare exactextract, 3 rasters in one call, min/mean/max/count",
    "ee_mem_1": "exactextract on in-memory arrays (no I/O), DEM only",
    "ee_mem_3": "exactextract on in-memory arrays (no I/O), 3 rasters",
    "rasterstats_1": "rasterstats zonal_stats (default settings), DEM only",
    "rasterstats_3": "rasterstats zonal_stats (default settings), 3 rasters, 3 calls",
}


def _stage_options() -> dict[str, Any]:
    from pipeline.zonal import JAPAN_DEPTH_BREAKS

    return {
        "stats": {"dem": BASIC, "tsunami": ["max", "mean", "nodata"],
                  "flood": ["max", "mean", "nodata"]},
        "percentiles": {"dem": [5]},
        "classes": {"tsunami": JAPAN_DEPTH_BREAKS, "flood": JAPAN_DEPTH_BREAKS},
        "wet_threshold": {"tsunami": 0.01, "flood": 0.01},
    }


def measure(name: str, data: Path, sample: int) -> dict[str, Any]:
    """Run one measurement in this process; return wall time and peak memory."""
    warnings.simplefilter("ignore")  # rasterstats' Affine `*` deprecation noise
    import exactextract
    import geopandas as gpd
    import rasterio
    import rasterstats
    from exactextract.raster import NumPyRasterSource

    from pipeline.zonal import zonal_stats

    parcels = gpd.read_file(data / "parcels.gpkg")
    rasters = {k: data / f"{k}.tif" for k in ("dem", "tsunami", "flood")}
    paths = [str(p) for p in rasters.values()]
    zonal_stats(parcels.iloc[:2], {"dem": rasters["dem"]})  # load lazy imports
    n = len(parcels)
    if name.startswith("rasterstats") and 0 < sample < n:
        parcels = parcels.sample(sample, random_state=0)
    arrays = []
    if name.startswith("ee_mem"):
        for p in paths[:1 if name == "ee_mem_1" else 3]:
            with rasterio.open(p) as ds:
                b = ds.bounds
                arrays.append(NumPyRasterSource(ds.read(1), b.left, b.bottom, b.right, b.top,
                                                nodata=ds.nodata, name=Path(p).stem))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if name == "siteplan_1":
        zonal_stats(parcels, {"dem": rasters["dem"]})
    elif name == "siteplan_1_centre":
        zonal_stats(parcels, {"dem": rasters["dem"]}, mode="centre")
    elif name == "siteplan_3_basic":
        zonal_stats(parcels, rasters)
    elif name == "siteplan_3_stage":
        zonal_stats(parcels, rasters, **_stage_options())
    elif name == "siteplan_3_stage_slope":
        zonal_stats(parcels, rasters, slope="dem", **_stage_options())
    elif name == "ee_1":
        exactextract.exact_extract(paths[0], parcels, BASIC, output="pandas")
    elif name == "ee_3":
        exactextract.exact_extract(paths, parcels, BASIC, output="pandas")
    elif name.startswith("ee_mem"):
        exactextract.exact_extract(arrays, parcels, BASIC, output="pandas")
    elif name == "rasterstats_1":
        rasterstats.zonal_stats(parcels, paths[0])
    elif name == "rasterstats_3":
        for p in paths:
            rasterstats.zonal_stats(parcels, p)
    else:
        raise SystemExit(f"unknown measurement {name!r}")
    seconds = time.perf_counter() - t0
    timed = len(parcels)
    return {"name": name, "seconds": seconds * n / timed, "measured_seconds": seconds,
            "parcels_timed": timed, "scaled": timed < n,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "baseline_mb": rss_before / 1024}


def run(name: str, data: Path, sample: int, repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` fresh subprocesses."""
    best: dict[str, Any] | None = None
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--measure", name,
             "--data", str(data), "--rasterstats-sample", str(sample)],
            check=True, capture_output=True, text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"})
        res = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or res["seconds"] < best["seconds"]:
            peak = max(res["peak_mb"], best["peak_mb"] if best else 0.0)
            best = {**res, "peak_mb": peak}
        else:
            best["peak_mb"] = max(best["peak_mb"], res["peak_mb"])
    assert best is not None
    return best


# --- report ----------------------------------------------------------------------

def _versions() -> str:
    from importlib.metadata import version

    import rasterio

    pkgs = ["exactextract", "rasterio", "rasterstats", "numpy", "geopandas", "shapely"]
    parts = [f"{p} {version(p)}" for p in pkgs] + [f"GDAL {rasterio.__gdal_version__}"]
    return ", ".join(parts)


def report(res: dict[str, dict[str, Any]], args: argparse.Namespace, command: str,
           load: tuple[float, float]) -> str:
    r = {k: v["seconds"] for k, v in res.items()}
    machine = (f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} with "
               f"{os.cpu_count()} CPUs shared with other jobs (1-minute load average "
               f"{load[0]:.1f} before, {load[1]:.1f} after; above 1, other jobs competed and "
               f"times rise), Python {platform.python_version()}; {_versions()}.")
    inputs = (f"Inputs: {args.size} x {args.size} float32 rasters at 5 m (a DEM with sea cells "
              "as nodata, tsunami and flood depths with nodata areas; one grid, tiled 256, "
              f"deflate) and {args.parcels:,} irregular 12-vertex parcels of 130-17,000 m2, "
              "generated by the script into bench/_data/.")
    method = ("Each row is a fresh subprocess: the libraries are imported and the parcels read "
              f"before the clock starts; wall time is the best of {args.repeat} runs "
              "(rasterstats: one run); peak memory is the subprocess's `ru_maxrss` (Python, "
              "GDAL's cache and all), with the level before the call in brackets.")
    lines = [HEADING, "", f"Command (from the repository root): `{command}`", "", machine, "",
             inputs, "", method, "",
             "| measurement | wall time (s) | peak memory (MB) |", "|---|---:|---:|"]
    for name, v in res.items():
        note = (f" (timed on {v['parcels_timed']:,} random parcels, "
                f"{v['measured_seconds']:.1f} s, scaled)") if v["scaled"] else ""
        lines.append(f"| {MEASURES[name]}{note} | {v['seconds']:.2f} | "
                     f"{v['peak_mb']:.0f} ({v['baseline_mb']:.0f}) |")
    ratios = [
        ("rasterstats / siteplan, DEM only (exact)", r["rasterstats_1"] / r["siteplan_1"],
         ">= 10"),
        ("rasterstats / siteplan, DEM only (centre: rasterstats' own pixel rule)",
         r["rasterstats_1"] / r["siteplan_1_centre"], ">= 10"),
        ("rasterstats (3 calls) / siteplan hazard-stage call, 3 rasters",
         r["rasterstats_3"] / r["siteplan_3_stage"], ">= 10"),
        ("siteplan hazard-stage call, 3 rasters / one bare exactextract call (DEM only)",
         r["siteplan_3_stage"] / r["ee_1"], "<= 1.3"),
        ("the same with slope / one bare exactextract call (DEM only)",
         r["siteplan_3_stage_slope"] / r["ee_1"], "<= 1.3"),
        ("siteplan hazard-stage call, 3 rasters / bare exactextract, 3 rasters",
         r["siteplan_3_stage"] / r["ee_3"], "<= 1.3"),
        ("siteplan, 3 rasters / 1 raster (same stats)", r["siteplan_3_basic"] / r["siteplan_1"],
         "coverage once"),
        ("exactextract in memory (no I/O), 3 rasters / 1 raster", r["ee_mem_3"] / r["ee_mem_1"],
         "coverage once"),
    ]
    peak = max(v["peak_mb"] for k, v in res.items() if k.startswith("siteplan"))
    lines += ["", "| ratio | value | target |", "|---|---:|---|"]
    lines += [f"| {label} | {value:.2f} | {target} |" for label, value, target in ratios]
    lines += [f"| peak memory of any siteplan call | {peak:.0f} MB | < 1536 MB |", ""]
    notes = [
        ("Coverage is computed once per parcel for all rasters of a grid: siteplan hands them "
         "to one exactextract call (`coverage` once, `values` per raster). Without I/O (the "
         "in-memory rows) two more rasters add "
         f"{100 * (r['ee_mem_3'] / r['ee_mem_1'] - 1):.0f} % to one raster's time, where "
         "computing the coverage again per raster would roughly triple it; with I/O most of "
         "the extra time is decoding the two extra rasters."),
        ("siteplan reads through its own exactextract RasterSource (plain windowed reads, NaN "
         "for nodata) instead of exactextract's rasterio source (masked reads), visits parcels "
         "in Hilbert order, and before each batch decodes the raster blocks the batch touches "
         "with a few multi-block reads, which GDAL decodes on all cores (GDAL_NUM_THREADS; "
         "2 here, so part of the gain over bare exactextract and rasterstats, which decode on "
         "one core, comes from the second core). The bare exactextract rows use "
         "exactextract's defaults on the parcels as given."),
        ("Most of the remaining time is deflate decoding of the DEM (its 0.3 m noise does not "
         "compress). The stage's extra statistics (p5, 8 depth classes for two rasters, wet "
         "area and share, nodata) are vectorised numpy over the pixel tables; slope is "
         "computed window by window from the DEM windows already read."),
        ("Centre mode burns runs of non-overlapping parcels into one label window per "
         "rasterize call (overlapping parcels, and windows where a shared edge runs through "
         "pixel centres, are burnt one parcel at a time, so counts equal rasterstats')."),
    ]
    lines += ["Notes:", *(f"- {n}" for n in notes), ""]
    return "\n".join(lines)


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace (or append) this benchmark's section, keeping the others."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if HEADING in old:
        start = old.index(HEADING)
        nxt = old.find("\n## ", start + len(HEADING))
        new = old[:start] + text.rstrip("\n") + "\n" + (old[nxt:] if nxt >= 0 else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--size", type=int, default=8000)
    ap.add_argument("--parcels", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rasterstats-sample", type=int, default=0,
                    help="time rasterstats on this many random parcels and scale (0: all)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these measurements")
    ap.add_argument("--write-results", action="store_true",
                    help=f"replace the section '{HEADING}' of bench/RESULTS.md")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.data, args.rasterstats_sample)))
        return
    generate(args.data, args.size, args.parcels)
    names = args.only or list(MEASURES)
    load_before = os.getloadavg()[0]
    res = {}
    for name in names:
        repeat = 1 if name.startswith("rasterstats") else args.repeat
        res[name] = run(name, args.data, args.rasterstats_sample, repeat)
        v = res[name]
        print(f"{name:24s} {v['seconds']:8.2f} s  peak {v['peak_mb']:6.0f} MB  "
              f"(before call {v['baseline_mb']:.0f} MB)", flush=True)
    if set(res) == set(MEASURES):
        command = " ".join([os.path.relpath(sys.executable), os.path.relpath(__file__),
                            *(argv if argv is not None else sys.argv[1:])])
        text = report(res, args, command, (load_before, os.getloadavg()[0]))
        print()
        print(text)
        if args.write_results:
            write_section(text)


if __name__ == "__main__":
    main()
