"""Build the whole demo city, layer by layer, as GeoDataFrames ready for the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gridgov.gis.demo import people
from gridgov.gis.demo.incidents import build_incidents
from gridgov.gis.demo.pyramid import (
    PROJECTED,
    build_buildings,
    build_communities,
    build_grids,
    build_townships,
    locate,
)
from gridgov.gis.demo.sites import build_hazards, build_key_sites, build_rentals, build_shelters
from gridgov.gis.demo.topology import share_vertices
from gridgov.gis.demo.units import Cells, cells_from, cut_some, dissolve, group_within, move_some

STORAGE = "EPSG:4490"
PRECISION_M = 0.01
# Vertices closer than this to an edge are put on it (see gridgov.gis.demo.topology); cut
# points sit within nanometres of the edges they split, unrelated vertices much farther.
SHARED_VERTEX_M = 1e-4
NESTED = ("district", "township", "community", "grid")
DISSOLVED = frozenset({"police_unit", "urban_unit", "emergency_unit"})
GRIDS_VALID_FROM = pd.Timestamp("2024-01-01", tz="Asia/Shanghai")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoInputs:
    """The real data the demo starts from (see ``gridgov.gis.wuxi``)."""

    districts: gpd.GeoDataFrame  # code, name, geometry (EPSG:4490)
    townships: pd.DataFrame  # code, name, district_code
    communities: pd.DataFrame  # code, name, township_code, kind


@dataclass(frozen=True)
class DemoOptions:
    seed: int = 20260101
    grid_target_households: int = 400
    incidents: int = 200_000
    rentals: int = 30_000
    hazards: int = 800


def multipolygon(geom: BaseGeometry) -> BaseGeometry:
    """Promote a Polygon to a one-part MultiPolygon (a change of type, not a repair)."""
    return MultiPolygon([geom]) if isinstance(geom, Polygon) else geom


def _attach_codes(frame: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Admin codes of every feature from the grid holding its representative point."""
    anchors = gpd.GeoSeries(shapely.point_on_surface(frame.geometry.to_numpy()), crs=PROJECTED)
    index = locate(anchors, grids)
    for column in ("district_code", "township_code", "community_code"):
        frame[column] = grids[column].to_numpy()[index]
    frame["grid_code"] = grids["code"].to_numpy()[index]
    return frame


