"""Plans (网格调整方案): named sets of grid edits not yet in force, and every statement on them.

A plan covers one township or one community. When it is made it copies the grids of its
area in force now into ``plan_grid`` (each row remembers the live version it came from);
edits go into that copy through the same :func:`gridgov.layers.grid_edit.apply_edit`
(target :class:`PlanTarget`: same validation, ETags, refusals), serialised per plan.
Live grids never change until the plan is published: then, per community it changed,
the plan's grids become new live versions from the effective date through the live
write path (:func:`gridgov.layers.grid_edit.write_changes`), after checking that the
live grids are still the ones the plan started from (409 naming the grids otherwise).

Workflow: draft → submitted (read-only) → approved → published; a submitted or
approved plan may be rejected back to draft with a note.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import bindparam

from gridgov.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from gridgov.gis.grid_edit import (
    EDITABLE_ATTRIBUTES,
    Changes,
    CommunityState,
    EditConflictError,
    EditProblem,
    Options,
    validate,
)
from gridgov.gis.measures import WorkloadWeights, area_m2, balance, polygon_parts
from gridgov.layers import grid_edit, measures
from gridgov.layers.grid_edit import EditResult, GridVersion
from gridgov.layers.measures import Period
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope

# First key of the per-plan advisory lock: "plan"; the second is the plan id.
LOCK_NAMESPACE: Final = 0x706C616E
CHANGES: Final = ("unchanged", "changed", "created", "retired")
MOVE_LAYERS: Final = ("building", "key_site", "incident")
LOCAL_TIME: Final = ZoneInfo("Asia/Shanghai")  # effective dates are Beijing days

_PLAN_COLUMNS = (
    "id, name, status, origin, district_code, township_code, community_code, reason, author, "
    "created_at, updated_at, submitted_at, submitted_by, approved_at, approved_by, "
    "published_at, published_by, effective_from, note, unit_layer, unit_code"
)
_GRID_COLUMNS = (
    "p.id, p.code, p.community_code, p.base_id, p.base_updated_at, p.retired, p.name, p.kind, "
    "p.dedicated_to, p.worker_name, p.households, p.population, p.synthetic, p.updated_at, "
    "ST_AsBinary(p.geom) AS wkb, b.name AS base_name, b.kind AS base_kind, "
    "b.dedicated_to AS base_dedicated_to, b.worker_name AS base_worker_name, "
    "ST_AsBinary(b.geom) AS base_wkb"
)
_IN_FORCE_NOW = "g.valid_from <= :t AND (g.valid_to IS NULL OR g.valid_to > :t)"


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Plan:
    id: int
    name: str
    status: str
    origin: str
    district_code: str
    township_code: str
    community_code: str | None
    reason: str
    author: str
    row: Mapping[str, Any]

    @property
    def area_code(self) -> str:
        """The community code for a community plan, else the township code."""
        return self.community_code or self.township_code

    def as_dict(self) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.row.items()}
        out["area_code"] = self.area_code
        out["level"] = "community" if self.community_code else "township"
        out["kind"] = "unit" if self.unit_layer else "grid"
        return out

    @property
    def unit_layer(self) -> str | None:
        """The unit layer of a unit plan (:mod:`gridgov.layers.unit_plans`), else None."""
        value = self.row.get("unit_layer")
        return str(value) if value else None


def _plan(row: Any) -> Plan:
    values = dict(row._mapping)
    return Plan(
        id=int(row.id),
        name=row.name,
        status=row.status,
        origin=row.origin,
        district_code=row.district_code,
        township_code=row.township_code,
        community_code=row.community_code,
        reason=row.reason,
        author=row.author,
        row=values,
    )


def _no_plan(plan_id: int) -> NotFoundError:
    return NotFoundError(
        f"方案 {plan_id} 不存在", f"no plan {plan_id}", public={"plan_id": plan_id}
    )


def get(conn: Connection, plan_id: int, scope: AreaScope | None = None) -> Plan:
    """The plan, or 404 (also when it lies outside ``scope``, exactly as if missing)."""
    row = conn.execute(
        text(f"SELECT {_PLAN_COLUMNS} FROM plan WHERE id = :id"), {"id": plan_id}
    ).first()
    if row is None:
        raise _no_plan(plan_id)
    plan = _plan(row)
    if scope is not None and not scope.covers_code(plan.area_code):
        raise _no_plan(plan_id)
    return plan


def search(
    conn: Connection,
    scope: AreaScope | None,
    status: str | None = None,
    township_code: str | None = None,
    limit: int = 100,
) -> list[Plan]:
    """Plans (newest first) whose area lies inside ``scope``."""
    prefixes = None if scope is None or scope.codes is None else [f"{c}%" for c in scope.codes]
    rows = conn.execute(
        text(
            f"""
            SELECT {_PLAN_COLUMNS} FROM plan
            WHERE (CAST(:status AS text) IS NULL OR status = :status)
              AND (CAST(:township AS text) IS NULL OR township_code = :township)
              AND (CAST(:p AS text[]) IS NULL
                   OR coalesce(community_code, township_code) LIKE ANY(:p))
            ORDER BY id DESC LIMIT :limit
            """
        ),
        {"status": status, "township": township_code, "p": prefixes, "limit": limit},
    ).all()
    return [_plan(r) for r in rows]


def create(
    conn: Connection,
    *,
    name: str,
    actor: str,
    reason: str,
    township_code: str | None = None,
    community_code: str | None = None,
    origin: str = "editor",
) -> int:
    """A draft plan for one township or one community, holding a copy of its grids in
    force now (the live versions it is based on)."""
    if (township_code is None) == (community_code is None):
        raise InvalidInputError(
            "方案须指定一个镇街或一个村社区（二选一）",
            "give either township_code or community_code, not both",
        )
    if not name.strip() or not reason.strip() or not actor.strip():
        raise InvalidInputError(
            "方案须有名称、原因与创建人", "a plan needs a name, reason and actor"
        )
    if community_code is not None:
        township = conn.execute(
            text("SELECT township_code FROM community WHERE code = :c"), {"c": community_code}
        ).scalar_one_or_none()
        if township is None:
            raise NotFoundError(f"村社区 {community_code} 不存在", f"no community {community_code}")
        township_code = str(township)
    else:
        assert township_code is not None
        found = conn.execute(
            text("SELECT 1 FROM township WHERE code = :c"), {"c": township_code}
        ).first()
        if found is None:
            raise NotFoundError(f"镇街 {township_code} 不存在", f"no township {township_code}")
    plan_id = int(
        conn.execute(
            text(
                """
                INSERT INTO plan (name, origin, district_code, township_code, community_code,
                                  reason, author)
                VALUES (:name, :origin, :district, :township, :community, :reason, :author)
                RETURNING id
                """
            ),
            {
                "name": name.strip(),
                "origin": origin,
                "district": township_code[:6],
                "township": township_code,
                "community": community_code,
                "reason": reason.strip(),
                "author": actor.strip(),
            },
        ).scalar_one()
    )
    conn.execute(
        text(
            f"""
            INSERT INTO plan_grid (plan_id, code, community_code, base_id, base_updated_at,
                                   name, kind, dedicated_to, worker_name, households,
                                   population, synthetic, geom)
            SELECT :plan, g.code, g.community_code, g.id, g.updated_at, g.name, g.kind,
                   g.dedicated_to, g.worker_name, g.households, g.population, g.synthetic,
                   ST_Multi(g.geom)
            FROM grid g
            WHERE {_IN_FORCE_NOW}
              AND (CAST(:community AS text) IS NULL OR g.community_code = :community)
              AND g.township_code = :township
            ORDER BY g.code
            """
        ),
        {
            "plan": plan_id,
            "t": _now(conn),
            "community": community_code,
            "township": township_code,
        },
    )
    return plan_id


def _now(conn: Connection) -> datetime:
    moment: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return moment


def lock_plan(conn: Connection, plan_id: int) -> Plan:
    """Serialise everything done to one plan until the transaction ends."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), CAST(:id AS integer))"),
        {"ns": LOCK_NAMESPACE, "id": plan_id % 2_147_483_647},
    )
    row = conn.execute(
        text(f"SELECT {_PLAN_COLUMNS} FROM plan WHERE id = :id FOR UPDATE"), {"id": plan_id}
    ).first()
    if row is None:
        raise _no_plan(plan_id)
    return _plan(row)


