"""Grid edits against the database: every write goes through :func:`apply_edit`.

One edit, in the caller's transaction:

1. takes a transaction-scoped advisory lock on the community, so that edits of
   neighbouring grids are serialised (grids never leave their community, so two
   communities cannot clash);
2. reads the grids in force *after* the lock, checks the client's ETags (412 when stale,
   428 when missing), builds and validates the result in pure geometry
   (:mod:`gridgov.gis.grid_edit`);
3. closes the old versions (``valid_to``) and opens new ones (``valid_from``) at one
   instant, gives new grids the next unused codes, re-codes the buildings, sites and
   rentals in the changed area, recounts households from the buildings, refreshes the
   docking table, reassigns the incidents the change touches
   (:func:`gridgov.layers.incidents.reassign`) and writes the edit log with who and why.

``target`` names where the edit goes: ``"live"`` (the steps above), or an
:class:`EditTarget` such as a plan (:class:`gridgov.layers.plans.PlanTarget`), which
supplies its own lock, grid state and write while the ETag check and the validation
stay this function's. Publishing a plan writes through :func:`write_changes`, the live
write path of step 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import bindparam

from gridgov.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from gridgov.gis.coords import to_projected
from gridgov.gis.grid_codes import GRID_CODE, MAX_SEQUENCE, codes_for_new, next_sequence
from gridgov.gis.grid_edit import (
    EDITABLE_ATTRIBUTES,
    GRID_LABELS,
    Changes,
    CommunityState,
    Labels,
    Operation,
    Options,
    validate,
)
from gridgov.layers import incidents
from gridgov.layers.assignment import refresh_grid_units
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from gridgov.layers.spec import AdminLevel

# First key of the two-key advisory lock: "gred" (grid edit); the second is the community.
LOCK_NAMESPACE: Final = 0x67726564

_IN_FORCE = "g.valid_from <= :t AND (g.valid_to IS NULL OR g.valid_to > :t)"
_VERSION_COLUMNS = (
    "g.id, g.code, g.district_code, g.township_code, g.community_code, g.name, g.kind, "
    "g.dedicated_to, g.households, g.population, g.worker_name, g.synthetic, g.valid_from, "
    "g.valid_to, g.updated_at, ST_AsBinary(g.geom) AS wkb"
)


@dataclass(frozen=True)
class GridVersion:
    """One stored version of a grid."""

    id: int
    code: str
    district_code: str
    township_code: str
    community_code: str
    attrs: dict[str, Any]
    valid_from: datetime
    valid_to: datetime | None
    updated_at: datetime
    geometry: BaseGeometry
    etag_prefix: str = ""  # "p" for a plan's copy, so it never passes for a live ETag

    @property
    def etag(self) -> str:
        """Strong ETag: the version id and its last change, so any write changes it."""
        stamp = int(self.updated_at.timestamp() * 1_000_000)
        return f'"{self.etag_prefix}{self.id}-{stamp}"'


def _version(row: Any) -> GridVersion:
    return GridVersion(
        id=int(row.id),
        code=row.code,
        district_code=row.district_code,
        township_code=row.township_code,
        community_code=row.community_code,
        attrs={
            "name": row.name,
            "kind": row.kind,
            "dedicated_to": row.dedicated_to,
            "worker_name": row.worker_name,
            "households": row.households,
            "population": row.population,
            "synthetic": row.synthetic,
        },
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        updated_at=row.updated_at,
        geometry=shapely.from_wkb(bytes(row.wkb)),
    )


def _no_grid(code: str) -> NotFoundError:
    return NotFoundError(
        f"网格 {code} 不存在或已撤销", f"no grid {code} in force", public={"code": code}
    )


def current(conn: Connection, code: str) -> GridVersion:
    """The version of ``code`` in force now, or 404."""
    row = conn.execute(
        text(f"SELECT {_VERSION_COLUMNS} FROM grid g WHERE g.code = :code AND {_IN_FORCE}"),
        {"code": code, "t": _now(conn)},
    ).first()
    if row is None:
        raise _no_grid(code)
    return _version(row)


def history(conn: Connection, code: str) -> list[GridVersion]:
    """Every version of ``code``, oldest first (404 when the code was never used)."""
    rows = conn.execute(
        text(f"SELECT {_VERSION_COLUMNS} FROM grid g WHERE g.code = :code ORDER BY g.valid_from"),
        {"code": code},
    ).all()
    if not rows:
        raise NotFoundError(f"网格编码 {code} 从未使用", f"grid code {code} was never used")
    return [_version(r) for r in rows]


def in_force(conn: Connection, community_code: str) -> list[GridVersion]:
    """The grids of one community in force now, by code."""
    rows = conn.execute(
        text(
            f"SELECT {_VERSION_COLUMNS} FROM grid g "
            f"WHERE g.community_code = :c AND {_IN_FORCE} ORDER BY g.code"
        ),
        {"c": community_code, "t": _now(conn)},
    ).all()
    return [_version(r) for r in rows]


def _now(conn: Connection) -> datetime:
    moment: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return moment


@dataclass
class EditResult:
    edit_id: int
    operation: str
    community_code: str
    at: datetime
    versions: list[GridVersion]  # the new versions (created, changed and following grids)
    created: list[str]  # codes of new grids
    retired: list[str]
    followers: list[str]  # neighbours that took part by take / give
    incidents_evaluated: int = 0
    incidents_moved: int = 0
    incident_moves: list[tuple[str | None, str | None, int]] = field(default_factory=list)


def _community_of(operation: Operation, community_code: str | None) -> str:
    named = operation.named
    communities = {code[:12] for code in named}
    for code in named:
        if not GRID_CODE.match(code):
            raise InvalidInputError(f"网格编码格式错误：{code}", f"not a grid code: {code}")
    if community_code is not None:
        communities.add(community_code)
    if len(communities) != 1:
        raise InvalidInputError(
            "一次编辑只能涉及同一村社区的网格",
            "one edit may only touch grids of one community",
            public={"reason": "several_communities"},
        )
    return communities.pop()


def lock_community(conn: Connection, community_code: str) -> None:
    """Serialise the edits of one community until the transaction ends."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), hashtext(:c))"),
        {"ns": LOCK_NAMESPACE, "c": community_code},
    )


