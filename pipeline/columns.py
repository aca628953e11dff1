"""Every column of the sites table: unit, English and Japanese label, meaning.

Names with ``{s}`` stand for each hazard scenario's name, ``{c}`` for a depth
class (``0.5_1`` is 0.5 m <= depth < 1 m) and ``{m}`` for a criterion's metric.
README's "Output columns" table is generated from :data:`COLUMNS` and a test
checks that every column the pipeline writes is documented here.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Column(NamedTuple):
    """Documentation of one output column."""

    unit: str
    label: str
    label_ja: str
    meaning: str


COLUMNS: dict[str, Column] = {
    # identity
    "site_id": Column("", "Site", "候補地", "parcel id (from the parcels layer)"),
    "name": Column("", "Name", "名称", "parcel name"),
    # hazard: ground
    "ground_min": Column("m T.P.", "Lowest ground", "最低地盤高", "lowest DEM value in the parcel"),
    "ground_mean": Column("m T.P.", "Mean ground", "平均地盤高", "area-weighted mean ground"),
    "ground_max": Column("m T.P.", "Highest ground", "最高地盤高", "highest DEM value in the parcel"),
    "ground_p{q}": Column("m T.P.", "Low ground (percentile)", "地盤高（下位）",
                          "the [hazard] low_percentile of the ground"),
    "dem_cells": Column("cells", "DEM cells", "DEMセル数", "DEM cells in the parcel (by coverage)"),
    "slope_mean": Column("degree", "Mean slope", "平均勾配", "mean terrain slope (Horn)"),
    "slope_max": Column("degree", "Max slope", "最大勾配", "steepest terrain slope"),
    "dem_accuracy": Column("m", "DEM accuracy", "DEM精度", "vertical accuracy of the DEM"),
    # hazard: per scenario
    "{s}_depth_max": Column("m", "Max depth", "最大浸水深", "deepest inundation over the parcel"),
    "{s}_depth_mean": Column("m", "Mean depth", "平均浸水深", "area-weighted mean depth"),
    "{s}_depth_wet_area": Column("m2", "Wet area", "浸水面積", "area deeper than wet_threshold"),
    "{s}_depth_wet_share": Column("share", "Wet share", "浸水割合", "share of the parcel that is wet"),
    "{s}_depth_area_{c}": Column("m2", "Area in depth class", "浸水深区分別面積",
                                 "area whose depth falls in the class"),
    "{s}_depth_max_lower": Column("m", "Max depth (rank lower bound)", "最大浸水深（下限）",
                                  "lower bound of the deepest rank (rank polygons only)"),
    "{s}_depth_from_rank": Column("", "Depth from ranks", "ランク由来",
                                  "true when depths are rank upper bounds, not measurements"),
    "{s}_level": Column("m T.P.", "Design water level", "想定水位",
                        "run-up height, or lowest ground + max depth, whichever is higher"),
    "{s}_governs": Column("", "Level from", "水位の根拠", "'runup' or 'depth': which gave the level"),
    "{s}_height": Column("m", "Water above ground", "地盤からの水深",
                         "design level above the lowest ground (0 when clear)"),
    "{s}_margin": Column("m", "Elevation margin", "標高余裕",
                         "lowest ground minus the design water level"),
    "{s}_clear": Column("", "Clear", "安全", "margin > 0: the ground stays dry"),
    "{s}_within_accuracy": Column("", "Within DEM accuracy", "精度内",
                                  "|margin| smaller than the DEM's vertical accuracy: not reliable"),
    "{s}_dry_floor": Column("storey", "Lowest dry floor", "浸水しない最低階",
                            "lowest storey whose floor is above level + freeboard"),
    "{s}_floor_raise_needed": Column("m", "Floor height needed", "必要床高",
                                     "floor height above ground the water asks for (+freeboard)"),
    # envelope
    "site_area": Column("m2", "Site area", "敷地面積", "parcel area"),
    "zone_kind": Column("", "Zone kind", "用途地域区分", "'residential' or 'other' (front-road rule)"),
    "coverage_ratio_effective": Column("share", "Coverage ratio", "建蔽率",
                                       "building coverage ratio with bonuses"),
    "coverage_cap_m2": Column("m2", "Max footprint (coverage)", "建築面積上限",
                              "site area x coverage ratio"),
    "n_fronting_roads": Column("roads", "Fronting roads", "前面道路数", "roads along the parcel"),
    "widest_fronting_road_m": Column("m", "Front road width", "前面道路幅員",
                                     "widest fronting road"),
    "far_effective": Column("share", "Floor area ratio", "容積率",
                            "designated FAR capped by the front-road rule"),
    "far_cap_m2": Column("m2", "Max floor area", "延床面積上限", "site area x effective FAR"),
    "far_governed_by": Column("", "FAR from", "容積率の根拠", "'designated', 'road' or 'no_road'"),
    "net_buildable_m2": Column("m2", "Net buildable area", "建築可能面積",
                               "site area less setbacks and exclusions"),
    "footprint_cap_m2": Column("m2", "Footprint cap", "建築面積上限（実効）",
                               "smaller of coverage cap and net buildable area"),
    "footprint_governed_by": Column("", "Footprint from", "建築面積の根拠",
                                    "'coverage' or 'buildable'"),
    "min_storeys": Column("storeys", "Fewest storeys", "必要最小階数",
                          "fewest storeys that fit the programme under both caps"),
    "min_storeys_parking": Column("storeys", "Storeys for parking", "駐車充足階数",
                                  "fewest storeys at which the parking need fits too"),
    "parking_share_at_min": Column("share", "Parking share", "駐車充足率",
                                   "stalls that fit / need, at the fewest storeys"),
    "required_floor_area": Column("m2", "Required floor area", "必要延床面積", "the programme"),
    "parking_need": Column("stalls", "Parking need", "必要駐車台数", "stalls needed"),
    "evacuation_space_m2": Column("m2", "Evacuation space", "避難スペース",
                                  "people x m2 per person"),
    "pad_elevation_used": Column("m T.P.", "Pad level", "計画地盤高", "level of the levelled pad"),
    "cut_m3": Column("m3", "Cut", "切土量", "earth removed to level the pad"),
    "fill_m3": Column("m3", "Fill", "盛土量", "earth added to level the pad"),
    "net_m3": Column("m3", "Net earthwork", "残土量", "cut minus fill (surplus to haul away)"),
    # access
    "n_entrances": Column("entrances", "Site entrances", "敷地入口数",
                          "distinct places where the parcel meets a road"),
    "connector_m": Column("m", "Connector needed", "接続道路延長",
                          "road to build when the parcel touches none"),
    "dist_centre_m": Column("m", "Distance from centre", "中心部からの距離",
                            "network distance from the town centre"),
    "walk_centre_min": Column("min", "Walk from centre", "中心部から徒歩",
                              "walking time from the town centre"),
    "drive_centre_min": Column("min", "Drive from centre", "中心部から車",
                               "driving time from the town centre"),
    "dist_street_m": Column("m", "Distance from central street", "中央通からの距離",
                            "network distance from the central street"),
    "street_grade_mean_pct": Column("%", "Route grade", "道路勾配",
                                    "mean grade of the route from the central street"),
    "street_grade_max_pct": Column("%", "Steepest grade", "最大勾配",
                                   "steepest 20 m of that route"),
    "visible_share": Column("share", "Visible from centre", "中心部からの視認性",
                            "share of the site seen from the town centre"),
    "pop_mean_dist_m": Column("m", "Mean evacuation distance", "平均避難距離",
                              "population-weighted mean network distance"),
    "pop_max_dist_m": Column("m", "Longest evacuation distance", "最大避難距離",
                             "farthest evacuee"),
    "pop_share_within_walk": Column("share", "Evacuees within walk", "徒歩圏内の避難者",
                                    "share reaching the site within [access] walk_minutes"),
    "pop_unreached": Column("people", "Unreached evacuees", "到達不能の避難者",
                            "people with no road route to the site"),
    # score
    "points_{m}": Column("points", "Points", "点数", "0-3 points of the criterion"),
    "mark_{m}": Column("", "Mark", "評価", "◎ ○ △ × of the criterion"),
    "score": Column("points", "Score", "総合点", "weighted mean points"),
    "vetoed": Column("", "Vetoed", "不可", "a veto criterion is ×"),
    "overall": Column("", "Overall", "総合評価", "overall mark ◎ ○ △ ×"),
    "rank": Column("", "Rank", "順位", "1 = best; vetoed sites last"),
    "first_share": Column("share", "First under weight changes", "1位となる割合",
                          "share of weight draws in which the site ranks first"),
}


def _pattern(name: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z]\})", name)
    return re.compile("^" + "".join(".+" if p.startswith("{") else re.escape(p)
                                    for p in parts) + "$")


_PATTERNS = [(_pattern(k), v) for k, v in COLUMNS.items()]


def describe(column: str) -> Column | None:
    """The documentation of a concrete column name, or None.

    Examples
    --------
    >>> describe("tsunami_margin").unit
    'm'
    >>> describe("flood_max_depth_area_0.5_1").label
    'Area in depth class'
    >>> describe("nonsense") is None
    True
    """
    if column in COLUMNS:
        return COLUMNS[column]
    for pattern, doc in _PATTERNS:
        if pattern.match(column):
            return doc
    return None


def label(column: str, lang: str = "en") -> str:
    """A display label for a column in ``lang`` ('en' or 'ja'); the name itself when unknown.

    Examples
    --------
    >>> label("cut_m3", "ja")
    '切土量'
    """
    doc = describe(column)
    if doc is None:
        return column
    return doc.label_ja if lang == "ja" else doc.label
