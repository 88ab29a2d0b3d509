"""The cluster trigger stays linear in the rows an UPDATE touches, whatever ran before it
on the same connection (migration 0018_trigger_plans)."""

from __future__ import annotations

from sqlalchemy import Connection, MetaData, text

from gridgov.layers import incidents
from gridgov.layers.incidents import NewIncident
from gridgov.layers.registry import Registry
from tests.small_city import T2024, TOLERANCE, build_small_city

COPIES = 40_000


def _cells(conn: Connection) -> list[tuple[int, int, int, int]]:
    return [
        (int(r.z), int(r.cx), int(r.cy), int(r.n))
        for r in conn.execute(
            text(
                "SELECT z, cx, cy, n FROM tile_cluster WHERE layer = 'incident' ORDER BY z, cx, cy"
            )
        )
    ]


def test_a_large_update_after_small_ones_on_one_connection_finishes(
    connection: Connection, metadata: MetaData, registry: Registry
) -> None:
    """PostgreSQL estimates a transition table at one row. After a few one-row updates
    (status changes) PL/pgSQL kept a nested-loop plan for the trigger's join of old and
    new rows, and a 40,000-row update on the same connection compared 1.6 billion pairs:
    it hit the statement timeout here. Now the moved points are found by grouping, and
    the cells stay exact."""
    city = build_small_city(connection, metadata, registry)
    seed = incidents.create(
        city, NewIncident(120.305, 31.575, "dispute", "hotline", T2024), TOLERANCE, actor="test"
    )
    columns = [
        str(c)
        for c in city.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'incident' AND column_name NOT IN ('id', 'external_id') "
                "ORDER BY ordinal_position"
            )
        ).scalars()
    ]
    listed = ", ".join(columns)
    city.execute(
        text(
            f"INSERT INTO incident ({listed}) SELECT {listed} FROM incident, "
            "generate_series(1, :n) WHERE id = :seed"
        ),
        {"n": COPIES, "seed": seed},
    )
    before = _cells(city)
    zooms = sorted({z for z, _, _, _ in before})
    assert [(z, n) for z, _, _, n in before] == [(z, COPIES + 1) for z in zooms]
    for note in range(8):  # enough runs for PL/pgSQL to keep a generic plan
        city.execute(
            text("UPDATE incident SET description = :d WHERE id = :seed"),
            {"d": f"核查 {note}", "seed": seed},
        )
    city.execute(text("SET LOCAL statement_timeout = '60s'"))
    updated = city.execute(text("UPDATE incident SET description = '批量更正'")).rowcount
    assert updated == COPIES + 1
    assert _cells(city) == before  # descriptions moved no point: no cell changed
    moved = city.execute(
        text("UPDATE incident SET geom = ST_SetSRID(ST_MakePoint(120.315, 31.565), 4490)")
    ).rowcount
    assert moved == COPIES + 1
    after = _cells(city)
    assert [(z, n) for z, _, _, n in after] == [(z, COPIES + 1) for z in zooms]
    assert {(z, cx, cy) for z, cx, cy, _ in after}.isdisjoint(
        {(z, cx, cy) for z, cx, cy, _ in before}
    )