def live_state(
    conn: Connection, community_code: str, at: datetime
) -> tuple[CommunityState, tuple[dict[str, GridVersion], bool]]:
    """The community, its grids in force at ``at`` (locked), and whether it is synthetic."""
    community = conn.execute(
        text("SELECT synthetic, ST_AsBinary(geom) AS wkb FROM community WHERE code = :c"),
        {"c": community_code},
    ).first()
    if community is None:
        raise NotFoundError(
            f"村社区 {community_code} 不存在",
            f"no community {community_code}",
            public={"community_code": community_code},
        )
    rows = conn.execute(
        text(
            f"SELECT {_VERSION_COLUMNS} FROM grid g "
            f"WHERE g.community_code = :c AND {_IN_FORCE} ORDER BY g.code FOR UPDATE"
        ),
        {"c": community_code, "t": at},
    ).all()
    versions = {r.code: _version(r) for r in rows}
    state = CommunityState(
        community_code=community_code,
        community=shapely.from_wkb(bytes(community.wkb)),
        grids={code: v.geometry for code, v in versions.items()},
        attrs={code: v.attrs for code, v in versions.items()},
    )
    return state, (versions, bool(community.synthetic))


class Tagged(Protocol):
    """Anything edited under an ETag (a grid version, a department unit)."""

    @property
    def etag(self) -> str: ...


def check_etags(
    versions: Mapping[str, Tagged],
    named: Sequence[str],
    if_match: Sequence[str] | None,
    labels: Labels = GRID_LABELS,
) -> None:
    """Every grid (or unit) the edit names must be in force and match one of the client's
    ETags: 404 when gone, 428 without ``If-Match``, 412 when stale."""
    what_zh, what_en = labels.member_zh, labels.member_en
    for code in named:
        if code not in versions:
            if labels is GRID_LABELS:
                raise _no_grid(code)
            raise NotFoundError(
                f"{what_zh} {code} 不存在或已撤销",
                f"no {what_en} {code} in force",
                public={"code": code},
            )
    if not named:
        return
    if if_match is None or not [tag for tag in if_match if tag.strip()]:
        raise PreconditionRequiredError(
            f"修改{what_zh}须在 If-Match 中附上读取时的 ETag（先 GET 该{what_zh}）",
            f"send the ETag you read in If-Match (GET the {what_en} first)",
            public={"codes": ",".join(named)},
        )
    tags = {tag.strip() for tag in if_match}
    stale = [code for code in named if versions[code].etag not in tags]
    if stale:
        raise PreconditionFailedError(
            f"{what_zh} {'、'.join(stale)} 已被他人修改，请重新读取后再编辑",
            f"{what_en} {', '.join(stale)} changed since you read it; read it again and redo "
            "the edit",
            public={
                "codes": ",".join(stale),
                "current_etags": ",".join(versions[c].etag for c in stale),
            },
        )


