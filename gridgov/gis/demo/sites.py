"""Key sites, hazard zones, rental housing and shelters, placed where they plausibly are."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Point, box
from shapely.geometry.base import BaseGeometry

from gridgov.gis.coords import to_projected
from gridgov.gis.demo import people
from gridgov.gis.demo.density import (
    INDUSTRIAL_CENTRES,
    UNIVERSITY_CENTRES,
    gaussian_surface,
    residential_density,
)
from gridgov.gis.demo.pyramid import PROJECTED
from gridgov.gis.demo.sampling import points_in

# Article 33 categories and how many of each a city of Wuxi's size plausibly has.
KEY_SITE_COUNTS = {
    "airport": 1,
    "railway_station": 5,
    "metro_station": 70,
    "bus_station": 20,
    "dock": 12,
    "school": 700,
    "kindergarten": 600,
    "financial": 450,
    "hospital": 110,
    "theatre": 40,
    "heritage": 60,
}
KEY_SITE_NAMES = {
    "airport": "机场",
    "railway_station": "火车站",
    "metro_station": "地铁站",
    "bus_station": "汽车站",
    "dock": "码头",
    "school": "学校",
    "kindergarten": "幼儿园",
    "financial": "银行网点",
    "hospital": "医院",
    "theatre": "影剧院",
    "heritage": "文物保护单位",
}
# Transport hubs at (approximately) their real places, lon/lat.
FIXED_SITES = [
    ("airport", "苏南硕放国际机场（示意）", 120.435, 31.494, 1200.0),
    ("railway_station", "无锡站（示意）", 120.303, 31.589, 250.0),
    ("railway_station", "无锡东站（示意）", 120.432, 31.598, 250.0),
    ("railway_station", "惠山站（示意）", 120.281, 31.660, 150.0),
    ("railway_station", "宜兴站（示意）", 119.795, 31.339, 150.0),
    ("railway_station", "江阴站（示意）", 120.253, 31.862, 150.0),
]
RISK_SHARES = {"major": 0.04, "high": 0.14, "moderate": 0.40, "low": 0.42}
HAZARD_CLASSES = [
    "hazardous_chemicals",
    "gas",
    "fire",
    "flood",
    "geological",
    "construction",
    "traffic",
    "other",
]
HAZARD_CLASS_SHARES = [0.25, 0.2, 0.2, 0.08, 0.04, 0.12, 0.06, 0.05]


def industrial_density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result: np.ndarray = gaussian_surface(x, y, INDUSTRIAL_CENTRES, 0.01)
    return result


def rental_density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result: np.ndarray = (
        residential_density(x, y)
        + 0.8 * gaussian_surface(x, y, INDUSTRIAL_CENTRES)
        + 0.8 * gaussian_surface(x, y, UNIVERSITY_CENTRES)
    )
    return result


@dataclass(frozen=True)
class Placement:
    """Points drawn across the city following a density, with the community of each."""

    xy: np.ndarray
    community: np.ndarray  # row index into the communities frame


def place(
    communities: gpd.GeoDataFrame, count: int, rng: np.random.Generator, density: object
) -> Placement:
    """``count`` points across the city: communities chosen by their density mass."""
    geoms = communities.geometry.to_numpy()
    anchors = shapely.point_on_surface(geoms)
    weight = np.asarray(density(shapely.get_x(anchors), shapely.get_y(anchors))) * np.array(  # type: ignore[operator]
        [g.area for g in geoms]
    )
    chosen = rng.choice(len(geoms), size=count, p=weight / weight.sum())
    xy = np.empty((count, 2))
    for index in np.unique(chosen):
        slots = np.flatnonzero(chosen == index)
        xy[slots] = points_in(geoms[index], len(slots), rng, density)  # type: ignore[arg-type]
    return Placement(xy, chosen)


def _footprint(x: float, y: float, half: float, rng: np.random.Generator) -> BaseGeometry:
    """A small rectangle, randomly rotated, standing for a site's grounds."""
    shape = box(
        x - half, y - half * rng.uniform(0.4, 1.0), x + half, y + half * rng.uniform(0.4, 1.0)
    )
    rotated: BaseGeometry = shapely.affinity.rotate(shape, float(rng.uniform(0, 90)), origin=(x, y))
    return rotated


def _site_shape(
    x: float,
    y: float,
    area: BaseGeometry,
    grounds: bool,
    half_size: tuple[float, float],
    rng: np.random.Generator,
) -> BaseGeometry:
    """A point, or (``grounds``) a footprint of random size clipped to its community."""
    if not grounds:
        return Point(x, y)
    return _clip(_footprint(x, y, rng.uniform(*half_size), rng), area)


def _clip(shape: BaseGeometry, community_geom: BaseGeometry) -> BaseGeometry:
    clipped: BaseGeometry = shape.intersection(community_geom)
    if isinstance(clipped, MultiPolygon):
        clipped = max(clipped.geoms, key=lambda g: g.area)
    if clipped.geom_type != "Polygon" or clipped.is_empty:
        return shapely.point_on_surface(community_geom)
    return clipped