def require_status(plan: Plan, *allowed: str) -> None:
    if plan.status not in allowed:
        titles = {
            "draft": "草稿",
            "submitted": "已提交",
            "approved": "已批准",
            "published": "已发布",
        }
        raise ConflictError(
            f"方案 {plan.id} 当前为“{titles[plan.status]}”，不能进行此操作"
            + ("（已提交的方案只读）" if plan.status == "submitted" else ""),
            f"plan {plan.id} is {plan.status}; this needs {' or '.join(allowed)}",
            public={"status": plan.status},
        )


# --------------------------------------------------------------------------- plan grids


@dataclass(frozen=True)
class PlanGrid:
    """One grid of a plan, with the live version it started from (if any)."""

    version: GridVersion
    base_id: int | None
    base_updated_at: datetime | None
    retired: bool
    change: str  # unchanged | changed | created | retired


def _grid(row: Any, plan: Plan) -> PlanGrid:
    geom = shapely.from_wkb(bytes(row.wkb))
    attrs = {
        "name": row.name,
        "kind": row.kind,
        "dedicated_to": row.dedicated_to,
        "worker_name": row.worker_name,
        "households": row.households,
        "population": row.population,
        "synthetic": row.synthetic,
    }
    version = GridVersion(
        id=int(row.id),
        code=row.code,
        district_code=row.code[:6],
        township_code=row.code[:9],
        community_code=row.community_code,
        attrs=attrs,
        valid_from=plan.row["created_at"],
        valid_to=None,
        updated_at=row.updated_at,
        geometry=geom,
        etag_prefix="p",
    )
    if row.retired:
        change = "retired"
    elif row.base_id is None:
        change = "created"
    elif row.base_wkb is None:
        change = "changed"  # the base version is gone from the database: say so
    else:
        same_attrs = all(
            attrs[name] == getattr(row, f"base_{name}") for name in EDITABLE_ATTRIBUTES
        )
        same_geom = bool(geom.equals(shapely.from_wkb(bytes(row.base_wkb))))
        change = "unchanged" if same_attrs and same_geom else "changed"
    return PlanGrid(
        version=version,
        base_id=None if row.base_id is None else int(row.base_id),
        base_updated_at=row.base_updated_at,
        retired=bool(row.retired),
        change=change,
    )


