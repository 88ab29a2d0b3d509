"""Real data for the optimiser's tests: communities of the Wuxi demo city.

The demo city is built once per test process (a small one: few incidents), and a subset —
one or more communities with their township, district, grids, buildings, police units
and what lies in them — is cut from it, in EPSG:4490, ready for ``load_city``.
"""

from __future__ import annotations

import functools

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry

from gridgov.gis import wuxi
from gridgov.gis.demo.city import DemoInputs, DemoOptions, build_city

# A community of 5 grids and 27 blocks (2,053 households) and one of 17 grids (6,928).
SMALL = "320206001027"
LARGE = "320213021006"


@functools.cache
def demo_city() -> dict[str, gpd.GeoDataFrame]:
    inputs = DemoInputs(wuxi.load_districts(), wuxi.load_townships(), wuxi.load_communities())
    return build_city(inputs, DemoOptions(incidents=2000, rentals=200, hazards=40))


def subset(codes: tuple[str, ...]) -> dict[str, gpd.GeoDataFrame]:
    """The layers of ``codes``' communities only (units: those reaching them)."""
    city = demo_city()
    communities = city["community"][city["community"]["code"].isin(codes)]
    townships = set(communities["township_code"])
    outline = shapely.union_all(communities.geometry.to_numpy())
    out: dict[str, gpd.GeoDataFrame] = {}
    for layer in ("police_unit", "urban_unit", "emergency_unit"):
        frame = city[layer]
        near = frame[frame.intersects(outline) & ~frame.touches(outline)]
        if layer == "police_unit":
            parents = set(near["parent_code"].dropna())
            near = frame[frame.index.isin(near.index) | frame["code"].isin(parents)]
        out[layer] = near
    # The units' own townships and districts come too (their codes are foreign keys).
    townships |= {c for layer in list(out) for c in out[layer]["township_code"]}
    districts = {c[:6] for c in townships}
    for layer, frame in city.items():
        if layer in out:
            continue
        if layer == "district":
            out[layer] = frame[frame["code"].isin(districts)]
        elif layer == "township":
            out[layer] = frame[frame["code"].isin(townships)]
        elif layer == "community":
            out[layer] = communities
        elif "community_code" in frame.columns:
            out[layer] = frame[frame["community_code"].isin(codes)]
        else:
            out[layer] = frame[frame.within(outline)]
    return out


def community_inputs(
    code: str,
) -> tuple[BaseGeometry, gpd.GeoDataFrame, dict[str, BaseGeometry], gpd.GeoDataFrame]:
    """Outline, buildings, community policing areas and today's grids of one community."""
    layers = subset((code,))
    outline = layers["community"].geometry.iloc[0]
    if outline.geom_type == "MultiPolygon" and len(outline.geoms) == 1:
        outline = outline.geoms[0]
    police = layers["police_unit"]
    areas = police[police["level"] == "policing_area"]
    units = dict(zip(areas["code"], areas.geometry, strict=True))
    return outline, layers["building"], units, layers["grid"]