class EditTarget(Protocol):
    """Somewhere else than the live grids an edit can go (a plan)."""

    def begin(
        self, conn: Connection, community_code: str
    ) -> tuple[datetime, CommunityState, dict[str, GridVersion], bool]:
        """Lock, then the moment, the state, its versions (for ETags) and synthetic."""
        ...

    def write(
        self,
        conn: Connection,
        registry: Registry,
        operation: str,
        state: CommunityState,
        versions: dict[str, GridVersion],
        synthetic: bool,
        changes: Changes,
        at: datetime,
        *,
        actor: str,
        reason: str,
        options: Options,
    ) -> EditResult:
        """Store validated changes."""
        ...


Target = Literal["live"] | EditTarget


def apply_edit(
    conn: Connection,
    registry: Registry,
    operation: Operation,
    *,
    actor: str,
    reason: str,
    if_match: Sequence[str] | None,
    options: Options,
    tolerance_m: float,
    community_code: str | None = None,
    target: Target = "live",
    scope: AreaScope | None = None,
) -> EditResult:
    """Validate and commit one grid edit (see the module docstring); refusals raise and
    leave nothing written (the caller's transaction is rolled back)."""
    if not actor.strip() or not reason.strip():
        raise InvalidInputError(
            "每次网格调整都须注明操作人与原因", "every grid edit needs an actor and a reason"
        )
    community = _community_of(operation, community_code)
    if scope is not None and not scope.covers_code(community):
        raise PermissionDeniedError(
            f"无权调整村社区 {community} 的网格（不在账户的区域内）",
            f"the grids of community {community} lie outside the account's area",
        )
    if target == "live":
        lock_community(conn, community)
        at = _now(conn)
        state, (versions, synthetic) = live_state(conn, community, at)
    else:
        at, state, versions, synthetic = target.begin(conn, community)
    check_etags(versions, operation.named, if_match)
    changes = validate(state, operation.build(state), options)
    if target != "live":
        return target.write(
            conn,
            registry,
            operation.operation,
            state,
            versions,
            synthetic,
            changes,
            at,
            actor=actor,
            reason=reason,
            options=options,
        )
    return write_changes(
        conn,
        registry,
        operation.operation,
        state,
        versions,
        synthetic,
        changes,
        at,
        actor=actor,
        reason=reason,
        options=options,
        tolerance_m=tolerance_m,
    )


