"""Incidents: creation with assignment, reading, listing, lifecycle moves and reassignment.

Every statement about incidents lives here; the API and the CLI only call these.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from gridgov.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OutOfScopeError,
    PermissionDeniedError,
)
from gridgov.gis import lifecycle
from gridgov.layers import assignment
from gridgov.layers.assignment import OUTPUT_COLUMNS, OutsideCityError
from gridgov.layers.catalog import INCIDENT, INCIDENT_STATUSES
from gridgov.layers.scope import AreaScope, as_owner, row_in_scope, scope_sql

# Columns a caller supplies for a new incident (besides its point).
INPUT_COLUMNS = ("category", "source", "reported_at", "external_id", "description")
# The longest text accepted, by POST /incidents and the batch import alike.
MAX_CHARS = {"external_id": 100, "description": 4000}
READ_COLUMNS = (
    "id",
    "category",
    "status",
    "source",
    "external_id",
    "description",
    "reported_at",
    "deadline_at",
    *lifecycle.STAGE_COLUMN.values(),
    "district_code",
    "township_code",
    "community_code",
    "grid_code",
    "grid_id",
    "assign_method",
    "assign_distance_m",
    "assigned_at",
    *assignment.UNIT_COLUMNS,
)
LIST_FILTERS = {
    "grid": "grid_code",
    "community": "community_code",
    "township": "township_code",
    "district": "district_code",
    "category": "category",
    "status": "status",
    "police_station": "police_station_code",
    "policing_area": "policing_area_code",
    "urban_unit": "urban_unit_code",
    "emergency_unit": "emergency_unit_code",
    "source": "source",
    "method": "assign_method",
    "external_id": "external_id",
}
SELECT = (
    "SELECT " + ", ".join(READ_COLUMNS) + ", ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incident"
)


IMPLIED_CREATION = "批量导入 (batch import)"
STORED_STAGE = "随事件导入的阶段时间 (stage time imported with the incident)"
# What a ticket number (external id) never holds: control and invisible format characters
# (a zero-width space after DEMO-1 made a second ticket of it), the ideographic space,
# full-width letters, digits and hyphens (ＤＥＭＯ－１). Refused by POST /incidents and the
# batch import alike, never rewritten.
EXTERNAL_ID_FORBIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\u3000\uff0d\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]"
)
EXTERNAL_ID_ZH = "外部编号含不可见字符、控制字符、全角空格或全角字母数字"
EXTERNAL_ID_EN = (
    "the external id holds an invisible or control character, an ideographic space, or a "
    "full-width letter, digit or hyphen"
)
# A report time more than this after the clock is refused, by POST /incidents and the
# batch import alike: a mistyped year (2052) or a Beijing time labelled UTC would file
# the incident under a grid version not yet in force, and into a future heatmap.
REPORT_CLOCK_SKEW = timedelta(hours=1)
FUTURE_REPORT_ZH = "上报时间晚于当前时间（允许误差 1 小时）"
FUTURE_REPORT_EN = "reported_at is in the future (more than an hour ahead of the clock)"


# A report time before this is a mistyped year (0025 for 2025), not a record: refused
# alike, as PostgreSQL could not even store year 1 given with a zone east of UTC.
EARLIEST_REPORT = datetime(1970, 1, 1, tzinfo=UTC)
EARLY_REPORT_ZH = "上报时间早于 1970 年，请检查年份"
EARLY_REPORT_EN = "reported_at is before 1970: check the year"


class EarlyReportError(InvalidInputError):
    code = "reported-too-early"
    title_zh = "上报时间过早"
    title_en = "Reported too early"


class FutureTimeError(InvalidInputError):
    code = "time-in-future"
    title_zh = "时间晚于当前时间"
    title_en = "Time in the future"


class FutureReportError(FutureTimeError):
    code = "reported-in-future"
    title_zh = "上报时间晚于当前时间"
    title_en = "Reported in the future"


class TimeOrderError(InvalidInputError):
    code = "time-out-of-order"
    title_zh = "时间早于上一步"
    title_en = "Time before the previous step"


def latest_report_time(now: datetime | None = None) -> datetime:
    """The latest ``reported_at`` accepted at ``now`` (default: the clock)."""
    return (now or datetime.now(UTC)) + REPORT_CLOCK_SKEW


@dataclass(frozen=True)
class NewIncident:
    """A validated incident to store; ``lon``/``lat`` are already CGCS2000."""

    lon: float
    lat: float
    category: str
    source: str
    reported_at: datetime
    external_id: str | None = None
    description: str | None = None


# What a report repeated under the same external id (a ticket number) is compared on, as
# SQL over the stored incident ``i`` and the new values ``s`` (lon, lat, category, source,
# at, description): a single report and an import row compare alike. Equal everywhere: the
# same report, stored once; otherwise it is refused, never written over the stored one.
FIELD_DIFFERS = {
    "位置 location": "ST_X(i.geom) IS DISTINCT FROM s.lon OR ST_Y(i.geom) IS DISTINCT FROM s.lat",
    "类别 category": "i.category IS DISTINCT FROM s.category",
    "来源 source": "i.source IS DISTINCT FROM s.source",
    "上报时间 reported_at": "i.reported_at IS DISTINCT FROM s.at",
    "描述 description": "i.description IS DISTINCT FROM s.description",
}


def field_names(names: list[str]) -> tuple[str, str]:
    """Keys of :data:`FIELD_DIFFERS` as a Chinese list, and an English one with its verb
    ("category differs", "category, source differ")."""
    english = ", ".join(n.split()[1] for n in names)
    return "、".join(n.split()[0] for n in names), english + (
        " differs" if len(names) == 1 else " differ"
    )


class AlreadyReportedError(ConflictError):
    """The same report (external id and every value) is stored already: the API answers
    it with the stored incident, so that a client's retry after a lost answer is safe."""

    code = "already-reported"
    title_zh = "已上报"
    title_en = "Already reported"

    @property
    def existing_id(self) -> int:
        return int(self.public["existing_id"])