def grids(
    conn: Connection, plan: Plan, community_code: str | None = None, lock: bool = False
) -> list[PlanGrid]:
    """The plan's grids by code, retired ones included (not those it created and retired)."""
    rows = conn.execute(
        text(
            f"""
            SELECT {_GRID_COLUMNS} FROM plan_grid p LEFT JOIN grid b ON b.id = p.base_id
            WHERE p.plan_id = :plan
              AND (CAST(:c AS text) IS NULL OR p.community_code = :c)
              AND NOT (p.retired AND p.base_id IS NULL)
            ORDER BY p.code
            """
            + (" FOR UPDATE OF p" if lock else "")
        ),
        {"plan": plan.id, "c": community_code},
    ).all()
    return [_grid(r, plan) for r in rows]


def grid(conn: Connection, plan: Plan, code: str) -> GridVersion:
    """One grid of the plan (not retired in it), or 404."""
    for item in grids(conn, plan, code[:12]):
        if item.version.code == code and not item.retired:
            return item.version
    raise NotFoundError(
        f"方案 {plan.id} 中没有网格 {code}（或已撤销）",
        f"no grid {code} in plan {plan.id} (or retired in it)",
        public={"code": code},
    )


def live_grids(conn: Connection, plan: Plan) -> list[GridVersion]:
    """Today's grids of the plan's area, in force now."""
    communities = (
        [plan.community_code]
        if plan.community_code
        else list(
            conn.execute(
                text("SELECT code FROM community WHERE township_code = :t ORDER BY code"),
                {"t": plan.township_code},
            ).scalars()
        )
    )
    out: list[GridVersion] = []
    for code in communities:
        out += grid_edit.in_force(conn, code)
    return out


@dataclass(frozen=True)
class PlanTarget:
    """Edits into plan ``plan_id`` (see :class:`gridgov.layers.grid_edit.EditTarget`)."""

    plan_id: int

    def begin(
        self, conn: Connection, community_code: str
    ) -> tuple[datetime, CommunityState, dict[str, GridVersion], bool]:
        plan = lock_plan(conn, self.plan_id)
        require_status(plan, "draft")
        if not community_code.startswith(plan.area_code):
            raise InvalidInputError(
                f"村社区 {community_code} 不在方案 {plan.id} 的范围（{plan.area_code}）内",
                f"community {community_code} lies outside plan {plan.id} ({plan.area_code})",
                public={"community_code": community_code},
            )
        community = conn.execute(
            text("SELECT synthetic, ST_AsBinary(geom) AS wkb FROM community WHERE code = :c"),
            {"c": community_code},
        ).first()
        if community is None:
            raise NotFoundError(f"村社区 {community_code} 不存在", f"no community {community_code}")
        current = [g for g in grids(conn, plan, community_code, lock=True) if not g.retired]
        versions = {g.version.code: g.version for g in current}
        state = CommunityState(
            community_code=community_code,
            community=shapely.from_wkb(bytes(community.wkb)),
            grids={code: v.geometry for code, v in versions.items()},
            attrs={code: v.attrs for code, v in versions.items()},
        )
        return _now(conn), state, versions, bool(community.synthetic)

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
        return _write_plan(
            conn, self.plan_id, operation, state, versions, synthetic, changes, at, actor, reason
        )


def _write_plan(
    conn: Connection,
    plan_id: int,
    operation: str,
    state: CommunityState,
    versions: dict[str, GridVersion],
    synthetic: bool,
    changes: Changes,
    at: datetime,
    actor: str,
    reason: str,
) -> EditResult:
    community = state.community_code
    used = set(
        conn.execute(
            text("SELECT DISTINCT code FROM grid WHERE community_code = :c"), {"c": community}
        ).scalars()
    ) | set(
        conn.execute(
            text("SELECT code FROM plan_grid WHERE plan_id = :p AND community_code = :c"),
            {"p": plan_id, "c": community},
        ).scalars()
    )
    new_codes = grid_edit.next_codes(community, sorted(used), changes)
    reshaped: list[str] = []
    for code in changes.touched:
        geom = changes.geometries.get(code, versions[code].geometry)
        if code in changes.geometries and geom is None:
            conn.execute(
                text(
                    "UPDATE plan_grid SET retired = true, updated_at = clock_timestamp() "
                    "WHERE plan_id = :p AND code = :code"
                ),
                {"p": plan_id, "code": code},
            )
            continue
        assert geom is not None
        if code in changes.geometries:
            reshaped.append(code)
        values = _attrs(changes.attrs.get(code, versions[code].attrs))
        conn.execute(
            text(
                """
                UPDATE plan_grid SET name = :name, kind = :kind, dedicated_to = :dedicated_to,
                       worker_name = :worker_name, updated_at = clock_timestamp(),
                       geom = ST_Multi(ST_GeomFromWKB(:wkb, 4490))
                WHERE plan_id = :p AND code = :code
                """
            ),
            {**values, "p": plan_id, "code": code, "wkb": shapely.to_wkb(geom)},
        )
    for code, (geom, values) in zip(new_codes, changes.new, strict=True):
        reshaped.append(code)
        conn.execute(
            text(
                """
                INSERT INTO plan_grid (plan_id, code, community_code, name, kind, dedicated_to,
                                       worker_name, synthetic, updated_at, geom)
                VALUES (:p, :code, :c, :name, :kind, :dedicated_to, :worker_name, :synthetic,
                        clock_timestamp(), ST_Multi(ST_GeomFromWKB(:wkb, 4490)))
                """
            ),
            {
                **_attrs(values),
                "p": plan_id,
                "code": code,
                "c": community,
                "synthetic": synthetic,
                "wkb": shapely.to_wkb(geom),
            },
        )
    _recount(conn, plan_id, community, reshaped)
    retired = sorted(c for c, g in changes.geometries.items() if g is None)
    created = sorted(new_codes)
    edit_id = log_edit(
        conn,
        plan_id,
        at,
        actor,
        reason,
        operation,
        community,
        sorted({*changes.touched, *created}),
        retired,
        {"followers": list(changes.followers)},
    )
    plan = get(conn, plan_id)
    written = {*changes.touched, *created} - set(retired)
    new_versions = [g.version for g in grids(conn, plan, community) if g.version.code in written]
    return EditResult(
        edit_id=edit_id,
        operation=operation,
        community_code=community,
        at=at,
        versions=new_versions,
        created=created,
        retired=retired,
        followers=list(changes.followers),
    )


