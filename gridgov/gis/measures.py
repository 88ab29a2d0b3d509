"""Measures of a grid, existing or proposed, and of a set of grids (条例第六十二条：优化网格划分).

Pure functions: the counts come in from :mod:`gridgov.layers.measures`, the geometry as
shapely in CGCS2000 lon/lat (EPSG:4490); areas and lengths are taken in metres in
CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549), as everywhere in gridgov.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gridgov.gis.coords import to_projected

RISK_LEVELS = ("major", "high", "moderate", "low")  # 重大 / 较大 / 一般 / 低
DAYS_PER_YEAR = 365.25


# Edges are straight in lon/lat (that is what PostGIS stores); projected, they bend. Edges
# are cut into pieces this long (degrees, about 20 m) before projecting, so that a thin
# sliver between collinear lon/lat points keeps its true, near-zero area.
DENSIFY_DEGREES = 0.0002


def to_metric(geom: BaseGeometry) -> BaseGeometry:
    """The geometry in EPSG:4549 metres (from CGCS2000 lon/lat), edges densified first."""

    def project(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = to_projected(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    if geom.is_empty:
        return geom
    result: BaseGeometry = shapely.transform(shapely.segmentize(geom, DENSIFY_DEGREES), project)
    return result


def area_m2(geom: BaseGeometry) -> float:
    return float(to_metric(geom).area) if not geom.is_empty else 0.0


def polsby_popper(metric: BaseGeometry) -> float:
    """Compactness 4πA/P² (1 for a disc, near 0 for a thin strip); holes count as boundary."""
    perimeter = metric.length
    if metric.is_empty or perimeter <= 0:
        return 0.0
    return float(4.0 * math.pi * metric.area / perimeter**2)


def polygon_parts(geom: BaseGeometry) -> list[Polygon]:
    """The polygons of a (multi)polygon or collection; lines and points are left out."""
    if isinstance(geom, Polygon):
        return [] if geom.is_empty else [geom]
    if isinstance(geom, MultiPolygon):
        return [p for p in geom.geoms if not p.is_empty]
    return [p for g in getattr(geom, "geoms", []) for p in polygon_parts(g)]


def parts_count(geom: BaseGeometry) -> int:
    """Connected pieces: touching polygons (sharing an edge or a vertex) count as one."""
    parts = polygon_parts(geom)
    if len(parts) <= 1:
        return len(parts)
    merged = shapely.union_all(parts)
    return len(polygon_parts(merged))


@dataclass(frozen=True)
class WorkloadWeights:
    """How much each thing a grid holds weighs in its workload index (工作量指数).

    The index is in "household equivalents": with the defaults, one household weighs 1,
    an incident a year 0.5, a group rental as much as 5 households, a major hazard 30.
    """

    households: float = 1.0
    population: float = 0.0
    incidents_per_year: float = 0.5
    rentals: float = 0.5
    group_rentals: float = 5.0
    key_sites: float = 10.0
    hazards: Mapping[str, float] = field(
        default_factory=lambda: {"major": 30.0, "high": 15.0, "moderate": 5.0, "low": 1.0}
    )

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> WorkloadWeights:
        """From flat settings: ``households``, …, ``hazard_major``, ``hazard_high``, …;
        unknown names, negative or non-finite weights are a ``ValueError``."""
        flat = cls().as_dict()
        for name, value in values.items():
            if name not in flat:
                raise ValueError(f"unknown workload weight {name!r}; use one of {sorted(flat)}")
            if not math.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"workload weight {name} must be a finite number >= 0")
            flat[name] = float(value)
        return cls(
            households=flat["households"],
            population=flat["population"],
            incidents_per_year=flat["incidents_per_year"],
            rentals=flat["rentals"],
            group_rentals=flat["group_rentals"],
            key_sites=flat["key_sites"],
            hazards={level: flat[f"hazard_{level}"] for level in RISK_LEVELS},
        )

    def as_dict(self) -> dict[str, float]:
        flat = {
            "households": self.households,
            "population": self.population,
            "incidents_per_year": self.incidents_per_year,
            "rentals": self.rentals,
            "group_rentals": self.group_rentals,
            "key_sites": self.key_sites,
        }
        flat.update({f"hazard_{k}": float(v) for k, v in self.hazards.items()})
        return flat


@dataclass(frozen=True)
class GridCounts:
    """What lies in a grid, gathered from the layers (see ``gridgov.layers.measures``)."""

    households: int = 0
    population: int = 0
    buildings: int = 0
    incidents: int = 0
    rentals: int = 0
    group_rentals: int = 0
    key_sites: int = 0
    hazards: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GridMeasures:
    households: int
    population: int
    buildings: int
    area_km2: float
    incidents: int
    incidents_per_year: float
    rentals: int
    group_rentals: int
    key_sites: int
    hazards: dict[str, int]
    workload: float
    compactness: float  # Polsby-Popper, 0–1
    parts: int
    contiguous: bool


def workload(counts: GridCounts, weights: WorkloadWeights, period_days: float) -> float:
    per_year = incidents_per_year(counts.incidents, period_days)
    hazards = sum(weights.hazards.get(level, 0.0) * n for level, n in counts.hazards.items())
    return float(
        weights.households * counts.households
        + weights.population * counts.population
        + weights.incidents_per_year * per_year
        + weights.rentals * counts.rentals
        + weights.group_rentals * counts.group_rentals
        + weights.key_sites * counts.key_sites
        + hazards
    )


def incidents_per_year(incidents: int, period_days: float) -> float:
    return incidents * DAYS_PER_YEAR / period_days if period_days > 0 else 0.0


def grid_measures(
    geom: BaseGeometry, counts: GridCounts, weights: WorkloadWeights, period_days: float
) -> GridMeasures:
    """Every measure of one grid from its geometry (lon/lat) and what lies in it."""
    metric = to_metric(geom)
    parts = parts_count(geom)
    return GridMeasures(
        households=counts.households,
        population=counts.population,
        buildings=counts.buildings,
        area_km2=round(metric.area / 1e6, 6),
        incidents=counts.incidents,
        incidents_per_year=round(incidents_per_year(counts.incidents, period_days), 2),
        rentals=counts.rentals,
        group_rentals=counts.group_rentals,
        key_sites=counts.key_sites,
        hazards={level: int(counts.hazards.get(level, 0)) for level in RISK_LEVELS},
        workload=round(workload(counts, weights, period_days), 2),
        compactness=round(polsby_popper(metric), 4),
        parts=parts,
        contiguous=parts == 1,
    )


@dataclass(frozen=True)
class Balance:
    """How evenly a quantity spreads over grids: coefficient of variation and max/min."""

    n: int
    mean: float
    minimum: float
    maximum: float
    cv: float | None  # population standard deviation / mean; None when the mean is 0
    max_min_ratio: float | None  # None when the minimum is 0 (or no grids)


def balance(values: Sequence[float]) -> Balance:
    if not values:
        return Balance(0, 0.0, 0.0, 0.0, None, None)
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    low, high = float(array.min()), float(array.max())
    cv = float(array.std() / mean) if mean > 0 else None
    ratio = high / low if low > 0 else None
    return Balance(
        n=len(values),
        mean=round(mean, 3),
        minimum=low,
        maximum=high,
        cv=None if cv is None else round(cv, 4),
        max_min_ratio=None if ratio is None else round(ratio, 4),
    )