def _stage_input(conn: Connection, rows: list[tuple[int, float, float, datetime]]) -> None:
    assignment.prepare_input(conn)
    conn.execute(
        text(
            "INSERT INTO assign_input (id, geom, at) "
            "VALUES (:id, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), :at)"
        ),
        [{"id": i, "lon": lon, "lat": lat, "at": at} for i, lon, lat, at in rows],
    )


def create(
    conn: Connection,
    incident: NewIncident,
    tolerance_m: float,
    actor: str | None,
    *,
    now: datetime | None = None,
    scope: AreaScope | None = None,
) -> int:
    """Store one incident with its full assignment; refuses a point outside the city, and
    a report time ahead of ``now`` (default: the clock; tests of grid versions scheduled
    for later set it ahead). An external id already stored raises (see
    :func:`_refuse_repeat`; ``scope``: the reporting account's area).

    The common case (a point well inside a grid piece, see :mod:`gridgov.layers.assignment`)
    is one statement: assignment, insert and history row in one round trip. Anything else
    (a boundary, a sliver, outside every grid, a repeated external id) takes the exact
    engine below.
    """
    if incident.reported_at < EARLIEST_REPORT:
        shown = incident.reported_at.isoformat()
        raise EarlyReportError(f"{EARLY_REPORT_ZH}：{shown}", f"{EARLY_REPORT_EN}: {shown}")
    if incident.reported_at > latest_report_time(now):
        shown = incident.reported_at.isoformat()
        raise FutureReportError(f"{FUTURE_REPORT_ZH}：{shown}", f"{FUTURE_REPORT_EN}: {shown}")
    values = {name: getattr(incident, name) for name in INPUT_COLUMNS}
    params = {**values, "lon": incident.lon, "lat": incident.lat, "actor": actor}
    point = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)"
    at = "CAST(:reported_at AS timestamptz)"
    row = conn.execute(
        text(
            f"""
            WITH placed AS ({assignment.fast_single_sql(point, at)}),
            created AS (
                INSERT INTO incident ({", ".join(INPUT_COLUMNS)}, status, geom, assigned_at,
                                      {", ".join(OUTPUT_COLUMNS)})
                SELECT {", ".join(":" + n for n in INPUT_COLUMNS)}, 'reported', {point}, now(),
                       {", ".join("p." + n for n in OUTPUT_COLUMNS)}
                FROM placed p
                ON CONFLICT (external_id) DO NOTHING
                RETURNING id
            )
            INSERT INTO incident_transition (incident_id, from_status, to_status, at, actor)
            SELECT id, NULL, 'reported', {at}, :actor FROM created
            RETURNING incident_id
            """
        ),
        params,
    ).first()
    if row is not None:
        return int(row.incident_id)
    if incident.external_id is not None:
        _refuse_repeat(conn, incident, scope)
    _stage_input(conn, [(0, incident.lon, incident.lat, incident.reported_at)])
    assignment.run(conn, tolerance_m)
    if assignment.outside(conn):
        assignment.finish(conn)
        raise OutsideCityError(
            "该位置不在任何镇街范围内，无法分派（属地兜底也不适用）",
            "the point lies outside every township of the city, so it cannot be assigned",
        )
    new_id = conn.execute(
        text(
            f"""
            INSERT INTO incident ({", ".join(INPUT_COLUMNS)}, status, geom, assigned_at,
                                  {", ".join(OUTPUT_COLUMNS)})
            SELECT {", ".join(":" + n for n in INPUT_COLUMNS)}, 'reported',
                   {point}, now(), {", ".join("o." + n for n in OUTPUT_COLUMNS)}
            FROM assign_output o WHERE o.id = 0
            RETURNING id
            """
        ),
        params,
    ).scalar_one()
    assignment.finish(conn)
    _record(conn, int(new_id), None, "reported", incident.reported_at, actor, None)
    return int(new_id)