def _police(
    communities: gpd.GeoDataFrame, townships: gpd.GeoDataFrame, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    township_index = {code: i for i, code in enumerate(townships["code"])}
    owner = [township_index[c] for c in communities["township_code"]]
    cells = cells_from(communities, owner, list(communities["district_code"]))
    move_some(cells, 0.15, rng)
    cut_some(cells, 0.10, rng)
    stations = dissolve(cells, cells.owner)
    # Policing areas group a station's cells; their cuts stay inside the station.
    area_cells = Cells(
        list(cells.geoms),
        group_within(cells, 3, rng),
        [str(o) for o in cells.owner],
        list(cells.origin),
    )
    cut_some(area_cells, 0.12, rng)
    areas = dissolve(area_cells, area_cells.owner)
    rows = []
    names = dict(zip(townships["code"], townships["name"], strict=True))
    codes = list(townships["code"])
    # A station keeps the township it started from, whatever it gained or lost since.
    station_township = [str(codes[int(unit)]) for unit in stations["unit"]]
    for station, township in zip(stations.itertuples(), station_township, strict=True):
        code = f"PCS{township}"
        rows.append(
            {
                "code": code,
                "name": f"{names[township]}派出所（合成）",
                "level": "station",
                "parent_code": None,
                "township_code": township,
                "district_code": township[:6],
                "geometry": station.geometry,
            }
        )
    area_station = _containing(areas, stations)
    counters: dict[int, int] = {}
    for area, station_row in zip(areas.itertuples(), area_station, strict=True):
        township = station_township[int(station_row)]
        counters[station_row] = counters.get(station_row, 0) + 1
        rows.append(
            {
                "code": f"PCS{township}-{counters[station_row]:02d}",
                "name": f"{names[township]}第{counters[station_row]}社区警务区（合成）",
                "level": "policing_area",
                "parent_code": f"PCS{township}",
                "township_code": township,
                "district_code": township[:6],
                "geometry": area.geometry,
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=PROJECTED)


def _containing(inner: gpd.GeoDataFrame, outer: gpd.GeoDataFrame) -> np.ndarray:
    """For each inner unit, the outer unit that holds most of it."""
    anchors = gpd.GeoSeries(shapely.point_on_surface(inner.geometry.to_numpy()), crs=PROJECTED)
    return locate(anchors, outer)


def _department_units(
    communities: gpd.GeoDataFrame,
    townships: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    rng: np.random.Generator,
    *,
    prefix: str,
    per_unit: int,
    move: float,
    cut: float,
    noun: str,
    department: str,
) -> gpd.GeoDataFrame:
    township_index = {code: i for i, code in enumerate(townships["code"])}
    owner = [township_index[c] for c in communities["township_code"]]
    cells = cells_from(communities, owner, list(communities["township_code"]))
    grouped = Cells(
        list(cells.geoms),
        group_within(cells, per_unit, rng),
        list(communities["district_code"]),
        list(cells.origin),
    )
    move_some(grouped, move, rng)
    cut_some(grouped, cut, rng)
    units = dissolve(grouped, grouped.owner)
    names = dict(zip(townships["code"], townships["name"], strict=True))
    district_names = dict(zip(districts["code"], districts["name"], strict=True))
    counters: dict[str, int] = {}
    rows = []
    for unit in units.itertuples():
        township = str(unit.origin)[:9]
        counters[township] = counters.get(township, 0) + 1
        n = counters[township]
        rows.append(
            {
                "code": f"{prefix}{township}-{n:02d}",
                "name": f"{names[township]}{noun}{n}（合成）",
                "department": f"{district_names[township[:6]]}{department}",
                "township_code": township,
                "district_code": township[:6],
                "geometry": unit.geometry,
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=PROJECTED)


def build_city(
    inputs: DemoInputs, options: DemoOptions, progress: Progress = lambda _: None
) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of the demo city, in EPSG:4490, keyed by layer id, parents first."""
    rng = np.random.default_rng(options.seed)
    districts = inputs.districts.to_crs(PROJECTED)
    progress("township")
    townships = build_townships(districts, inputs.townships, rng)
    progress("community")
    communities = build_communities(townships, inputs.communities, rng)
    progress("building")
    buildings = build_buildings(communities, rng)
    progress("grid")
    grids = build_grids(communities, buildings, options.grid_target_households)
    grids["worker_name"] = [people.name(rng) for _ in range(len(grids))]
    grids["valid_from"] = GRIDS_VALID_FROM
    progress("police_unit")
    police = _police(communities, townships, rng)
    progress("urban_unit")
    urban = _department_units(
        communities,
        townships,
        districts,
        rng,
        prefix="CG",
        per_unit=4,
        move=0.10,
        cut=0.08,
        noun="城管责任区",
        department="城市管理局",
    )
    progress("emergency_unit")
    emergency = _department_units(
        communities,
        townships,
        districts,
        rng,
        prefix="YJ",
        per_unit=6,
        move=0.10,
        cut=0.05,
        noun="应急网格",
        department="应急管理局",
    )
    progress("key_site")
    key_sites = _attach_codes(build_key_sites(communities, rng), grids)
    progress("hazard_zone")
    hazards = _attach_codes(build_hazards(communities, rng, options.hazards), grids)
    progress("rental_housing")
    rentals = _attach_codes(build_rentals(communities, rng, options.rentals), grids)
    progress("shelter")
    shelters = _attach_codes(build_shelters(communities, rng), grids)
    progress("incident")
    city = shapely.union_all(districts.geometry.to_numpy())
    incidents = _attach_codes(
        build_incidents(buildings, communities, city, rng, options.incidents), grids
    )
    layers = {
        "district": districts.assign(synthetic=False),
        "township": townships,
        "community": communities,
        "grid": grids,
        "building": buildings,
        "police_unit": police,
        "urban_unit": urban,
        "emergency_unit": emergency,
        "hazard_zone": hazards,
        "rental_housing": rentals,
        "key_site": key_sites,
        "shelter": shelters,
        "incident": incidents,
    }
    shared = share_vertices([layers[n].geometry.to_numpy() for n in NESTED], SHARED_VERTEX_M)
    for layer, geoms in zip(NESTED, shared, strict=True):
        layers[layer]["geometry"] = geoms
    result = {}
    for layer, frame in layers.items():
        if layer in DISSOLVED:
            # Snap to a 1 cm grid first: unions of cut cells can leave vertices a hair
            # apart, which the datum change could turn into self-intersections.
            snapped = shapely.set_precision(frame.geometry.to_numpy(), PRECISION_M)
            frame["geometry"] = share_vertices([snapped], SHARED_VERTEX_M)[0]
        frame = frame.to_crs(STORAGE)
        invalid = ~frame.geometry.is_valid
        if invalid.any():
            raise ValueError(f"demo layer {layer}: {int(invalid.sum())} invalid geometries")
        if layer in {
            "district",
            "township",
            "community",
            "grid",
            "police_unit",
            "urban_unit",
            "emergency_unit",
        }:
            frame["geometry"] = [multipolygon(g) for g in frame.geometry]
        if "synthetic" not in frame:
            frame["synthetic"] = True
        result[layer] = frame
    return result