def _attrs(values: Mapping[str, Any]) -> dict[str, Any]:
    attrs = {name: values.get(name) for name in EDITABLE_ATTRIBUTES}
    attrs["kind"] = attrs["kind"] or "base"
    return attrs


def _recount(conn: Connection, plan_id: int, community: str, codes: list[str]) -> None:
    """Households and population of reshaped plan grids: the buildings whose point lies in
    them (lowest code on a shared edge, as the live re-coding does); unknown (NULL) when
    the community has no buildings at all, never invented."""
    if not codes:
        return
    conn.execute(
        text(
            """
            WITH placed AS (
                SELECT DISTINCT ON (b.id) b.id, p.code, b.households, b.residents
                FROM building b
                JOIN plan_grid p ON p.plan_id = :p AND p.community_code = :c AND NOT p.retired
                     AND ST_Intersects(p.geom, ST_PointOnSurface(b.geom))
                WHERE b.community_code = :c
                ORDER BY b.id, p.code
            ),
            sums AS (
                SELECT code, sum(households) AS households, sum(residents) AS residents
                FROM placed GROUP BY code
            )
            UPDATE plan_grid p SET households = COALESCE(s.households, 0),
                                   population = COALESCE(s.residents, 0)
            FROM (SELECT unnest(CAST(:codes AS text[])) AS code) c
            LEFT JOIN sums s ON s.code = c.code
            WHERE p.plan_id = :p AND p.code = c.code
              AND EXISTS (SELECT 1 FROM building b WHERE b.community_code = :c)
            """
        ),
        {"p": plan_id, "c": community, "codes": codes},
    )


def log_edit(
    conn: Connection,
    plan_id: int,
    at: datetime,
    actor: str,
    reason: str,
    operation: str,
    community: str,
    codes: list[str],
    retired: list[str],
    details: Mapping[str, Any],
) -> int:
    edit_id = conn.execute(
        text(
            """
            INSERT INTO plan_edit (plan_id, at, actor, reason, operation, community_code, codes,
                                   retired_codes, details)
            VALUES (:p, :t, :actor, :reason, :operation, :c, :codes, :retired, :details)
            RETURNING id
            """
        ).bindparams(bindparam("details", type_=JSONB)),
        {
            "p": plan_id,
            "t": at,
            "actor": actor.strip(),
            "reason": reason.strip(),
            "operation": operation,
            "c": community,
            "codes": codes,
            "retired": retired,
            "details": dict(details),
        },
    ).scalar_one()
    conn.execute(
        text("UPDATE plan SET updated_at = clock_timestamp() WHERE id = :p"), {"p": plan_id}
    )
    return int(edit_id)