def _refuse_repeat(conn: Connection, incident: NewIncident, scope: AreaScope | None) -> None:
    """Raise when ``incident``'s external id is stored: :class:`AlreadyReportedError` when
    every value is the same, else a conflict naming what differs. A stored incident
    outside ``scope`` is neither shown nor described: the ticket number is not the
    caller's (403)."""
    names = list(FIELD_DIFFERS)
    flags = ", ".join(f"({sql}) AS f{k}" for k, sql in enumerate(FIELD_DIFFERS.values()))
    with as_owner(conn):  # row-level security would hide it: the ticket number is taken
        stored = conn.execute(
            text(
                f"""
                SELECT i.*, {flags} FROM incident i,
                    (SELECT CAST(:lon AS float8) AS lon, CAST(:lat AS float8) AS lat,
                            CAST(:category AS text) AS category, CAST(:source AS text) AS source,
                            CAST(:at AS timestamptz) AS at,
                            CAST(:description AS text) AS description) s
                WHERE i.external_id = :e
                """
            ),
            {
                "lon": incident.lon,
                "lat": incident.lat,
                "category": incident.category,
                "source": incident.source,
                "at": incident.reported_at,
                "description": incident.description,
                "e": incident.external_id,
            },
        ).first()
    if stored is None:
        return
    if scope is not None and not in_scope(dict(stored._mapping), scope):
        raise PermissionDeniedError(
            f"外部编号 {incident.external_id} 属于您管辖区域之外的事件",
            f"external id {incident.external_id} belongs to an incident outside your area",
        )
    differ = [name for k, name in enumerate(names) if getattr(stored, f"f{k}")]
    public: dict[str, str | int | float | bool] = {"existing_id": int(stored.id)}
    if not differ:
        raise AlreadyReportedError(
            f"外部编号 {incident.external_id} 已上报为事件 #{stored.id}",
            f"external id {incident.external_id} is incident #{stored.id} already",
            public=public,
        )
    zh, en = field_names(differ)
    raise ConflictError(
        f"外部编号 {incident.external_id} 已是事件 #{stored.id}，其{zh}与本次上报不同；"
        "不会覆盖已存事件",
        f"external id {incident.external_id} is incident #{stored.id} already, whose {en} "
        "from this report's; a stored incident is never overwritten",
        public={**public, "differs": ", ".join(n.split()[1] for n in differ)},
    )


