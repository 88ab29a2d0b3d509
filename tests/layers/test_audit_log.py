"""The audit log is append-only for the role gridgov runs as, and keeps rows six months."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gridgov.layers import audit


def _refused(connection: Connection, statement: str) -> str:
    """Run ``statement`` in a savepoint; return the database's refusal."""
    with pytest.raises(DBAPIError) as caught, connection.begin_nested():
        connection.execute(text(statement))
    return str(caught.value.orig)


@pytest.fixture
def entry(connection: Connection) -> int:
    audit.record(connection, audit.AuditEvent(action="login", outcome="ok", username="u1"))
    new_id: int = connection.execute(text("SELECT max(id) FROM audit_log")).scalar_one()
    return new_id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET outcome = 'failed'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
def test_the_app_role_cannot_change_or_remove_entries(
    connection: Connection, entry: int, statement: str
) -> None:
    assert "permission denied" in _refused(connection, statement)
    still = connection.execute(
        text("SELECT outcome FROM audit_log WHERE id = :id"), {"id": entry}
    ).scalar_one()
    assert still == "ok"


def test_triggers_hold_even_if_the_owner_grants_itself_back(
    connection: Connection, entry: int
) -> None:
    """The second line: an owner who re-grants itself still meets the triggers."""
    connection.execute(text("GRANT UPDATE, DELETE, TRUNCATE ON audit_log TO CURRENT_USER"))
    assert "append-only" in _refused(connection, "UPDATE audit_log SET outcome = 'failed'")
    assert "append-only" in _refused(connection, "TRUNCATE audit_log")
    assert "6 个月" in _refused(connection, f"DELETE FROM audit_log WHERE id = {entry}")


def test_entries_cannot_be_back_dated_and_old_ones_may_go(connection: Connection) -> None:
    connection.execute(
        text(
            "INSERT INTO audit_log (at, action, outcome) "
            "VALUES ('2020-01-01T00:00:00Z', 'forged', 'ok')"
        )
    )
    at = connection.execute(
        text("SELECT at > now() - interval '1 minute' FROM audit_log WHERE action = 'forged'")
    ).scalar_one()
    assert at  # stamped by the database, not by the writer
    # Past the retention, the owner (not the app at run time) may delete: make one old row.
    connection.execute(text("GRANT DELETE ON audit_log TO CURRENT_USER"))
    connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_stamp"))
    connection.execute(
        text(
            "INSERT INTO audit_log (at, action, outcome) "
            "VALUES (now() - interval '7 months', 'old', 'ok')"
        )
    )
    connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_stamp"))
    gone = connection.execute(text("DELETE FROM audit_log WHERE action = 'old'")).rowcount
    assert gone == 1


def test_search_filters(connection: Connection) -> None:
    record: Callable[..., None] = lambda **kw: audit.record(  # noqa: E731
        connection, audit.AuditEvent(**kw)
    )
    record(action="login", outcome="failed", username="q_user", ip="10.0.0.8")
    record(action="login", outcome="ok", username="q_user")
    record(action="export", outcome="ok", username="q_other")
    rows = audit.search(connection, audit.AuditQuery(username="q_user"))
    assert [(r["action"], r["outcome"]) for r in rows] == [("login", "ok"), ("login", "failed")]
    failed = audit.search(connection, audit.AuditQuery(username="q_user", outcome="failed"))
    assert [r["ip"] for r in failed] == ["10.0.0.8"]
    assert audit.search(connection, audit.AuditQuery(action="export", username="q_other"))
