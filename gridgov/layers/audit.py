"""The append-only audit log (审计日志): who, when, from where, what, and the outcome.

Written in the request's own transaction when the action succeeds (so a write and its
audit record commit together), and in a transaction of its own for refusals and failed
logins (which roll the request back). The database refuses updates, truncation and the
deletion of rows younger than six months (migration ``0005_accounts``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("gridgov.audit")

Outcome = Literal["ok", "refused", "failed"]
RETENTION = "6 months"


@dataclass(frozen=True)
class AuditEvent:
    action: str  # e.g. login, logout, read_personal, import, export, incident_create
    outcome: Outcome
    username: str | None = None
    user_id: int | None = None
    role: str | None = None
    ip: str | None = None
    target: str | None = None
    status: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


_INSERT = text(
    "INSERT INTO audit_log (user_id, username, role, ip, action, target, outcome, status, detail) "
    "VALUES (:user_id, :username, :role, :ip, :action, :target, :outcome, :status, "
    "CAST(:detail AS jsonb))"
)


def _params(event: AuditEvent) -> dict[str, Any]:
    return {
        "user_id": event.user_id,
        "username": event.username,
        "role": event.role,
        "ip": event.ip,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "status": event.status,
        "detail": json.dumps(dict(event.detail), ensure_ascii=False, default=str),
    }


def record(conn: Connection, event: AuditEvent) -> None:
    """Append ``event`` inside the caller's transaction."""
    conn.execute(_INSERT, _params(event))


def record_detached(engine: Engine, event: AuditEvent) -> None:
    """Append ``event`` in a transaction of its own (refusals: the request rolls back)."""
    try:
        with engine.begin() as conn:
            conn.execute(_INSERT, _params(event))
    except SQLAlchemyError:
        # Never hide the refusal itself behind an audit failure; say so loudly instead.
        log.exception("audit record lost: action=%s outcome=%s", event.action, event.outcome)


@dataclass(frozen=True)
class AuditQuery:
    username: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


def search(conn: Connection, query: AuditQuery) -> list[dict[str, Any]]:
    """Newest first; every filter is a bound parameter."""
    rows = conn.execute(
        text(
            "SELECT id, at, username, role, ip, action, target, outcome, status, detail "
            "FROM audit_log WHERE (CAST(:u AS text) IS NULL OR username = :u) "
            "AND (CAST(:a AS text) IS NULL OR action = :a) "
            "AND (CAST(:o AS text) IS NULL OR outcome = :o) "
            "AND (CAST(:s AS timestamptz) IS NULL OR at >= :s) "
            "AND (CAST(:t AS timestamptz) IS NULL OR at < :t) "
            "ORDER BY at DESC, id DESC LIMIT :n"
        ),
        {
            "u": query.username,
            "a": query.action,
            "o": query.outcome,
            "s": query.since,
            "t": query.until,
            "n": query.limit,
        },
    ).mappings()
    return [dict(r) for r in rows]


__all__ = ["RETENTION", "AuditEvent", "AuditQuery", "record", "record_detached", "search"]