def _record(
    conn: Connection,
    incident_id: int,
    old: str | None,
    new: str,
    at: datetime,
    actor: str | None,
    note: str | None,
) -> None:
    conn.execute(
        text(
            "INSERT INTO incident_transition (incident_id, from_status, to_status, at, actor, note)"
            " VALUES (:i, :old, :new, :at, :actor, :note)"
        ),
        {"i": incident_id, "old": old, "new": new, "at": at, "actor": actor, "note": note},
    )


def _missing(conn: Connection, incident_id: int, scope: AreaScope | None) -> NotFoundError:
    """The same 404 for a missing incident and one outside the caller's area."""
    exists = False
    if scope is not None:
        with as_owner(conn):  # row-level security would hide it: that is the question here
            found = conn.execute(text("SELECT 1 FROM incident WHERE id = :id"), {"id": incident_id})
            exists = found.first() is not None
    kind = OutOfScopeError if exists else NotFoundError
    return kind(
        f"事件 {incident_id} 不存在", f"no incident {incident_id}", public={"id": incident_id}
    )


def get(conn: Connection, incident_id: int, scope: AreaScope | None = None) -> dict[str, Any]:
    """One incident; outside ``scope`` it does not exist (404)."""
    condition, params = scope_sql(INCIDENT, scope or AreaScope.everything(), "incident")
    row = (
        conn.execute(
            text(SELECT + f" WHERE id = :id AND {condition}"), {"id": incident_id, **params}
        )
        .mappings()
        .first()
    )
    if row is None:
        raise _missing(conn, incident_id, scope)
    return dict(row)


def in_scope(row: Mapping[str, Any], scope: AreaScope) -> bool:
    """Whether an incident row lies in ``scope`` (e.g. where a new report was assigned)."""
    return row_in_scope(INCIDENT, row, scope)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def search(
    conn: Connection,
    filters: Mapping[str, str | None],
    reported_from: datetime | None,
    reported_to: datetime | None,
    limit: int,
    offset: int,
    scope: AreaScope | None = None,
) -> Page:
    """Incidents in ``scope`` matching every given filter, newest first, one page at a time."""
    condition, scope_params = scope_sql(INCIDENT, scope or AreaScope.everything(), "incident")
    clauses: list[str] = [] if condition == "true" else [condition]
    params: dict[str, Any] = {"limit": limit, "offset": offset, **scope_params}
    for name, value in filters.items():
        if value is not None:
            clauses.append(f"{LIST_FILTERS[name]} = :{name}")
            params[name] = value
    if reported_from is not None:
        clauses.append("reported_at >= :reported_from")
        params["reported_from"] = reported_from
    if reported_to is not None:
        clauses.append("reported_at < :reported_to")
        params["reported_to"] = reported_to
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    total = conn.execute(text("SELECT count(*) FROM incident" + where), params).scalar_one()
    rows = conn.execute(
        text(SELECT + where + " ORDER BY reported_at DESC, id DESC LIMIT :limit OFFSET :offset"),
        params,
    ).mappings()
    return Page([dict(r) for r in rows], int(total), limit, offset)