def edit_log(conn: Connection, plan_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The edits made into a plan, newest first."""
    rows = conn.execute(
        text(
            """
            SELECT id, at, actor, reason, operation, community_code, codes, retired_codes, details
            FROM plan_edit WHERE plan_id = :p ORDER BY at DESC, id DESC LIMIT :limit
            """
        ),
        {"p": plan_id, "limit": limit},
    ).mappings()
    return [{**dict(r), "at": r["at"].isoformat()} for r in rows]


# --------------------------------------------------------------------------- proposals


def create_from_proposal(
    conn: Connection,
    registry: Registry,
    *,
    name: str,
    actor: str,
    reason: str,
    community_code: str,
    grids: Sequence[BaseGeometry],
    max_vertices: int = 5000,
) -> int:
    """A draft plan for one community whose grids are replaced by ``grids`` (lon/lat,
    CGCS2000), for the optimiser: the proposal is checked by the same rules as any edit
    (valid polygons under the vertex limit, inside the community, no overlap between
    them, and no area of today's grids left uncovered), gets codes by the rule (today's
    codes kept for the proposed grids that overlap them most, new ones in reading order
    after every code ever used) and never touches the live grids.
    """
    if not grids:
        raise InvalidInputError("方案没有网格", "a proposal needs at least one grid")
    # A savepoint: a refused proposal leaves no plan behind, whatever the caller does next.
    with conn.begin_nested():
        plan_id = create(
            conn,
            name=name,
            actor=actor,
            reason=reason,
            community_code=community_code,
            origin="proposal",
        )
        plan = get(conn, plan_id)
        target = PlanTarget(plan_id)
        at, state, versions, synthetic = target.begin(conn, community_code)
        # One validation of the whole proposal: today's grids all give way to the new set.
        changes = Changes(
            geometries=dict.fromkeys(state.grids),
            new=[(geom, {"kind": "base"}) for geom in grids],
        )
        checked = validate(
            CommunityState(community_code, state.community, {}, {}),
            Changes(new=changes.new),
            Options(max_vertices=max_vertices),
        )
        _check_covers(state, checked)
        keep = _matching_codes(state, [g for g, _ in checked.new])
        # Proposed grids that keep a code replace that grid; the rest are created, the
        # grids no proposed grid keeps are retired.
        kept = Changes()
        new: list[tuple[BaseGeometry, dict[str, Any]]] = []
        for index, (geom, values) in enumerate(checked.new):
            code = keep.get(index)
            if code is None:
                new.append((geom, values))
            else:
                kept.geometries[code] = geom
                kept.attrs[code] = dict(state.attrs.get(code, {}))
        for code in state.grids:
            if code not in kept.geometries:
                kept.geometries[code] = None
        kept.new = new
        _write_plan(conn, plan.id, "proposal", state, versions, synthetic, kept, at, actor, reason)
        return plan_id


def _check_covers(state: CommunityState, checked: Changes) -> None:
    """No area of today's grids may be left without a proposed grid."""
    if not state.grids:
        return
    before = shapely.union_all(list(state.grids.values()))
    after = shapely.union_all([g for g, _ in checked.new])
    left = shapely.difference(before, after)
    gaps = [
        EditProblem(
            "gap",
            f"方案留下无网格覆盖的空隙（{area_m2(p):.1f} 平方米）",
            f"the proposal leaves a gap no grid covers ({area_m2(p):.1f} m²)",
            p,
            (),
            round(area_m2(p), 2),
        )
        for p in polygon_parts(left)
        if area_m2(p) >= Options().tolerance_m2
    ]
    if gaps:
        raise EditConflictError(gaps)


def _matching_codes(state: CommunityState, proposed: list[BaseGeometry]) -> dict[int, str]:
    """Each of today's grids hands its code to the proposed grid overlapping it most,
    greedily by overlap area, one code per proposed grid."""
    pairs = []
    for index, geom in enumerate(proposed):
        for code, old in state.grids.items():
            if geom.intersects(old):
                shared = area_m2(shapely.intersection(geom, old))
                if shared > 0:
                    pairs.append((shared, code, index))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    taken_codes: set[str] = set()
    out: dict[int, str] = {}
    for _, code, index in pairs:
        if code in taken_codes or index in out:
            continue
        out[index] = code
        taken_codes.add(code)
    return out


# --------------------------------------------------------------------------- workflow


def submit(conn: Connection, plan_id: int, actor: str) -> Plan:
    plan = lock_plan(conn, plan_id)
    require_status(plan, "draft")
    conn.execute(
        text(
            "UPDATE plan SET status = 'submitted', submitted_at = clock_timestamp(), "
            "submitted_by = :a, updated_at = clock_timestamp() WHERE id = :id"
        ),
        {"a": actor, "id": plan_id},
    )
    return get(conn, plan_id)


def approve(conn: Connection, plan_id: int, actor: str) -> Plan:
    """Approve a submitted plan; its author (or whoever submitted it) may not approve it."""
    plan = lock_plan(conn, plan_id)
    require_status(plan, "submitted")
    if actor in (plan.author, plan.row.get("submitted_by")):
        raise PermissionDeniedError(
            "方案的创建人或提交人不能批准自己的方案",
            "the author or submitter of a plan may not approve it",
        )
    conn.execute(
        text(
            "UPDATE plan SET status = 'approved', approved_at = clock_timestamp(), "
            "approved_by = :a, updated_at = clock_timestamp() WHERE id = :id"
        ),
        {"a": actor, "id": plan_id},
    )
    return get(conn, plan_id)


def reject(conn: Connection, plan_id: int, actor: str, note: str) -> Plan:
    """Back to draft (editable again), with the reviewer's note."""
    if not note.strip():
        raise InvalidInputError("退回须注明意见", "a rejection needs a note")
    plan = lock_plan(conn, plan_id)
    require_status(plan, "submitted", "approved")
    conn.execute(
        text(
            "UPDATE plan SET status = 'draft', note = :note, approved_at = NULL, "
            "approved_by = NULL, updated_at = clock_timestamp() WHERE id = :id"
        ),
        {"note": f"{actor}: {note.strip()}", "id": plan_id},
    )
    return get(conn, plan_id)


@dataclass
class PublishResult:
    plan: Plan
    effective_from: datetime
    edits: list[EditResult] = field(default_factory=list)
    unit_edit: int | None = None  # a unit plan's edit (unit_edit.id)


def stale_grids(conn: Connection, plan: Plan, communities: Sequence[str]) -> list[str]:
    """Codes whose live grids changed since the plan copied them (or that live gained)."""
    stale: set[str] = set()
    now = _now(conn)
    for community in communities:
        base = {g.version.code: g for g in grids(conn, plan, community) if g.base_id is not None}
        rows = conn.execute(
            text(
                "SELECT g.id, g.code, g.updated_at, g.valid_from > :t AS later FROM grid g "
                "WHERE g.community_code = :c AND (g.valid_to IS NULL OR g.valid_to > :t)"
            ),
            {"c": community, "t": now},
        ).all()
        live = {}
        for r in rows:
            if r.later:
                stale.add(r.code)  # a version already scheduled to take force later
            else:
                live[r.code] = r
        for code in set(base) | set(live):
            b, row = base.get(code), live.get(code)
            same = (
                b is not None
                and row is not None
                and (int(row.id), row.updated_at) == (b.base_id, b.base_updated_at)
            )
            if not same:
                stale.add(code)
    return sorted(stale)


def publish(
    conn: Connection,
    registry: Registry,
    plan_id: int,
    *,
    actor: str,
    effective_from: datetime | None,
    tolerance_m: float,
    max_vertices: int = 5000,
) -> PublishResult:
    """The approved plan's grids become live versions from ``effective_from`` (now when
    None; a future moment closes today's versions then), per community it changed, after
    checking that the live grids are still those it was based on (409 naming them)."""
    plan = lock_plan(conn, plan_id)
    if plan.unit_layer is not None:
        from gridgov.layers import unit_plans

        done = unit_plans.publish(
            conn,
            registry,
            plan_id,
            actor=actor,
            effective_from=effective_from,
            tolerance_m=tolerance_m,
            max_vertices=max_vertices,
        )
        return PublishResult(
            plan=done.plan,
            effective_from=done.effective_from,
            unit_edit=None if done.edit is None else done.edit.edit_id,
        )
    require_status(plan, "approved")
    now = _now(conn)
    at = now if effective_from is None or effective_from <= now else effective_from
    everything = grids(conn, plan)
    changed = sorted({g.version.community_code for g in everything if g.change != "unchanged"})
    for community in changed:
        grid_edit.lock_community(conn, community)
    stale = stale_grids(conn, plan, changed)
    if stale:
        raise ConflictError(
            f"现行网格 {'、'.join(stale)} 在方案创建后已被修改，不能发布；请重新编制方案",
            f"live grid {', '.join(stale)} changed since the plan was made; it cannot be "
            "published over them",
            public={"codes": ",".join(stale)},
        )
    result = PublishResult(plan=plan, effective_from=at)
    future = at > now
    for community in changed:
        state, (versions, synthetic) = grid_edit.live_state(conn, community, now)
        changes = Changes()
        new_codes: list[str] = []
        counts: dict[str, tuple[int | None, int | None]] = {}
        for item in everything:
            v = item.version
            if v.community_code != community or item.change == "unchanged":
                continue
            counts[v.code] = (v.attrs["households"], v.attrs["population"])
            if item.change == "retired":
                changes.geometries[v.code] = None
            elif item.change == "created":
                new_codes.append(v.code)
                changes.new.append((v.geometry, _attrs(v.attrs)))
            else:
                if not v.geometry.equals(versions[v.code].geometry):
                    changes.geometries[v.code] = v.geometry
                changes.attrs[v.code] = _attrs(v.attrs)
        result.edits.append(
            grid_edit.write_changes(
                conn,
                registry,
                "publish",
                state,
                versions,
                synthetic,
                changes,
                at,
                actor=actor,
                reason=f"发布方案 {plan.id}「{plan.name}」: {plan.reason}",
                options=Options(max_vertices=max_vertices),
                tolerance_m=tolerance_m,
                new_codes=new_codes,
                counts=counts if future else None,
                since=now,
            )
        )
    conn.execute(
        text(
            "UPDATE plan SET status = 'published', published_at = :now, published_by = :a, "
            "effective_from = :at, updated_at = clock_timestamp() WHERE id = :id"
        ),
        {"now": now, "a": actor, "at": at, "id": plan_id},
    )
    result.plan = get(conn, plan_id)
    return result


def effective_moment(day: date) -> datetime | None:
    """Today: now (None); a later day: its midnight, Beijing time; earlier: refused."""
    today = datetime.now(LOCAL_TIME).date()
    if day < today:
        raise InvalidInputError(
            f"生效日期 {day} 早于今天，不能改写已经过去的网格",
            f"effective date {day} is in the past; past grids are never rewritten",
            public={"reason": "past_effective_date"},
        )
    return None if day == today else datetime.combine(day, time(), LOCAL_TIME)


# --------------------------------------------------------------------------- what-if


def plan_geometries(conn: Connection, plan: Plan) -> dict[str, BaseGeometry]:
    return {g.version.code: g.version.geometry for g in grids(conn, plan) if not g.retired}


def live_geometries(conn: Connection, plan: Plan) -> dict[str, BaseGeometry]:
    return {v.code: v.geometry for v in live_grids(conn, plan)}


def _stage_sides(
    conn: Connection, before: Mapping[str, BaseGeometry], after: Mapping[str, BaseGeometry]
) -> None:
    conn.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS plan_side (side smallint NOT NULL, code text NOT "
            "NULL, geom geometry(Geometry, 4490) NOT NULL) ON COMMIT DROP"
        )
    )
    conn.execute(text("DELETE FROM plan_side"))
    rows = [
        {"side": side, "code": code, "wkb": shapely.to_wkb(geom)}
        for side, geoms in ((0, before), (1, after))
        for code, geom in geoms.items()
    ]
    if rows:
        conn.execute(
            text(
                "INSERT INTO plan_side (side, code, geom) "
                "VALUES (:side, :code, ST_GeomFromWKB(:wkb, 4490))"
            ),
            rows,
        )
    conn.execute(text("ANALYZE plan_side"))