def write_changes(
    conn: Connection,
    registry: Registry,
    operation: str,
    state: CommunityState,
    versions: dict[str, GridVersion],
    synthetic: bool,
    changes: Changes,
    at: datetime,
    *,
    actor: str,
    reason: str,
    options: Options,
    tolerance_m: float,
    new_codes: Sequence[str] | None = None,
    counts: Mapping[str, tuple[int | None, int | None]] | None = None,
    since: datetime | None = None,
) -> EditResult:
    """Step 3 of the module docstring: close the old versions and open new ones at ``at``.

    A plan being published gives the codes it already showed (``new_codes``); with a
    future ``at`` it also gives the households and population it counted (``counts``),
    since the buildings keep the codes of the grids in force today until then (they are
    neither re-coded nor recounted now). ``since`` is when this write began (default
    ``at``): the incidents the new versions touch are found from it.
    """
    touched = changes.touched
    scheduled = conn.execute(
        text("SELECT DISTINCT code FROM grid WHERE code = ANY(:codes) AND valid_from > :t"),
        {"codes": touched, "t": at},
    ).scalars()
    later = sorted(scheduled)
    if later:
        raise ConflictError(
            f"网格 {'、'.join(later)} 已有尚未生效的新版本，不能再直接修改",
            f"grid {', '.join(later)} already has a version scheduled to take force later",
            public={"codes": ",".join(later)},
        )
    closed = conn.execute(
        text(
            f"UPDATE grid g SET valid_to = :t, updated_at = clock_timestamp() "
            f"WHERE g.code = ANY(:codes) AND {_IN_FORCE} RETURNING g.id"
        ),
        {"codes": touched, "t": at},
    )
    old_ids = sorted(int(r) for r in closed.scalars())
    ever_used = conn.execute(
        text("SELECT DISTINCT code FROM grid WHERE community_code = :c"),
        {"c": state.community_code},
    )
    used = list(ever_used.scalars())
    if new_codes is None:
        new_codes = next_codes(state.community_code, used, changes)
    else:
        taken = sorted(set(new_codes) & set(used))
        if taken or len(new_codes) != len(changes.new):
            raise ConflictError(
                f"网格编码 {'、'.join(taken)} 已被使用，不能再分配",
                f"grid code {', '.join(taken)} is already used",
                public={"codes": ",".join(taken)},
            )
        new_codes = list(new_codes)
    rows: list[dict[str, Any]] = []
    reshaped: list[str] = []
    for code in touched:
        geom = changes.geometries.get(code, versions[code].geometry)
        if code in changes.geometries and changes.geometries[code] is None:
            continue
        assert geom is not None
        old = versions[code]
        keep_counts = code not in changes.geometries
        if not keep_counts:
            reshaped.append(code)
        values = changes.attrs.get(code, old.attrs)
        households, population = (
            (old.attrs["households"], old.attrs["population"])
            if keep_counts
            else (counts or {}).get(code, (None, None))
        )
        rows.append(
            _row(
                code,
                state.community_code,
                values,
                geom,
                old.attrs["synthetic"],
                households,
                population,
            )
        )
    for code, (geom, values) in zip(new_codes, changes.new, strict=True):
        reshaped.append(code)
        households, population = (counts or {}).get(code, (None, None))
        rows.append(
            _row(code, state.community_code, values, geom, synthetic, households, population)
        )
    new_ids: list[int] = []
    for row in rows:
        new_ids.append(
            int(
                conn.execute(
                    text(
                        """
                        INSERT INTO grid (code, district_code, township_code, community_code,
                                          name, kind, dedicated_to, worker_name, households,
                                          population, synthetic, valid_from, updated_at, geom)
                        VALUES (:code, :district, :township, :community, :name, :kind,
                                :dedicated_to, :worker_name, :households, :population,
                                :synthetic, :t, clock_timestamp(),
                                ST_Multi(ST_GeomFromWKB(:wkb, 4490)))
                        RETURNING id
                        """
                    ),
                    {**row, "t": at},
                ).scalar_one()
            )
        )
    region = shapely.union_all(
        [versions[c].geometry for c in touched if c in versions]
        + [g for g in changes.geometries.values() if g is not None]
        + [g for g, _ in changes.new]
    )
    if counts is None:
        _recode_carried(conn, registry, state.community_code, region, at)
        _recount(conn, state.community_code, reshaped, at)
    if new_ids:
        refresh_grid_units(conn, new_ids)
    report = incidents.reassign(
        conn, tolerance_m, incidents.affected_by_changes(conn, since or at, tolerance_m)
    )
    retired = sorted(c for c, g in changes.geometries.items() if g is None)
    created = sorted(new_codes)
    details = {
        "options": {"overlap": options.overlap, "gap": options.gap},
        "followers": list(changes.followers),
        "incidents_evaluated": report.evaluated,
        "incident_moves": [[a, b, n] for a, b, n in report.moves],
    }
    edit_id = conn.execute(
        text(
            """
            INSERT INTO grid_edit (at, actor, reason, operation, community_code, codes,
                                   retired_codes, old_versions, new_versions,
                                   incidents_moved, details)
            VALUES (:t, :actor, :reason, :operation, :community, :codes, :retired, :old,
                    :new, :moved, :details)
            RETURNING id
            """
        ).bindparams(bindparam("details", type_=JSONB)),
        {
            "t": at,
            "actor": actor.strip(),
            "reason": reason.strip(),
            "operation": operation,
            "community": state.community_code,
            "codes": sorted({*touched, *created}),
            "retired": retired,
            "old": old_ids,
            "new": new_ids,
            "moved": report.moved,
            "details": details,
        },
    ).scalar_one()
    stored = conn.execute(
        text(f"SELECT {_VERSION_COLUMNS} FROM grid g WHERE g.id = ANY(:ids) ORDER BY g.code"),
        {"ids": new_ids},
    ).all()
    return EditResult(
        edit_id=int(edit_id),
        operation=operation,
        community_code=state.community_code,
        at=at,
        versions=[_version(r) for r in stored],
        created=created,
        retired=retired,
        followers=list(changes.followers),
        incidents_evaluated=report.evaluated,
        incidents_moved=report.moved,
        incident_moves=report.moves,
    )