def transition(
    conn: Connection,
    incident_id: int,
    target: str,
    actor: str | None,
    note: str | None,
    at: datetime | None = None,
    scope: AreaScope | None = None,
) -> dict[str, Any]:
    """Move an incident to ``target`` if the lifecycle allows it; set the stage's time."""
    condition, scope_params = scope_sql(INCIDENT, scope or AreaScope.everything(), "incident")
    row = conn.execute(
        text(
            f"SELECT status, category, greatest(reported_at, {_STEP_TIMES}, (SELECT max(t.at) "
            "FROM incident_transition t WHERE t.incident_id = incident.id)) AS previous "
            f"FROM incident WHERE id = :id AND {condition} FOR UPDATE"
        ),
        {"id": incident_id, **scope_params},
    ).first()
    if row is None:
        raise _missing(conn, incident_id, scope)
    if target not in lifecycle.STAGES:
        raise InvalidInputError(f"未知状态 {target!r}", f"unknown status {target!r}")
    if not lifecycle.allowed(row.status, target):
        allowed = "、".join(_stage_zh(s) for s in lifecycle.next_stages(row.status)) or "无"
        raise ConflictError(
            f"不能从“{_stage_zh(row.status)}”转到“{_stage_zh(target)}”，可转至：{allowed}",
            f"cannot move from {row.status} to {target}; allowed: "
            f"{', '.join(lifecycle.next_stages(row.status)) or 'none'}",
            public={
                "current_status": row.status,
                "allowed": ",".join(lifecycle.next_stages(row.status)),
            },
        )
    # Without a time given, now; or the previous step's time when that is later (a clock
    # ahead by up to REPORT_CLOCK_SKEW stamped it), so that no step is ever blocked.
    when = at or max(datetime.now(UTC), row.previous)
    _check_step_time(when, row.previous)
    column = lifecycle.STAGE_COLUMN[target]
    # Back to an earlier stage (a handled case whose check failed goes back to handling):
    # the later stages' times are undone, else handled_at would stand before handling_at.
    later = lifecycle.STAGES[lifecycle.STAGES.index(target) + 1 :]
    extra = "".join(f", {lifecycle.STAGE_COLUMN[stage]} = NULL" for stage in later)
    params: dict[str, Any] = {"id": incident_id, "status": target, "at": when}
    if target == "dispatched":
        extra += ", deadline_at = :deadline"
        params["deadline"] = lifecycle.deadline(row.category, when)
    conn.execute(
        text(
            f"UPDATE incident SET status = :status, {column} = :at, updated_at = now(){extra} "
            "WHERE id = :id"
        ),
        params,
    )
    _record(conn, incident_id, row.status, target, when, actor, note)
    return get(conn, incident_id, scope)


_STAGE_TITLES = {c.value: c.title_zh for c in INCIDENT_STATUSES}


def _stage_zh(stage: str) -> str:
    """A stage as users name it, with the API's word beside it: 核查结案 (closed)."""
    return f"{_STAGE_TITLES.get(stage, stage)} ({stage})"


# Each stage's latest time, also for incidents imported with their lifecycle and no
# transition rows (the demo city's).
_STEP_TIMES = ", ".join(lifecycle.STAGE_COLUMN.values())


def _check_step_time(when: datetime, previous: datetime) -> None:
    """A step's time lies between the previous step's (or the report's) and now: out of
    order, durations and overdue counts would come out negative."""
    if when > latest_report_time():
        raise FutureTimeError(
            f"办理时间 {when.isoformat()} 晚于当前时间（允许误差 1 小时）",
            f"the step's time {when.isoformat()} is in the future "
            "(more than an hour ahead of the clock)",
        )
    if when < previous:
        raise TimeOrderError(
            f"办理时间 {when.isoformat()} 早于上一步或上报的时间 {previous.isoformat()}",
            f"the step's time {when.isoformat()} is before the previous step or the "
            f"report, {previous.isoformat()}",
        )


def history(
    conn: Connection, incident_id: int, scope: AreaScope | None = None
) -> list[dict[str, Any]]:
    """Every lifecycle move, oldest first. Batch imports store no row for the creation
    (a million history rows would double the import's cost): it is implied by the
    incident itself, reported at ``reported_at``, and shown as such; so is each later
    stage whose time came with the incident (a 台账 of handled cases, the demo city) and
    no move recorded it."""
    get(conn, incident_id, scope)  # 404 for an unknown incident, or one outside the area
    stored_stages = " ".join(
        f"""UNION ALL
        SELECT '{before}', '{stage}', i.{lifecycle.STAGE_COLUMN[stage]}, NULL, :stored, 0
        FROM incident i WHERE i.id = :id AND i.{lifecycle.STAGE_COLUMN[stage]} IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM incident_transition t
                          WHERE t.incident_id = i.id AND t.to_status = '{stage}')"""
        for before, stage in itertools.pairwise(lifecycle.STAGES)
    )
    rows = conn.execute(
        text(
            f"""
            SELECT from_status, to_status, at, actor, note FROM (
                SELECT from_status, to_status, at, actor, note, id AS seq
                FROM incident_transition WHERE incident_id = :id
                UNION ALL
                SELECT NULL, 'reported', i.reported_at, NULL, :implied, 0
                FROM incident i
                WHERE i.id = :id AND NOT EXISTS (
                    SELECT 1 FROM incident_transition t
                    WHERE t.incident_id = i.id AND t.from_status IS NULL)
                {stored_stages}
            ) h
            ORDER BY at, seq
            """
        ),
        {"id": incident_id, "implied": IMPLIED_CREATION, "stored": STORED_STAGE},
    ).mappings()
    return [dict(r) for r in rows]