_MOVES_SQL = """
    WITH pts AS (
        SELECT p.id, ST_PointOnSurface(p.geom) AS pt, {weight} AS households
        FROM {table} p
        WHERE EXISTS (SELECT 1 FROM plan_side s WHERE ST_Intersects(s.geom, p.geom))
          AND {where}
    )
    SELECT * FROM (
        SELECT pts.id, pts.households,
               (SELECT s.code FROM plan_side s WHERE s.side = 0
                  AND ST_Intersects(s.geom, pts.pt) ORDER BY s.code LIMIT 1) AS before,
               (SELECT s.code FROM plan_side s WHERE s.side = 1
                  AND ST_Intersects(s.geom, pts.pt) ORDER BY s.code LIMIT 1) AS after
        FROM pts
    ) m
    WHERE before IS DISTINCT FROM after
    ORDER BY before NULLS FIRST, after NULLS FIRST, id
"""


def moves(
    conn: Connection,
    before: Mapping[str, BaseGeometry],
    after: Mapping[str, BaseGeometry],
    period: Period,
    limit: int = 100,
) -> dict[str, Any]:
    """Which buildings (and their households), key sites and incidents of the period
    would change grid between ``before`` and ``after``: per layer, counts per from → to
    pair and the ids (up to ``limit`` per pair). A point on a shared edge lies in the
    lowest code (the assignment rule); polygons count at their point on surface."""
    _stage_sides(conn, before, after)
    out: dict[str, Any] = {"period": period.as_dict()}
    for layer in MOVE_LAYERS:
        weight = "p.households" if layer == "building" else "0"
        where = (
            "p.reported_at >= :start AND p.reported_at < :end" if layer == "incident" else "TRUE"
        )
        rows = conn.execute(
            text(_MOVES_SQL.format(table=layer, weight=weight, where=where)),
            {"start": period.start, "end": period.end},
        ).all()
        pairs: dict[tuple[str | None, str | None], dict[str, Any]] = {}
        for r in rows:
            pair = pairs.setdefault(
                (r.before, r.after),
                {"from": r.before, "to": r.after, "count": 0, "households": 0, "ids": []},
            )
            pair["count"] += 1
            pair["households"] += int(r.households or 0)
            if len(pair["ids"]) < limit:
                pair["ids"].append(int(r.id))
        items = list(pairs.values())
        if layer != "building":
            for item in items:
                del item["households"]
        out[layer] = {"moved": len(rows), "pairs": items}
    out["households_moved"] = sum(p["households"] for p in out["building"]["pairs"])
    return out


