"""About 200,000 incidents over two years, clustered in space and varying in time.

Space: most incidents happen where people live (at buildings, by households), a third in
hotspots (markets, stations, night spots), the rest anywhere. Time: hour-of-day, weekday
and season profiles per category. Lifecycle: each incident runs through the 数字化城管
stages with realistic delays; a few stall and become overdue.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgov.gis.demo.density import residential_density
from gridgov.gis.demo.pyramid import PROJECTED
from gridgov.gis.demo.sampling import points_in
from gridgov.gis.lifecycle import SLA_HOURS, STAGE_COLUMN, STAGES

PERIOD_START = pd.Timestamp("2024-11-01", tz="Asia/Shanghai")
PERIOD_DAYS = 730
AS_OF = PERIOD_START + pd.Timedelta(days=PERIOD_DAYS)  # the demo's "now" for lifecycle states

CATEGORIES = [
    "dispute",
    "safety_hazard",
    "public_order",
    "city_management",
    "environment",
    "livelihood",
    "other",
]
CATEGORY_SHARES = [0.18, 0.16, 0.14, 0.30, 0.08, 0.10, 0.04]
SOURCES = ["grid_worker", "hotline", "police", "public", "video", "department"]
SOURCE_SHARES = [0.40, 0.25, 0.12, 0.12, 0.07, 0.04]

BASE_HOURS = np.array(
    [
        0.3,
        0.2,
        0.15,
        0.1,
        0.1,
        0.2,
        0.5,
        1.0,
        1.6,
        2.0,
        2.0,
        1.8,
        1.4,
        1.4,
        1.6,
        1.7,
        1.6,
        1.5,
        1.5,
        1.7,
        1.8,
        1.5,
        1.0,
        0.6,
    ]
)
NIGHT = np.array(
    [1.8, 1.8, 1.5, 1.2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.2, 1.5, 1.8, 2.0, 2.0]
)
DAYTIME = np.array([0.5] * 7 + [1.4] * 11 + [0.8] * 6)
EVENING = np.array([1.0] * 18 + [1.6] * 4 + [1.0] * 2)


def hour_profile(category: str) -> np.ndarray:
    shape = {"public_order": NIGHT, "city_management": DAYTIME, "dispute": EVENING}.get(
        category, np.ones(24)
    )
    weights = BASE_HOURS * shape
    result: np.ndarray = weights / weights.sum()
    return result


def day_weights(category: str, days: pd.DatetimeIndex) -> np.ndarray:
    month, weekday = days.month.to_numpy(), days.day_of_week.to_numpy()
    weight = np.ones(len(days))
    summer, winter = np.isin(month, [6, 7, 8, 9]), np.isin(month, [12, 1, 2])
    if category in {"city_management", "environment"}:
        weight[summer] *= 1.35
    if category == "safety_hazard":
        weight[winter] *= 1.35
    if category == "dispute":
        weight[np.isin(month, [1, 2])] *= 1.3
    if category in {"dispute", "public_order"}:
        weight[weekday >= 5] *= 1.25
    if category == "city_management":
        weight[weekday < 5] *= 1.1
    weight *= np.linspace(0.9, 1.1, len(days))  # reporting grows as the system is adopted
    result: np.ndarray = weight / weight.sum()
    return result


@dataclass(frozen=True)
class Hotspot:
    x: float
    y: float
    sigma: float
    bias: str  # the category this hotspot over-produces


def build_hotspots(
    communities: gpd.GeoDataFrame, rng: np.random.Generator, count: int = 60
) -> list[Hotspot]:
    city = shapely.union_all(communities.geometry.to_numpy())
    xy = points_in(city, count, rng, residential_density)
    biases = rng.choice(["city_management", "public_order", "dispute", "safety_hazard"], size=count)
    return [
        Hotspot(float(x), float(y), float(rng.uniform(100, 400)), str(b))
        for (x, y), b in zip(xy, biases, strict=True)
    ]


def _locations(
    n: int,
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    hotspots: list[Hotspot],
    categories: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    kind = rng.choice(3, size=n, p=[0.55, 0.35, 0.10])
    xy = np.empty((n, 2))
    # At buildings, by households, a little scattered around them.
    at = np.flatnonzero(kind == 0)
    households = buildings["households"].to_numpy(dtype=float)
    chosen = rng.choice(len(buildings), size=len(at), p=households / households.sum())
    xy[at, 0] = buildings.geometry.x.to_numpy()[chosen] + rng.normal(0, 25, len(at))
    xy[at, 1] = buildings.geometry.y.to_numpy()[chosen] + rng.normal(0, 25, len(at))
    # In hotspots; a hotspot draws more of its own category.
    at = np.flatnonzero(kind == 1)
    bias = np.array([h.bias for h in hotspots])
    for i in at:
        matching = np.flatnonzero(bias == categories[i])
        pool = matching if len(matching) and rng.uniform() < 0.6 else np.arange(len(hotspots))
        h = hotspots[int(rng.choice(pool))]
        xy[i] = (h.x + rng.normal(0, h.sigma), h.y + rng.normal(0, h.sigma))
    # Anywhere: a random community, uniformly inside it.
    at = np.flatnonzero(kind == 2)
    geoms = communities.geometry.to_numpy()
    picks = rng.integers(0, len(geoms), len(at))
    for index in np.unique(picks):
        slots = at[picks == index]
        xy[slots] = points_in(geoms[index], len(slots), rng)
    return xy


def _lifecycle(
    categories: np.ndarray, reported: pd.DatetimeIndex, rng: np.random.Generator
) -> dict[str, object]:
    """Status at :data:`AS_OF`, the deadline and the time each stage was entered (UTC)."""
    n = len(categories)
    reported = reported.tz_convert("UTC").tz_localize(None)
    hours = pd.to_timedelta
    sla = np.array([SLA_HOURS[c] for c in categories], dtype=float)
    registered = reported + hours(rng.uniform(0.5, 4, n), unit="h")
    dispatched = registered + hours(rng.uniform(0.2, 2, n), unit="h")
    deadline = dispatched + hours(sla, unit="h")
    handling = dispatched + hours(sla * rng.uniform(0.05, 0.2, n), unit="h")
    handled = dispatched + hours(sla * rng.lognormal(np.log(0.6), 0.5, n), unit="h")
    # Handled after handling began (drawn apart, it came first for 535 of 200,000 incidents).
    handled = pd.DatetimeIndex(
        np.maximum(
            handled.to_numpy(), (handling + hours(rng.uniform(0.2, 2, n), unit="h")).to_numpy()
        )
    )
    closed = handled + hours(rng.uniform(2, 24, n), unit="h")
    evaluated = closed + hours(rng.uniform(24, 120, n), unit="h")
    times = np.stack(
        [
            t.to_numpy()
            for t in (reported, registered, dispatched, handling, handled, closed, evaluated)
        ],
        axis=1,
    )
    as_of = AS_OF.tz_convert("UTC").tz_localize(None).to_datetime64()
    reached = (times <= as_of).sum(axis=1) - 1
    # Some cases stall: never registered, or stuck in a stage until long after the deadline.
    stall = rng.uniform(size=n)
    limit = np.full(n, len(STAGES) - 1)
    limit[stall < 0.01] = 0
    stuck = (stall >= 0.01) & (stall < 0.035)
    limit[stuck] = rng.integers(2, 5, stuck.sum())
    # Not every closed case gets a resident's evaluation.
    limit[(limit == 6) & (rng.uniform(size=n) < 0.3)] = 5
    stage = np.minimum(reached, limit)
    columns: dict[str, object] = {"status": np.array(STAGES)[stage]}

    def when(at_least: int, values: pd.DatetimeIndex) -> pd.DatetimeIndex:
        kept = pd.DatetimeIndex(
            np.where(stage >= at_least, values.to_numpy(), np.datetime64("NaT"))
        )
        return kept.floor("s").tz_localize("UTC")

    columns["deadline_at"] = when(2, deadline)
    for index, values in enumerate(
        (registered, dispatched, handling, handled, closed, evaluated), 1
    ):
        columns[STAGE_COLUMN[STAGES[index]]] = when(index, values)
    return columns


def build_incidents(
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    city: shapely.Geometry,
    rng: np.random.Generator,
    count: int = 200_000,
) -> gpd.GeoDataFrame:
    categories = rng.choice(CATEGORIES, size=count, p=CATEGORY_SHARES)
    days = pd.date_range(PERIOD_START, periods=PERIOD_DAYS, freq="D")
    reported = np.empty(count, dtype="datetime64[ns]")
    for category in CATEGORIES:
        idx = np.flatnonzero(categories == category)
        day = rng.choice(PERIOD_DAYS, size=len(idx), p=day_weights(category, days))
        hour = rng.choice(24, size=len(idx), p=hour_profile(category))
        seconds = rng.integers(0, 3600, len(idx))
        stamps = days[day] + pd.to_timedelta(hour, unit="h") + pd.to_timedelta(seconds, unit="s")
        reported[idx] = stamps.tz_convert("UTC").tz_localize(None).to_numpy()
    hotspots = build_hotspots(communities, rng)
    xy = _locations(count, buildings, communities, hotspots, categories, rng)
    # Anything scattered outside the city (a river bank, the border) is pulled back to a
    # building so that every incident lies inside Wuxi.
    shapely.prepare(city)
    outside = np.flatnonzero(~shapely.contains_xy(city, xy[:, 0], xy[:, 1]))
    if len(outside):
        pick = rng.choice(len(buildings), size=len(outside))
        xy[outside, 0] = buildings.geometry.x.to_numpy()[pick]
        xy[outside, 1] = buildings.geometry.y.to_numpy()[pick]
    reported_at = pd.DatetimeIndex(reported).tz_localize("UTC")
    lifecycle = _lifecycle(categories, reported_at, rng)
    order = np.argsort(reported_at.to_numpy(), kind="stable")
    frame = gpd.GeoDataFrame(
        {
            "category": categories[order],
            "source": rng.choice(SOURCES, size=count, p=SOURCE_SHARES),
            "reported_at": reported_at[order],
            **{name: values[order] for name, values in lifecycle.items()},  # type: ignore[index]
        },
        geometry=gpd.points_from_xy(xy[order, 0], xy[order, 1]),
        crs=PROJECTED,
    )
    frame["external_id"] = [f"DEMO-{i + 1:07d}" for i in range(count)]
    frame["description"] = "演示事件（合成）"
    return frame