EXPLANATIONS = {
    "inside": ("位于网格 {grid} 内部", "inside grid {grid}"),
    "boundary": (
        "位于网格边界上，按规则归属编码最小的网格 {grid}",
        "on a grid boundary; by rule it goes to the lowest-coded grid {grid}",
    ),
    "nearest": (
        "不在任何网格内，距最近的网格 {grid} {distance:.1f} 米（容差内），就近分派",
        "in no grid; {distance:.1f} m from the nearest grid {grid}, within tolerance",
    ),
    "fallback": (
        "距所有网格超过容差，按属地兜底分派至镇街 {township}",
        "beyond the tolerance from every grid; falls to township {township} (属地兜底)",
    ),
}


def explain(conn: Connection, incident_id: int, scope: AreaScope | None = None) -> dict[str, Any]:
    """Which rule placed the incident, against which grid version, and how far away."""
    incident = get(conn, incident_id, scope)
    method = incident["assign_method"]
    version = None
    if incident["grid_id"] is not None:
        version = (
            conn.execute(
                text("SELECT id, code, valid_from, valid_to FROM grid WHERE id = :id"),
                {"id": incident["grid_id"]},
            )
            .mappings()
            .first()
        )
    if method is None:
        return {
            "id": incident_id,
            "method": None,
            "explanation_zh": "尚未分派",
            "explanation_en": "not assigned yet",
        }
    zh, en = EXPLANATIONS[method]
    facts = {
        "grid": incident["grid_code"],
        "township": incident["township_code"],
        "distance": incident["assign_distance_m"] or 0.0,
    }
    return {
        "id": incident_id,
        "method": method,
        "distance_m": incident["assign_distance_m"],
        "reported_at": incident["reported_at"],
        "grid_version": dict(version) if version else None,
        "codes": {
            k: incident[k]
            for k in ("district_code", "township_code", "community_code", "grid_code")
        },
        "units": {k: incident[k] for k in assignment.UNIT_COLUMNS},
        "assigned_at": incident["assigned_at"],
        "explanation_zh": zh.format(**facts),
        "explanation_en": en.format(**facts),
    }


@dataclass
class ReassignReport:
    """What a (re)assignment run did."""

    evaluated: int = 0
    moved: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    moves: list[tuple[str | None, str | None, int]] = field(default_factory=list)
    outside: list[int] = field(default_factory=list)


def reassign(
    conn: Connection,
    tolerance_m: float,
    ids: list[int] | None = None,
    *,
    bulk_from: int = assignment.PARALLEL_MIN_ROWS,
) -> ReassignReport:
    """Re-run the rules for the given incidents (all if ``None``) and store what changed.

    ``bulk_from`` incidents or more (a district redrawn, the demo city loaded) go the
    import's way: copied into a scratch table and assigned set-based by
    :func:`assignment.assign_table` (the fast path over fresh grid pieces, in parallel);
    fewer (an edit in the grid editor) straight through the exact engine, which needs no
    scratch tables. So does a role that may not create tables (API requests run as the
    bound role, with its row-level security). The rules and the answers are the same
    either way.
    """
    selection = "" if ids is None else " WHERE id = ANY(:ids)"
    params = {"ids": ids} if ids is not None else {}
    count = (
        len(ids)
        if ids is not None
        else int(conn.execute(text("SELECT count(*) FROM incident")).scalar_one())
    )
    may_create = conn.execute(
        text("SELECT has_schema_privilege(current_schema(), 'CREATE')")
    ).scalar_one()
    if count < bulk_from or not may_create:
        assignment.prepare_input(conn)
        conn.execute(
            text(
                "INSERT INTO assign_input (id, geom, at) "
                "SELECT id, geom, reported_at FROM incident" + selection
            ),
            params,
        )
        assignment.run(conn, tolerance_m)
        report = _store_reassignment(conn, "assign_output")
        report.evaluated = int(conn.execute(text("SELECT count(*) FROM assign_input")).scalar_one())
        report.outside = assignment.outside(conn)
        assignment.finish(conn)
        return report
    source = assignment.scratch_name("reassign_points")
    answer = assignment.scratch_name("reassign_answer")
    evaluated = conn.execute(
        text(
            f"CREATE UNLOGGED TABLE {source} AS "
            f"SELECT id, geom, reported_at AS at FROM incident{selection}"
        ),
        params,
    ).rowcount
    conn.execute(text(f"CREATE INDEX ON {source} USING gist (geom)"))
    result = assignment.assign_table(conn, source, tolerance_m)
    with assignment.parallel_plan(conn):
        conn.execute(text(f"CREATE UNLOGGED TABLE {answer} AS SELECT * FROM {result.relation()} o"))
    result.drop(conn)
    conn.execute(text(f"DROP TABLE {source}"))
    report = _store_reassignment(conn, answer)
    conn.execute(text(f"DROP TABLE {answer}"))
    report.evaluated = evaluated
    report.outside = result.outside
    return report