def move_points(
    conn: Connection,
    before: Mapping[str, BaseGeometry],
    after: Mapping[str, BaseGeometry],
    period: Period,
) -> list[dict[str, Any]]:
    """Every moving building, key site and incident as a point (for the GeoPackage)."""
    _stage_sides(conn, before, after)
    out = []
    for layer in MOVE_LAYERS:
        weight = "p.households" if layer == "building" else "0"
        where = (
            "p.reported_at >= :start AND p.reported_at < :end" if layer == "incident" else "TRUE"
        )
        sql = _MOVES_SQL.format(table=layer, weight=weight, where=where).replace(
            "SELECT pts.id, pts.households,",
            "SELECT pts.id, pts.households, ST_AsBinary(pts.pt) AS wkb,",
        )
        for r in conn.execute(text(sql), {"start": period.start, "end": period.end}):
            out.append(
                {
                    "layer": layer,
                    "id": int(r.id),
                    "from_grid": r.before,
                    "to_grid": r.after,
                    "households": int(r.households or 0),
                    "geometry": shapely.from_wkb(bytes(r.wkb)),
                }
            )
    return out


def side_measures(
    conn: Connection,
    registry: Registry,
    geoms: Mapping[str, BaseGeometry],
    period: Period,
    weights: WorkloadWeights,
    *,
    with_docking: bool = True,
) -> dict[str, Any]:
    report = measures.measure_geometries(
        conn, registry, geoms, period, weights, with_docking=with_docking
    )
    for item in report["grids"]:
        item["code"] = item.pop("key")
    return {k: v for k, v in report.items() if k not in ("period", "weights")}