def next_codes(community_code: str, ever_used: list[str], changes: Changes) -> list[str]:
    """The next unused codes (retired ones are never reused), in reading order."""
    if not changes.new:
        return []
    if next_sequence(ever_used) + len(changes.new) - 1 > MAX_SEQUENCE:
        raise InvalidInputError(
            f"村社区 {community_code} 的网格序号已用尽（最多 {MAX_SEQUENCE}）",
            f"community {community_code} has used every grid sequence up to {MAX_SEQUENCE}",
        )
    points = [g.representative_point() for g, _ in changes.new]
    x, y = to_projected(np.array([p.x for p in points]), np.array([p.y for p in points]))
    return codes_for_new(community_code, ever_used, x, y)


def _row(
    code: str,
    community_code: str,
    values: dict[str, Any],
    geom: BaseGeometry,
    synthetic: bool,
    households: int | None,
    population: int | None,
) -> dict[str, Any]:
    attrs = {name: values.get(name) for name in EDITABLE_ATTRIBUTES}
    attrs["kind"] = attrs["kind"] or "base"
    return {
        "code": code,
        "district": community_code[:6],
        "township": community_code[:9],
        "community": community_code,
        **attrs,
        "households": households,
        "population": population,
        "synthetic": bool(synthetic),
        "wkb": shapely.to_wkb(geom),
    }


def _recode_carried(
    conn: Connection, registry: Registry, community_code: str, region: BaseGeometry, at: datetime
) -> None:
    """Buildings, rentals, sites and hazards in the changed area take the grid they now lie
    in (their representative point; lowest code on a shared edge). Incidents are not
    touched here: they keep the grid of their time and are reassigned by the rules."""
    for spec in registry:
        if AdminLevel.GRID not in spec.carries or spec.id == "incident":
            continue
        column = spec.admin_column(AdminLevel.GRID)
        conn.execute(
            text(
                f"""
                WITH placed AS (
                    SELECT p.id,
                           (SELECT g.code FROM grid g
                            WHERE g.community_code = :c AND {_IN_FORCE}
                              AND ST_Intersects(g.geom, ST_PointOnSurface(p.geom))
                            ORDER BY g.code LIMIT 1) AS code
                    FROM {spec.table_name} p
                    WHERE ST_Intersects(p.geom, ST_GeomFromWKB(:region, 4490))
                )
                UPDATE {spec.table_name} p SET {column} = placed.code, updated_at = now()
                FROM placed
                WHERE placed.id = p.id AND p.{column} IS DISTINCT FROM placed.code
                  AND (placed.code IS NOT NULL OR p.community_code = :c)
                """
            ),
            {"c": community_code, "t": at, "region": shapely.to_wkb(region)},
        )


def _recount(conn: Connection, community_code: str, codes: list[str], at: datetime) -> None:
    """Households and population of reshaped grids are the sums of their buildings (when
    the community has buildings at all; otherwise they stay unknown, never invented)."""
    if not codes:
        return
    conn.execute(
        text(
            f"""
            UPDATE grid g SET households = COALESCE(s.households, 0),
                              population = COALESCE(s.residents, 0)
            FROM (SELECT code FROM unnest(CAST(:codes AS text[])) AS code) c
            LEFT JOIN (SELECT grid_code, sum(households) AS households,
                              sum(residents) AS residents
                       FROM building WHERE community_code = :c GROUP BY grid_code) s
                   ON s.grid_code = c.code
            WHERE g.code = c.code AND {_IN_FORCE}
              AND EXISTS (SELECT 1 FROM building b WHERE b.community_code = :c)
            """
        ),
        {"codes": codes, "c": community_code, "t": at},
    )


def edit_log(
    conn: Connection,
    community_code: str | None,
    code: str | None,
    limit: int,
    scope: AreaScope | None = None,
) -> list[dict[str, Any]]:
    """The newest edits of a community and / or a grid code, within the caller's area."""
    prefixes = None if scope is None or scope.codes is None else [f"{c}%" for c in scope.codes]
    rows = conn.execute(
        text(
            """
            SELECT id, at, actor, reason, operation, community_code, codes, retired_codes,
                   old_versions, new_versions, incidents_moved, details
            FROM grid_edit
            WHERE (CAST(:c AS text) IS NULL OR community_code = :c)
              AND (CAST(:code AS text) IS NULL OR :code = ANY(codes))
              AND (CAST(:p AS text[]) IS NULL OR community_code LIKE ANY(:p)
                   OR EXISTS (SELECT 1 FROM unnest(codes) g WHERE g LIKE ANY(:p)))
            ORDER BY at DESC, id DESC LIMIT :limit
            """
        ),
        {"c": community_code, "code": code, "limit": limit, "p": prefixes},
    ).mappings()
    return [dict(r) for r in rows]