def _store_reassignment(conn: Connection, answer: str) -> ReassignReport:
    """Write the new assignments in ``answer`` (id + ``OUTPUT_COLUMNS``) that differ from
    the stored ones; report the moves between grids and the rules used."""
    report = ReassignReport()
    changed = " OR ".join(f"i.{c} IS DISTINCT FROM o.{c}" for c in OUTPUT_COLUMNS)
    report.moves = [
        (r.before, r.after, int(r.n))
        for r in conn.execute(
            text(
                f"""
                SELECT i.grid_code AS before, o.grid_code AS after, count(*) AS n
                FROM incident i JOIN {answer} o ON o.id = i.id
                WHERE i.grid_id IS NOT NULL AND i.grid_id IS DISTINCT FROM o.grid_id
                GROUP BY 1, 2 ORDER BY n DESC, 1, 2
                """
            )
        )
    ]
    assignments = ", ".join(f"{c} = o.{c}" for c in OUTPUT_COLUMNS)
    report.moved = conn.execute(
        text(
            f"UPDATE incident i SET {assignments}, assigned_at = now() FROM {answer} o "
            f"WHERE o.id = i.id AND ({changed})"
        )
    ).rowcount
    report.by_method = {
        str(r.assign_method): int(r.n)
        for r in conn.execute(
            text(f"SELECT assign_method, count(*) AS n FROM {answer} GROUP BY 1 ORDER BY 1")
        )
    }
    return report


def affected_by_changes(conn: Connection, since: datetime, tolerance_m: float) -> list[int]:
    """Incidents whose place and time a grid or unit change since ``since`` touches.

    A changed grid version touches the incidents reported during its validity within the
    tolerance of it, and every incident assigned to it; a changed department unit touches
    the incidents inside it.
    """
    degrees = tolerance_m / 60_000.0 + 1e-9
    # A UNION of joins driven by the few changed rows, so that each part probes the
    # incident point index (one OR over EXISTS scanned every incident: ~40 s on 200,000).
    units = "\n".join(
        f"""
            UNION
            SELECT i.id FROM {layer} u JOIN incident i ON ST_Intersects(u.geom, i.geom)
            WHERE u.updated_at >= :since"""
        for layer in ("police_unit", "urban_unit", "emergency_unit")
    )
    rows = conn.execute(
        text(
            f"""
            SELECT i.id FROM grid g
            JOIN incident i ON ST_DWithin(g.geom, i.geom, :degrees)
                 AND i.reported_at >= g.valid_from
                 AND (g.valid_to IS NULL OR i.reported_at < g.valid_to)
            WHERE g.updated_at >= :since
            UNION
            SELECT i.id FROM incident i
            WHERE i.grid_id IN (SELECT id FROM grid WHERE updated_at >= :since)
            {units}
            ORDER BY 1
            """
        ),
        {"since": since, "degrees": degrees},
    )
    return [int(r) for r in rows.scalars()]


def last_assignment(conn: Connection) -> datetime | None:
    value = conn.execute(text("SELECT max(assigned_at) FROM incident")).scalar_one()
    return value if isinstance(value, datetime) else None
