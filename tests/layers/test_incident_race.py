"""A report and its retry racing on real connections, with committed data.

A hotline system that times out resends the same ticket while the first try is still in
its transaction. The retry must end as a later repeat would: the stored incident
(identical values) or a conflict naming what differs, never a unique violation (a 500).
What makes it so: every statement that writes ``incident`` bumps the layer's row in
``layer_state`` (its change counter), so the retry's first write waits for the first
try's commit, and its check of the external id comes after. These tests pin that for
the exact engine's path (a point in no grid piece), which inserts without ``ON
CONFLICT``. The rows are committed (each writer has its own connection) and removed
again after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Connection, Engine, MetaData, text

from gridgov.errors import ConflictError
from gridgov.layers import incidents
from gridgov.layers.incidents import AlreadyReportedError, NewIncident
from gridgov.layers.registry import Registry
from tests.factories import insert_row, valid_row
from tests.layers.concurrency import committed, second_waits_for_first, waiting_on_a_transaction

DISTRICT, TOWNSHIP = "320206", "320206001"
TICKET = "RACE-12345-0001"
# In the township, in no grid: the township fallback, through the exact engine.
REPORT = NewIncident(
    120.45, 31.65, "dispute", "hotline", datetime(2025, 3, 1, 1, 30, tzinfo=UTC), TICKET
)


def _cleanup(conn: Connection) -> None:
    conn.execute(
        text(
            "DELETE FROM incident_transition WHERE incident_id IN "
            "(SELECT id FROM incident WHERE external_id = :t)"
        ),
        {"t": TICKET},
    )
    conn.execute(text("DELETE FROM incident WHERE external_id = :t"), {"t": TICKET})
    conn.execute(text("DELETE FROM township WHERE code = :c"), {"c": TOWNSHIP})
    conn.execute(text("DELETE FROM district WHERE code = :c"), {"c": DISTRICT})


@pytest.fixture
def committed_township(engine: Engine, metadata: MetaData, registry: Registry) -> Iterator[Engine]:
    def fill(conn: Connection) -> None:
        area = MultiPolygon([box(120.4, 31.6, 120.5, 31.7)])
        insert_row(
            conn,
            metadata,
            "district",
            valid_row(registry.get("district"), code=DISTRICT, geom=area),
        )
        insert_row(
            conn,
            metadata,
            "township",
            valid_row(registry.get("township"), code=TOWNSHIP, district_code=DISTRICT, geom=area),
        )

    yield from committed(engine, _cleanup, fill)


def _race(engine: Engine, retry: NewIncident) -> tuple[int, dict[str, Any]]:
    """The first report stays uncommitted while the retry starts; returns the first's id
    and the retry's ``result`` or ``error``."""
    first: dict[str, int] = {}

    def first_report(conn: Connection) -> None:
        first["id"] = incidents.create(conn, REPORT, 50.0, "hotline")

    outcome = second_waits_for_first(
        engine,
        first_report,
        lambda conn: incidents.create(conn, retry, 50.0, "hotline"),
        waiting=waiting_on_a_transaction,
    )
    return first["id"], outcome


def _stored(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, assign_method FROM incident WHERE external_id = :t"), {"t": TICKET}
        )
        return [(int(r.id), str(r.assign_method)) for r in rows]


def test_a_retry_racing_the_first_try_gets_the_stored_incident(
    committed_township: Engine,
) -> None:
    first_id, outcome = _race(committed_township, REPORT)
    assert isinstance(outcome.get("error"), AlreadyReportedError), outcome
    assert outcome["error"].existing_id == first_id
    assert _stored(committed_township) == [(first_id, "fallback")]


def test_another_report_racing_for_the_ticket_is_told_what_differs(
    committed_township: Engine,
) -> None:
    other = NewIncident(
        REPORT.lon, REPORT.lat, "public_order", REPORT.source, REPORT.reported_at, TICKET
    )
    first_id, outcome = _race(committed_township, other)
    error = outcome.get("error")
    assert isinstance(error, ConflictError)
    assert not isinstance(error, AlreadyReportedError)
    assert error.public == {"existing_id": first_id, "differs": "category"}
    assert _stored(committed_township) == [(first_id, "fallback")]
