"""Access stage: how far each site is from the town and its people, and how steep the way is.

Over the road network (:mod:`pipeline.network`), measured from each parcel's
entrances (where its boundary meets a road), not from its centroid:

- distance and walking / driving time from the town centre;
- distance from the central street, with the grade of that route sampled on
  the DEM (the published criterion "distance from the central street / grade");
- from the evacuating population: population-weighted mean and maximum
  distance, and the share that reaches the site within the walking time;
- walking isochrones (areas reached in 5 / 10 / 15 minutes);
- the share of each site visible from the town centre (line of sight on the DEM);
- the routes as lines, and their elevation profiles, for the map.

Walking distances use the network with one-way restrictions lifted; driving
times follow one-way streets and the roads' speeds (or the study's default).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline import network as nw
from pipeline._progress import progress
from pipeline.config import Access
from pipeline.errors import LayerError, NetworkError, raise_all
from pipeline.parallel import point_distances
from pipeline.runner import Options
from pipeline.visibility import visible_share

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessResult:
    """What the access stage computes: the table and the geometries for the map."""

    table: pd.DataFrame
    routes: gpd.GeoDataFrame
    profiles: pd.DataFrame
    isochrones: gpd.GeoDataFrame


def entrance_points(parcels: gpd.GeoDataFrame, net: nw.RoadNetwork, settings: Access
                    ) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Entrances per parcel, and one row per entrance point (owner, point, connector).

    A parcel without an entrance gets one at the nearest road point, with the
    connector (the access road it would need) added to its distances.
    """
    ent = nw.entrances(parcels, net, tolerance=settings.entrance_tolerance)
    pts = ent.geometry.explode(index_parts=False)
    pts = pts[~pts.is_empty]
    none = ent["n_entrances"] == 0
    fallback = ent.loc[none, "nearest_road_point"]
    points = gpd.GeoDataFrame(
        {"site_id": np.r_[pts.index.to_numpy(), fallback.index.to_numpy()],
         "connector": np.r_[np.zeros(len(pts)), ent.loc[none, "connector"].to_numpy()]},
        geometry=np.r_[pts.to_numpy(), fallback.to_numpy()], crs=parcels.crs)
    table = pd.DataFrame({"n_entrances": ent["n_entrances"],
                          "connector_m": ent["connector"].where(none, 0.0)}, index=parcels.index)
    return table, points


def _per_site(values: np.ndarray, points: gpd.GeoDataFrame, index: pd.Index,
              extra: np.ndarray | None = None) -> pd.DataFrame:
    """Minimum over each site's entrances of ``values`` (one per entrance point) plus ``extra``
    (default: the connector length), and the position ``k`` of the winning entrance point."""
    total = values + (points["connector"].to_numpy() if extra is None else extra)
    frame = pd.DataFrame({"v": total, "site_id": points["site_id"].to_numpy(),
                          "k": np.arange(len(points))})
    best = frame.loc[frame.groupby("site_id")["v"].idxmin()].set_index("site_id")
    return best.reindex(index)


