"""A mini city for the map APIs: two townships, four grids, police units, every layer, and
a few hundred incidents in every category and state (deterministic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import Connection, MetaData, text

from gridgov.layers.catalog import INCIDENT_CATEGORIES, INCIDENT_STATUSES
from gridgov.layers.registry import Registry
from tests.factories import insert_row, valid_row

W, MID, E, S, LAT_MID, N = 120.30, 120.32, 120.34, 31.56, 31.57, 31.58
GRID_START = datetime(2024, 1, 1, tzinfo=UTC)
# (township, community, grid code, west, east): each township holds one community of two grids
GRIDS = (
    ("320213001", "320213001001", "320213001001001", W, 120.31),
    ("320213001", "320213001001", "320213001001002", 120.31, MID),
    ("320213002", "320213002001", "320213002001001", MID, 120.33),
    ("320213002", "320213002001", "320213002001002", 120.33, E),
)
LANDLORD = {
    "landlord_name": "张三",
    "landlord_id_number": "32020219800101123X",
    "landlord_phone": "13800005678",
}


def multi(geom: object) -> MultiPolygon:
    return MultiPolygon([geom])  # type: ignore[list-item]


def build_mini_city(
    conn: Connection, metadata: MetaData, registry: Registry, incidents: int = 300
) -> list[int]:
    """Insert the city in ``conn``'s transaction; returns the incident ids."""

    def add(layer: str, **values: object) -> int:
        return insert_row(conn, metadata, layer, valid_row(registry.get(layer), **values))

    add("district", geom=multi(box(120.2, 31.5, 120.4, 31.7)))
    for township, west, east in (("320213001", W, MID), ("320213002", MID, E)):
        add("township", code=township, geom=multi(box(west, S, east, N)))
    for township, community, _, west, _ in GRIDS[::2]:
        add(
            "community",
            code=community,
            township_code=township,
            geom=multi(box(west, S, west + 0.02, N)),
        )
    for township, community, code, west, east in GRIDS:
        add(
            "grid",
            code=code,
            township_code=township,
            community_code=community,
            geom=multi(box(west, S, east, N)),
            valid_from=GRID_START,
            name=f"网格{code[-3:]}",
        )
    add("police_unit", code="PCS1", name="一所", level="station", geom=multi(box(W, S, MID, N)))
    add("police_unit", code="PCS2", name="二所", level="station", geom=multi(box(MID, S, E, N)))
    add(
        "police_unit",
        code="JWQ-S",
        name="南区",
        level="policing_area",
        geom=multi(box(W, S, E, LAT_MID)),
    )
    add(
        "police_unit",
        code="JWQ-N",
        name="北区",
        level="policing_area",
        geom=multi(box(W, LAT_MID, E, N)),
    )
    # Two of each department's units, split like the police's: west/east and south/north.
    for code, name, west, east in (("CG1", "城管一中队", W, MID), ("CG2", "城管二中队", MID, E)):
        add("urban_unit", code=code, name=name, geom=multi(box(west, S, east, N)))
    for code, name, south, north in (
        ("YJ1", "南片应急", S, LAT_MID),
        ("YJ2", "北片应急", LAT_MID, N),
    ):
        add("emergency_unit", code=code, name=name, geom=multi(box(W, south, E, north)))
    for layer in ("building", "hazard_zone", "key_site", "shelter"):
        add(layer)
    for i in range(3):
        add(
            "rental_housing",
            address=f"测试路{i}号",
            geom=Point(120.305 + i * 0.001, 31.565),
            **LANDLORD,
        )
    return _incidents(conn, metadata, registry, incidents)


def _incidents(conn: Connection, metadata: MetaData, registry: Registry, count: int) -> list[int]:
    rng = np.random.default_rng(7)
    spec = registry.get("incident")
    ids = []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    categories = [c.value for c in INCIDENT_CATEGORIES]
    statuses = [s.value for s in INCIDENT_STATUSES]
    for _ in range(count):
        lon = float(rng.uniform(W + 1e-4, E - 1e-4))
        lat = float(rng.uniform(S + 1e-4, N - 1e-4))
        township, community, grid, *_ = next(g for g in GRIDS if g[3] <= lon < g[4])
        reported = start + timedelta(minutes=int(rng.integers(0, 365 * 24 * 60)))
        assigned = rng.random() > 0.1
        row = valid_row(
            spec,
            geom=Point(lon, lat),
            township_code=township,
            community_code=community,
            grid_code=grid,
            category=categories[int(rng.integers(len(categories)))],
            status=statuses[int(rng.integers(len(statuses)))],
            reported_at=reported,
            deadline_at=reported + timedelta(hours=48) if rng.random() > 0.05 else None,
            police_station_code=("PCS1" if lon < MID else "PCS2") if assigned else None,
            policing_area_code=("JWQ-S" if lat < LAT_MID else "JWQ-N") if assigned else None,
            urban_unit_code=("CG1" if lon < MID else "CG2") if assigned else None,
            emergency_unit_code=("YJ1" if lat < LAT_MID else "YJ2") if assigned else None,
            external_id=None,
        )
        ids.append(insert_row(conn, metadata, "incident", row))
    return ids


def remove_everything(conn: Connection, registry: Registry) -> None:
    """Delete every row the city wrote, children first (for committed fixtures)."""
    for table in (
        "incident_transition",
        "grid_unit",
        "tile_cache",
        "incident_agg",
        "incident_agg_dirty_day",
        "incident_agg_change",
    ):
        conn.execute(text(f"DELETE FROM {table}"))
    for spec in reversed(list(registry)):
        conn.execute(text(f"DELETE FROM {spec.table_name}"))