def build_key_sites(communities: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    rows = []
    geoms = communities.geometry.to_numpy()
    fixed_x, fixed_y = to_projected(
        np.array([s[2] for s in FIXED_SITES]), np.array([s[3] for s in FIXED_SITES])
    )
    tree = shapely.STRtree(geoms)
    for (category, name, _, _, half), x, y in zip(FIXED_SITES, fixed_x, fixed_y, strict=True):
        hits = tree.query(Point(x, y), predicate="intersects")
        if len(hits) == 0:
            continue
        index = int(hits.min())
        rows.append(
            {
                "category": category,
                "name": name,
                "community": index,
                "geometry": _clip(_footprint(x, y, half, rng), geoms[index]),
            }
        )
    fixed_counts = pd.Series([s[0] for s in FIXED_SITES]).value_counts()
    for category, total in KEY_SITE_COUNTS.items():
        count = total - int(fixed_counts.get(category, 0))
        if count <= 0:
            continue
        placed = place(communities, count, rng, residential_density)
        for n, ((x, y), index) in enumerate(zip(placed.xy, placed.community, strict=True), start=1):
            community = communities.iloc[int(index)]
            big = category in {"school", "hospital", "heritage"} and rng.uniform() < 0.5
            geometry = _site_shape(x, y, community.geometry, big, (60, 150), rng)
            rows.append(
                {
                    "category": category,
                    "name": f"{community['name']}{KEY_SITE_NAMES[category]}{n}（合成）",
                    "community": int(index),
                    "geometry": geometry,
                }
            )
    return _with_codes(rows, communities)


def build_hazards(
    communities: gpd.GeoDataFrame, rng: np.random.Generator, count: int = 800
) -> gpd.GeoDataFrame:
    placed = place(communities, count, rng, industrial_density)
    levels = rng.choice(list(RISK_SHARES), size=count, p=list(RISK_SHARES.values()))
    classes = rng.choice(HAZARD_CLASSES, size=count, p=HAZARD_CLASS_SHARES)
    assessed = pd.Timestamp("2024-06-01") + pd.to_timedelta(rng.integers(0, 860, count), unit="D")
    rows = []
    for n in range(count):
        x, y = placed.xy[n]
        index = int(placed.community[n])
        community = communities.iloc[index]
        polygon = rng.uniform() < 0.4
        geometry = _site_shape(x, y, community.geometry, polygon, (40, 200), rng)
        rows.append(
            {
                "name": f"{community['name']}危险源{n + 1}（合成）",
                "hazard_class": classes[n],
                "risk_level": levels[n],
                "assessed_at": assessed[n].date(),
                "next_assessment_at": (assessed[n] + pd.DateOffset(years=1)).date(),
                "published": bool(levels[n] in {"major", "high"} or rng.uniform() < 0.3),
                "responsible_unit": f"{community['name']}安全生产责任单位",
                "community": index,
                "geometry": geometry,
            }
        )
    return _with_codes(rows, communities)


def build_rentals(
    communities: gpd.GeoDataFrame, rng: np.random.Generator, count: int = 30_000
) -> gpd.GeoDataFrame:
    placed = place(communities, count, rng, rental_density)
    x, y = placed.xy[:, 0], placed.xy[:, 1]
    hot = gaussian_surface(x, y, INDUSTRIAL_CENTRES) + gaussian_surface(x, y, UNIVERSITY_CENTRES)
    group = rng.uniform(size=count) < (0.04 + 0.25 * np.clip(hot, 0, 1))
    rooms = np.where(group, rng.integers(6, 25, count), rng.integers(1, 5, count))
    tenants = np.maximum(1, np.round(rooms * rng.uniform(1.0, 2.2, count))).astype(int)
    inspected = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 660, count), unit="D")
    findings = np.where(
        group & (rng.uniform(size=count) < 0.5),
        rng.choice(["消防通道堵塞", "电动车违规充电", "隔断违规", "人员登记不全"], size=count),
        "无",
    )
    rows = []
    for n in range(count):
        community = communities.iloc[int(placed.community[n])]
        rows.append(
            {
                "address": f"{community['name']}出租屋{n + 1}号（合成）",
                "is_group_rental": bool(group[n]),
                "rooms": int(rooms[n]),
                "tenants": int(tenants[n]),
                "last_inspected_at": inspected[n].date(),
                "findings": str(findings[n]),
                "landlord_name": people.name(rng),
                "landlord_id_number": people.id_number(rng),
                "landlord_phone": people.mobile(rng),
                "community": int(placed.community[n]),
                "geometry": Point(x[n], y[n]),
            }
        )
    return _with_codes(rows, communities)


def build_shelters(
    communities: gpd.GeoDataFrame, rng: np.random.Generator, count: int = 180
) -> gpd.GeoDataFrame:
    placed = place(communities, count, rng, residential_density)
    rows = []
    for n in range(count):
        x, y = placed.xy[n]
        index = int(placed.community[n])
        community = communities.iloc[index]
        geometry = _site_shape(x, y, community.geometry, True, (80, 250), rng)
        area = geometry.area if geometry.geom_type == "Polygon" else 5000.0
        rows.append(
            {
                "name": f"{community['name']}应急避难场所（合成）",
                "capacity": int(area / 2.0),
                "area_m2": round(float(area), 1),
                "community": index,
                "geometry": geometry,
            }
        )
    return _with_codes(rows, communities)


def _with_codes(rows: list[dict[str, object]], communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=PROJECTED)
    index = frame.pop("community").to_numpy(dtype=int)
    for column in ("district_code", "township_code"):
        frame[column] = communities[column].to_numpy()[index]
    frame["community_code"] = communities["code"].to_numpy()[index]
    return frame