def _did_you_mean(name: str, names: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, [str(n) for n in names], n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def town_centre(poi: gpd.GeoDataFrame | None, name: str, name_column: str, *,
                source: str = "") -> shapely.Point:
    """The point of interest named ``name``; raises LayerError listing the names there are.

    Examples
    --------
    >>> poi = gpd.GeoDataFrame({"name": ["Town centre"]}, geometry=[shapely.Point(1, 2)],
    ...                        crs=6681)
    >>> town_centre(poi, "Town centre", "name").wkt
    'POINT (1 2)'
    >>> town_centre(poi, "Town center", "name")
    Traceback (most recent call last):
    ...
    pipeline.errors.LayerError: layer 'poi': no point named 'Town center' in column 'name' ([access] centre); did you mean 'Town centre'? names there: Town centre
    """
    if not name:
        raise LayerError("[access] centre is empty: name the town-centre point of the poi layer")
    if poi is None:
        raise LayerError("[access] centre needs a [layers.poi] layer")
    where = f"layer 'poi' ({source})" if source else "layer 'poi'"
    if name_column not in poi.columns:
        found = ", ".join(c for c in poi.columns if c != poi.geometry.name)
        raise LayerError(f"{where}: no column {name_column!r} to find the town centre "
                         f"{name!r} in (found: {found}); set [layers.poi] name_column")
    hit = poi[poi[name_column].astype(str) == name]
    if hit.empty:
        names = poi[name_column].astype(str).unique()
        raise LayerError(f"{where}: no point named {name!r} in column {name_column!r} ([access] "
                         f"centre); {_did_you_mean(name, names)}names there: "
                         f"{', '.join(names[:20])}")
    return hit.geometry.iloc[0]


def population_counts(population: gpd.GeoDataFrame, column: str, *,
                      where: str = "layer 'population'") -> np.ndarray:
    """People per point as floats (empty counts are 0); LayerError for text or negative counts.

    Examples
    --------
    >>> pop = gpd.GeoDataFrame({"people": [3, None]}, geometry=shapely.points([[0, 0], [1, 1]]),
    ...                        crs=6681)
    >>> population_counts(pop, "people").tolist()
    [3.0, 0.0]
    """
    raw = population[column]
    people = pd.to_numeric(raw, errors="coerce")
    problems = []
    text = people.isna() & raw.notna()
    if text.any():
        problems.append(f"{text.sum()} point(s) have a {column!r} that is not a number "
                        f"({', '.join(map(repr, raw[text].astype(str).unique()[:5]))}); give a "
                        "number of people")
    negative = people < 0
    if negative.any():
        problems.append(f"{negative.sum()} point(s) have a negative {column!r} (down to "
                        f"{people.min():g}); give a number of people >= 0")
    raise_all(problems, LayerError, where)
    return people.fillna(0.0).to_numpy(dtype=float)


def _off_road(snap: pd.DataFrame, people: np.ndarray, where: str, limit: float) -> np.ndarray:
    """Points farther than ``limit`` ([access] max_road_distance) from any road; LayerError
    when that is every point with people."""
    off = ~(snap["connector"].to_numpy(dtype=float) <= limit)
    if off[people > 0].all() and (people > 0).any():
        raise LayerError(f"{where}: every point ({int((people > 0).sum())}, holding "
                         f"{people.sum():g} people) is more than {limit:g} m from "
                         "any road ([access] max_road_distance); check the layer's CRS and that "
                         "the road layer covers where the people live")
    return off


def population_reach(
    walk: nw.RoadNetwork,
    population: gpd.GeoDataFrame,
    count_column: str,
    points: gpd.GeoDataFrame,
    index: pd.Index,
    settings: Access,
    options: Any = None,
) -> pd.DataFrame:
    """Population-weighted mean and max distance to each site, and the share within walking time.

    Points farther than ``[access] max_road_distance`` from every road are counted as
    unreached (``pop_unreached``), with a warning; when every point is that far it is
    an error.
    """
    people = population_counts(population, count_column)
    snap = nw.snap_points(walk, population.geometry)
    off = _off_road(snap, people, "layer 'population'", settings.max_road_distance)
    if off.any():
        logger.warning("layer 'population': %d point(s) holding %g people are more than %g m "
                       "from any road; they are counted as unreached (pop_unreached); move them "
                       "or extend the road layer", int(off.sum()), people[off].sum(),
                       settings.max_road_distance)
    d = point_distances(options or Options(), walk, population.geometry, points.geometry)
    d = d + snap["connector"].to_numpy()[:, None] + points["connector"].to_numpy()[None, :]
    d[off, :] = np.inf
    owners = pd.Index(points["site_id"])
    reach = settings.walk_speed * 1000 / 60 * settings.walk_minutes
    rows = {}
    for site in index:  # one column block per site (a handful of candidate sites)
        dist = d[:, owners == site].min(axis=1) if (owners == site).any() else np.full(len(d), np.inf)
        ok = np.isfinite(dist)
        w = people * ok
        rows[site] = {
            "pop_mean_dist_m": float((dist[ok] * people[ok]).sum() / w.sum()) if w.sum() else np.nan,
            "pop_max_dist_m": float(dist[ok & (people > 0)].max()) if (ok & (people > 0)).any() else np.nan,
            "pop_share_within_walk": float(people[dist <= reach].sum() / people.sum())
            if people.sum() else np.nan,
            "pop_unreached": float(people[~ok].sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index").reindex(index)


def access_table(
    parcels: gpd.GeoDataFrame,
    net: nw.RoadNetwork,
    settings: Access,
    *,
    centre: shapely.Point | None,
    street: str,
    dem: Path,
    population: gpd.GeoDataFrame | None = None,
    count_column: str = "people",
    name_column: str = "name",
    options: Any = None,
) -> AccessResult:
    """Access metrics, routes, profiles and isochrones for every parcel (pure: no file written).

    Parameters
    ----------
    parcels : GeoDataFrame
        In ``net.crs``, indexed by site id.
    net : RoadNetwork
        The road network (one-way flags respected for driving).
    settings : Access
    centre : Point or None
        The town centre.
    street : str
        Name of the central street ('' to skip).
    dem : Path
        DEM in ``net.crs`` for route grades.
    population : GeoDataFrame, optional
        Evacuating people as points with ``count_column``.

    Returns
    -------
    AccessResult
    """
    walk = nw.ignore_oneway(net)
    bar = bool(options is not None and options.progress)
    table, points = entrance_points(parcels, walk, settings)
    routes, profiles = [], []
    if centre is not None:
        d = nw.point_distance_matrix(walk, [centre], points.geometry)[0]
        best = _per_site(d, points, parcels.index)
        table["dist_centre_m"] = best["v"]
        table["walk_centre_min"] = best["v"] / (settings.walk_speed * 1000 / 60)
        speeds = nw.edge_travel_times(net, default_kmh=settings.drive_speed)
        t = nw.point_distance_matrix(net, [centre], points.geometry, weight=speeds)[0]
        conn_t = points["connector"].to_numpy() / (settings.drive_speed / 3.6)
        table["drive_centre_min"] = _per_site(t, points, parcels.index, conn_t)["v"] / 60
        winners = best["k"].dropna().astype(int)
        for site, k in progress(winners.items(), desc="routes from the centre",
                                total=len(winners), enabled=bar):
            routes.append(_route(walk, centre, points.geometry.iloc[k], site, "from_centre", dem))
        table["visible_share"] = visible_share(parcels, dem, centre,
                                               observer_height=settings.observer_height,
                                               target_height=settings.target_height,
                                               show_progress=bar)
    if street:
        sources = nw.street_nodes(walk, street, column=name_column)
        d, near = nw.distances_to_points(walk, sources, points.geometry)
        best = _per_site(d, points, parcels.index)
        table["dist_street_m"] = best["v"]
        winners = best["k"].dropna().astype(int)
        for site, k in progress(winners.items(), desc="routes from the street",
                                total=len(winners), enabled=bar):
            start = int(sources[near[k]])
            routes.append(_route(walk, start, points.geometry.iloc[k], site, "from_street", dem))
    route_frame = gpd.GeoDataFrame([r[0] for r in routes], geometry="geometry", crs=parcels.crs) \
        if routes else gpd.GeoDataFrame({"site_id": [], "kind": []}, geometry=[], crs=parcels.crs)
    if routes:
        profiles = pd.concat([r[1] for r in routes], ignore_index=True)
        street_routes = route_frame[route_frame["kind"] == "from_street"].set_index("site_id")
        table["street_grade_mean_pct"] = street_routes["mean_grade_pct"]
        table["street_grade_max_pct"] = street_routes["max_grade_pct"]
    if population is not None and len(population):
        table = table.join(population_reach(walk, population, count_column, points,
                                            parcels.index, settings, options))
    iso = _isochrones(walk, points, parcels.index, settings, show_progress=bar)
    return AccessResult(table, route_frame, pd.DataFrame(profiles), iso)


def _route(net: nw.RoadNetwork, start: Any, end: shapely.Point, site: str, kind: str,
           dem: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    try:
        line = nw.shortest_path(net, start, end)
    except NetworkError:
        raise NetworkError(f"no road route {kind.replace('_', ' ')} to parcel {site}: they lie on "
                           "unconnected parts of the road network; join the road lines or raise "
                           "[access] snap_tolerance") from None
    grade = nw.route_grade(line, dem)
    row = {"site_id": site, "kind": kind, "length_m": line.length,
           "rise_m": grade["rise"], "mean_grade_pct": grade["mean_grade_pct"],
           "max_grade_pct": grade["max_grade_pct"], "geometry": line}
    profile = pd.DataFrame({"site_id": site, "kind": kind, "distance_m": grade["distances"],
                            "elevation_m": grade["elevations"]})
    return row, profile


def _isochrones(walk: nw.RoadNetwork, points: gpd.GeoDataFrame, index: pd.Index,
                settings: Access, *, show_progress: bool = False) -> gpd.GeoDataFrame:
    """Walking isochrones from each site's entrances (one Dijkstra per site)."""
    frames = []
    nodes, _ = nw.nearest_nodes(walk, np.column_stack([points.geometry.x, points.geometry.y]))
    for site in progress(index, desc="isochrones", enabled=show_progress):  # one search a site
        mine = nodes[points["site_id"].to_numpy() == site]
        if len(mine) == 0 or not settings.isochrone_minutes:
            continue
        iso = nw.isochrones(walk, np.unique(mine), minutes=settings.isochrone_minutes,
                            speed_kmh=settings.walk_speed)
        frames.append(iso.assign(site_id=site))
    if not frames:
        return gpd.GeoDataFrame({"site_id": [], "minutes": []}, geometry=[], crs=points.crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=points.crs)


def road_network(ctx: Any) -> nw.RoadNetwork:
    """The study's road network, built once per run."""
    spec = ctx.study.layers.roads
    if spec is None:
        raise LayerError("the access stage needs a road layer: add [layers.roads] to the study")

    def build() -> nw.RoadNetwork:
        roads = ctx.roads
        oneway = spec.oneway_column if spec.oneway_column in roads.columns else None
        return nw.network_from_lines(roads, tolerance=ctx.study.access.snap_tolerance,
                                     oneway_column=oneway)

    return ctx.cached("network", build)


def _centre(ctx: Any) -> shapely.Point | None:
    """The town centre named by ``[access] centre`` (None when unset)."""
    study = ctx.study
    if not study.access.centre:
        return None
    spec = study.layers.poi
    return town_centre(ctx.vector("poi", "point"), study.access.centre,
                       spec.name_column if spec else "name",
                       source=spec.source if spec else "")


def _population(ctx: Any) -> gpd.GeoDataFrame | None:
    """The population layer, its counts checked (None without one)."""
    spec = ctx.study.layers.population
    if spec is None:
        return None
    population = ctx.vector("population", "point", (spec.count_column,))
    population_counts(population, spec.count_column, where=f"layer 'population' ({spec.source})")
    return population


def _unreached(d: np.ndarray, points: gpd.GeoDataFrame, index: pd.Index) -> list[str]:
    reached = pd.Series(np.isfinite(d), index=points["site_id"].to_numpy()).groupby(level=0).any()
    return [str(s) for s in index if not reached.get(s, False)]


def check_inputs(ctx: Any) -> None:
    """Check what the access stage reads before any stage writes.

    The road network builds, the town centre and the central street are found, the
    population counts are numbers and not every point is off the roads, and every
    parcel can be reached from the centre and from the central street.
    """
    study = ctx.study
    settings = study.access
    walk = nw.ignore_oneway(road_network(ctx))
    roads = study.layers.roads
    where = f"layer 'roads' ({roads.source})"
    centre = _centre(ctx)
    population = _population(ctx)
    if population is not None and len(population):
        spec = study.layers.population
        people = population_counts(population, spec.count_column)
        _off_road(nw.snap_points(walk, population.geometry), people,
                  f"layer 'population' ({spec.source})", settings.max_road_distance)
    street = settings.central_street
    if street:
        names = walk.edges[roads.name_column].dropna().astype(str).unique() \
            if roads.name_column in walk.edges else []
        if street not in names:
            raise LayerError(f"{where}: no road named {street!r} in column {roads.name_column!r} "
                             f"([access] central_street); {_did_you_mean(street, names)}names "
                             f"there: {', '.join(sorted(names)[:20]) or 'none'}")
    _, points = entrance_points(ctx.parcels, walk, settings)
    cut: dict[str, list[str]] = {}
    if centre is not None:
        d = nw.point_distance_matrix(walk, [centre], points.geometry)[0]
        cut[f"the town centre ({settings.centre!r})"] = _unreached(d, points, ctx.parcels.index)
    if street:
        sources = nw.street_nodes(walk, street, column=roads.name_column)
        d = nw.distances_to_points(walk, sources, points.geometry)[0]
        cut[f"the central street ({street!r})"] = _unreached(d, points, ctx.parcels.index)
    cut = {k: v for k, v in cut.items() if v}
    if cut:
        sites = sorted({s for v in cut.values() for s in v})
        raise NetworkError(f"{where}: no road route from {' or '.join(cut)} to parcel(s) "
                           f"{', '.join(sites)}: they lie on unconnected parts of the network "
                           "(line ends farther apart than [access] snap_tolerance = "
                           f"{settings.snap_tolerance:g} m are not joined); join the road lines "
                           "or raise snap_tolerance")


def run_stage(ctx: Any) -> tuple[dict[str, Path], str]:
    """The ``access`` stage: writes the access table, routes, profiles and isochrones."""
    from pipeline._io import write_frame

    study = ctx.study
    settings = study.access
    net = road_network(ctx)
    centre = _centre(ctx)
    pop_spec = study.layers.population
    population = _population(ctx)
    result = access_table(
        ctx.parcels, net, settings, centre=centre, street=settings.central_street,
        dem=ctx.dem, population=population,
        count_column=pop_spec.count_column if pop_spec else "people",
        name_column=study.layers.roads.name_column, options=ctx.options)
    paths = {
        "access": write_frame(ctx.stage_path("access"), result.table),
        "routes": write_frame(ctx.stage_path("routes", ".gpkg"), result.routes),
        "profiles": write_frame(ctx.stage_path("profiles"), result.profiles),
        "isochrones": write_frame(ctx.stage_path("isochrones", ".gpkg"), result.isochrones),
    }
    t = result.table
    summary = f"{len(t)} parcels over {net.n_nodes} nodes / {net.n_edges} edges"
    if "dist_centre_m" in t:
        summary += f"; centre {t['dist_centre_m'].min():,.0f}-{t['dist_centre_m'].max():,.0f} m"
    return paths, summary