def _docking_change(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for b, a in zip(before["docking"], after["docking"], strict=True):
        out.append(
            {
                "unit_layer": b["unit_layer"],
                "unit_level": b["unit_level"],
                "title": b["title"],
                "before": b["score"],
                "after": a["score"],
                "docked_before": b["docked"],
                "docked_after": a["docked"],
                "wrong_side_m2_before": b["wrong_side_m2"],
                "wrong_side_m2_after": a["wrong_side_m2"],
            }
        )
    return out


def _balance(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        name: asdict(balance([float(g[name]) for g in items]))
        for name in ("households", "workload")
    }


def _by_community(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    communities = sorted({g["code"][:12] for g in before["grids"] + after["grids"]})
    out = []
    for code in communities:
        out.append(
            {
                "code": code,
                "today": _balance([g for g in before["grids"] if g["code"][:12] == code]),
                "plan": _balance([g for g in after["grids"] if g["code"][:12] == code]),
            }
        )
    return out


def plan_measures(
    conn: Connection,
    registry: Registry,
    plan: Plan,
    period: Period,
    weights: WorkloadWeights,
) -> dict[str, Any]:
    """The plan's grids against today's: per-grid measures, balance (the area and each
    community), and the docking score before and after."""
    changes = {g.version.code: g.change for g in grids(conn, plan)}
    after = side_measures(conn, registry, plan_geometries(conn, plan), period, weights)
    before = side_measures(conn, registry, live_geometries(conn, plan), period, weights)
    for item in after["grids"]:
        item["change"] = changes.get(item["code"], "unchanged")
    return {
        "plan_id": plan.id,
        "area_code": plan.area_code,
        "period": period.as_dict(),
        "weights": weights.as_dict(),
        "plan": after,
        "today": before,
        "communities": _by_community(before, after),
        "docking": _docking_change(before, after),
    }


@dataclass(frozen=True)
class Side:
    """One side of a diff: today's grids or a plan's, with their attributes."""

    label: str
    geoms: dict[str, BaseGeometry]
    attrs: dict[str, dict[str, Any]]


def side_of(conn: Connection, plan: Plan | None, area: Plan) -> Side:
    """A plan's grids, or (``plan`` None) today's grids of ``area``'s area."""
    if plan is None:
        versions = live_grids(conn, area)
        return Side(
            "live",
            {v.code: v.geometry for v in versions},
            {v.code: _attrs(v.attrs) for v in versions},
        )
    items = [g for g in grids(conn, plan) if not g.retired]
    return Side(
        f"plan/{plan.id}",
        {g.version.code: g.version.geometry for g in items},
        {g.version.code: _attrs(g.version.attrs) for g in items},
    )


def diff(
    conn: Connection,
    registry: Registry,
    plan: Plan,
    other: Plan | None,
    period: Period,
    weights: WorkloadWeights,
    limit: int = 100,
) -> dict[str, Any]:
    """Plan ``plan`` against today (``other`` None) or another plan: which grids differ
    (changed / created / retired, seen from the other side to this plan), both sides'
    measures and what would move from the other side's grids to this plan's."""
    a = side_of(conn, plan, plan)
    b = side_of(conn, other, plan)
    changed = sorted(
        code
        for code in set(a.geoms) & set(b.geoms)
        if not a.geoms[code].equals(b.geoms[code]) or a.attrs[code] != b.attrs[code]
    )
    created = sorted(set(a.geoms) - set(b.geoms))
    retired = sorted(set(b.geoms) - set(a.geoms))
    return {
        "plan_id": plan.id,
        "against": b.label,
        "period": period.as_dict(),
        "grids": {
            "changed": changed,
            "created": created,
            "retired": retired,
            "unchanged": sorted(set(a.geoms) & set(b.geoms) - set(changed)),
        },
        "features": diff_features(a, b, changed, created, retired),
        "measures": {
            b.label: side_measures(conn, registry, b.geoms, period, weights),
            a.label: side_measures(conn, registry, a.geoms, period, weights),
        },
        "moves": moves(conn, b.geoms, a.geoms, period, limit),
    }


def diff_features(
    a: Side, b: Side, changed: Sequence[str], created: Sequence[str], retired: Sequence[str]
) -> dict[str, Any]:
    """Both sides of what differs: ``a``'s changed and created, ``b``'s changed and retired."""
    return {
        "type": "FeatureCollection",
        "features": [
            _diff_feature(code, a.label, a.geoms[code], status)
            for status, codes in (("changed", changed), ("created", created))
            for code in codes
        ]
        + [
            _diff_feature(code, b.label, b.geoms[code], status)
            for status, codes in (("changed", changed), ("retired", retired))
            for code in codes
        ],
    }


def _diff_feature(code: str, side: str, geom: BaseGeometry, status: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": f"{side}:{code}",
        "geometry": json.loads(shapely.to_geojson(geom)),
        "properties": {"code": code, "side": side, "change": status},
    }


def export_gpkg(conn: Connection, plan: Plan, period: Period) -> bytes:
    """A GeoPackage for QGIS: layers ``plan_grids``, ``today_grids`` and ``moves``."""
    items = [g for g in grids(conn, plan) if not g.retired]
    today = live_grids(conn, plan)
    points = move_points(conn, live_geometries(conn, plan), plan_geometries(conn, plan), period)

    def grid_row(v: GridVersion, change: str) -> dict[str, Any]:
        return {
            "code": v.code,
            "community_code": v.community_code,
            "name": v.attrs["name"],
            "kind": v.attrs["kind"],
            "households": v.attrs["households"],
            "population": v.attrs["population"],
            "change": change,
            "geometry": v.geometry,
        }

    return geopackage(
        f"plan-{plan.id}",
        {
            "plan_grids": ([grid_row(g.version, g.change) for g in items], "MultiPolygon"),
            "today_grids": ([grid_row(v, "today") for v in today], "MultiPolygon"),
            "moves": (points, "Point"),
        },
    )


def geopackage(stem: str, layers: Mapping[str, tuple[list[dict[str, Any]], str]]) -> bytes:
    """The bytes of a GeoPackage (EPSG:4490) with one layer per entry: name → (rows, each
    with a ``geometry``; geometry type). An empty layer is written too, for QGIS to list."""
    with tempfile.TemporaryDirectory(prefix="gridgov-plan-") as folder:
        path = Path(folder) / f"{stem}.gpkg"
        for name, (rows, geometry_type) in layers.items():
            frame = (
                gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4490")
                if rows
                else gpd.GeoDataFrame({"geometry": gpd.GeoSeries([], crs="EPSG:4490")})
            )
            frame.to_file(
                path, layer=name, driver="GPKG", engine="pyogrio", geometry_type=geometry_type
            )
        return path.read_bytes()


__all__ = [
    "CHANGES",
    "Plan",
    "PlanGrid",
    "PlanTarget",
    "PublishResult",
    "approve",
    "create",
    "create_from_proposal",
    "diff",
    "edit_log",
    "effective_moment",
    "export_gpkg",
    "geopackage",
    "get",
    "grid",
    "grids",
    "live_grids",
    "moves",
    "plan_measures",
    "publish",
    "reject",
    "search",
    "stale_grids",
    "submit",
]
