"""Department unit edits (部门单元调整) against the database: :func:`apply_unit_edit`.

The same operations and rules as grids (:mod:`gridgov.gis.grid_edit`: create, replace /
update, retire, split, merge, move a shared boundary; valid polygon under the vertex
limit, inside its container, no overlap with its siblings, no gap unless ``gap=give``),
applied to the units of one *group*: one layer, one district, one level and one parent
unit. The container is the parent unit when the unit has one, else the district.

One edit, in the caller's transaction:

1. reads the named units, checks the caller's area (404 outside it, as for a missing
   unit) and that they form one group;
2. takes a transaction-scoped advisory lock on the layer and district, so that edits of
   neighbouring units are serialised; re-reads the group's units *after* the lock
   (``FOR UPDATE``), checks the ETags (428 / 412) and validates the result;
3. refuses to retire a unit that still has child units, or to shrink one so that a child
   would stick out of it (409 with the piece);
4. closes the open versions in ``unit_version`` (recording the state before the first
   edit of a unit as its first version), writes the live rows, opens the new versions,
   gives new units the next unused code (retired codes are never reused), refreshes
   ``grid_unit`` (docking) for the grids in the changed area, reassigns the incidents the
   change touches and writes ``unit_edit`` with who and why.

The live unit tables keep one row per unit in force (see migration ``0011_unit_edit``
for why); a retired unit's row is deleted once its incidents point elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import bindparam

from gridgov.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from gridgov.gis.grid_edit import (
    Changes,
    CommunityState,
    Create,
    EditConflictError,
    EditProblem,
    Labels,
    Operation,
    Options,
    Replace,
    Split,
    Update,
    validate,
)
from gridgov.gis.measures import area_m2, polygon_parts
from gridgov.layers import incidents
from gridgov.layers.assignment import refresh_grid_units
from gridgov.layers.grid_edit import check_etags
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from gridgov.layers.unit_support import UNIT_LAYERS

# First key of the two-key advisory lock: "uned" (unit edit); the second is layer:district.
LOCK_NAMESPACE: Final = 0x756E6564
# Attributes of a unit an edit may set (the rest of a row is codes and geometry).
ATTRIBUTES: Final = {
    "police_unit": ("name", "level", "parent_code"),
    "urban_unit": ("name", "department"),
    "emergency_unit": ("name", "department"),
}
REQUIRED_TITLES: Final = {"name": "名称 (name)", "department": "责任部门 (department)"}
# Attributes that fix a unit's group: they never change by an edit.
GROUP_ATTRIBUTES: Final = ("level", "parent_code")
UNIT_TITLES: Final = {
    "police_unit": ("警务单元", "police unit"),
    "urban_unit": ("城管单元", "urban-management unit"),
    "emergency_unit": ("应急单元", "emergency unit"),
}


def labels(layer: str, parent: str | None) -> Labels:
    zh, en = UNIT_TITLES[layer]
    if parent:
        return Labels(zh, en, "上级单元", "parent unit", "outside-parent")
    return Labels(zh, en, "区县", "district", "outside-district")


def require_layer(layer: str) -> str:
    if layer not in UNIT_LAYERS:
        raise NotFoundError(
            f"图层 {layer} 不是可编辑的部门单元图层（可选：{'、'.join(UNIT_LAYERS)}）",
            f"{layer} is not an editable department unit layer ({', '.join(UNIT_LAYERS)})",
        )
    return layer


@dataclass(frozen=True)
class Unit:
    """One department unit in force (the live row)."""

    layer: str
    id: int
    code: str
    district_code: str
    township_code: str | None
    attrs: dict[str, Any]
    updated_at: datetime
    geometry: BaseGeometry

    @property
    def etag(self) -> str:
        """Strong ETag: "u", the row id and its last change (never passes for a grid's)."""
        stamp = int(self.updated_at.timestamp() * 1_000_000)
        return f'"u{self.id}-{stamp}"'

    @property
    def group(self) -> tuple[str, str, str | None, str | None]:
        return (
            self.layer,
            self.district_code,
            self.attrs.get("level"),
            self.attrs.get("parent_code"),
        )


def _columns(layer: str) -> str:
    attrs = ", ".join(f"u.{name}" for name in ATTRIBUTES[layer])
    return (
        f"u.id, u.code, u.district_code, u.township_code, u.updated_at, {attrs}, "
        "ST_AsBinary(u.geom) AS wkb"
    )


def _unit(layer: str, row: Any) -> Unit:
    return Unit(
        layer=layer,
        id=int(row.id),
        code=row.code,
        district_code=row.district_code,
        township_code=row.township_code,
        attrs={name: getattr(row, name) for name in ATTRIBUTES[layer]},
        updated_at=row.updated_at,
        geometry=shapely.from_wkb(bytes(row.wkb)),
    )


def _missing(layer: str, code: str) -> NotFoundError:
    zh, en = UNIT_TITLES[layer]
    return NotFoundError(
        f"{zh} {code} 不存在或已撤销", f"no {en} {code} in force", public={"code": code}
    )


def in_scope(unit: Unit, scope: AreaScope | None) -> bool:
    """A unit is the account's when its finest admin code (township, else district) lies
    in the account's area."""
    return scope is None or scope.covers_code(unit.township_code or unit.district_code)


def current(conn: Connection, layer: str, code: str, scope: AreaScope | None = None) -> Unit:
    """The unit ``code`` in force, or 404 (also when it lies outside the caller's area)."""
    row = conn.execute(
        text(f"SELECT {_columns(layer)} FROM {require_layer(layer)} u WHERE u.code = :code"),
        {"code": code},
    ).first()
    if row is None:
        raise _missing(layer, code)
    unit = _unit(layer, row)
    if not in_scope(unit, scope):
        raise _missing(layer, code)
    return unit


def history(
    conn: Connection, layer: str, code: str, scope: AreaScope | None = None
) -> list[dict[str, Any]]:
    """Every recorded version of ``code``, oldest first; a unit never edited has one, its
    live row (``recorded`` false). 404 when the code was never used or is out of scope."""
    require_layer(layer)
    rows = conn.execute(
        text(
            """
            SELECT id, code, district_code, township_code, attrs, valid_from, valid_to,
                   edit_id, ST_AsGeoJSON(geom)::json AS geometry
            FROM unit_version WHERE layer = :l AND code = :code ORDER BY valid_from, id
            """
        ),
        {"l": layer, "code": code},
    ).mappings()
    versions = [dict(r) | {"recorded": True} for r in rows]
    if not versions:
        unit = current(conn, layer, code, scope)
        return [
            {
                "id": None,
                "code": unit.code,
                "district_code": unit.district_code,
                "township_code": unit.township_code,
                "attrs": unit.attrs,
                "valid_from": None,
                "valid_to": None,
                "edit_id": None,
                "geometry": shapely.geometry.mapping(unit.geometry),
                "recorded": False,
            }
        ]
    last = versions[-1]
    finest = last["township_code"] or last["district_code"]
    if scope is not None and not scope.covers_code(finest):
        raise _missing(layer, code)
    return versions


def lock_group(conn: Connection, layer: str, district_code: str) -> None:
    """Serialise the edits of one layer in one district until the transaction ends."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), hashtext(:k))"),
        {"ns": LOCK_NAMESPACE, "k": f"{layer}:{district_code}"},
    )


@dataclass(frozen=True)
class Group:
    """Where a unit belongs: its layer, district, level and parent (all fixed)."""

    layer: str
    district_code: str
    level: str | None = None
    parent_code: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None, str | None]:
        return (self.layer, self.district_code, self.level, self.parent_code)


def group_of(units: Sequence[Unit]) -> Group:
    groups = {u.group for u in units}
    if len(groups) != 1:
        raise InvalidInputError(
            "一次编辑只能涉及同一区县、同一层级、同一上级单元的部门单元",
            "one edit may only touch units of one layer, district, level and parent unit",
            public={"reason": "several_groups"},
        )
    layer, district, level, parent = groups.pop()
    return Group(layer, district, level, parent)


def container_of(conn: Connection, group: Group) -> BaseGeometry:
    """What the group's units must stay inside: their parent unit, else their district."""
    layer = group.layer
    if group.parent_code:
        container = conn.execute(
            text(f"SELECT ST_AsBinary(geom) AS wkb FROM {layer} WHERE code = :c"),
            {"c": group.parent_code},
        ).first()
    else:
        container = conn.execute(
            text("SELECT ST_AsBinary(geom) AS wkb FROM district WHERE code = :c"),
            {"c": group.district_code},
        ).first()
    if container is None:
        where = group.parent_code or group.district_code
        raise NotFoundError(
            f"上级单元或区县 {where} 不存在",
            f"no parent unit or district {where}",
            public={"code": where},
        )
    return shapely.from_wkb(bytes(container.wkb))


def _group_sql(layer: str) -> str:
    """The condition on ``u`` for the units of one group (``:d``, ``:lv``, ``:p``)."""
    level_sql = "u.level IS NOT DISTINCT FROM :lv AND " if "level" in ATTRIBUTES[layer] else ""
    parent_sql = (
        "u.parent_code IS NOT DISTINCT FROM :p AND " if "parent_code" in ATTRIBUTES[layer] else ""
    )
    return f"{level_sql}{parent_sql}u.district_code = :d"


def _group_params(group: Group) -> dict[str, Any]:
    return {"d": group.district_code, "lv": group.level, "p": group.parent_code}


def group_codes(conn: Connection, group: Group) -> set[str]:
    """Codes of the group's units in force (no lock: for proposals, which write nothing)."""
    rows = conn.execute(
        text(f"SELECT u.code FROM {group.layer} u WHERE {_group_sql(group.layer)}"),
        _group_params(group),
    )
    return set(rows.scalars())


def state_of(
    conn: Connection, group: Group, *, lock: bool = True
) -> tuple[datetime, CommunityState, dict[str, Unit]]:
    """The group's container and units in force (locked rows, read after the lock; a
    plan's edits, which never write the live rows, read them unlocked)."""
    layer = group.layer
    container = container_of(conn, group)
    rows = conn.execute(
        text(
            f"SELECT {_columns(layer)} FROM {layer} u "
            f"WHERE {_group_sql(layer)} ORDER BY u.code{' FOR UPDATE' if lock else ''}"
        ),
        _group_params(group),
    ).all()
    units = {r.code: _unit(layer, r) for r in rows}
    at: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    state = CommunityState(
        community_code=group.parent_code or group.district_code,
        community=container,
        grids={code: u.geometry for code, u in units.items()},
        attrs={code: u.attrs for code, u in units.items()},
        labels=labels(layer, group.parent_code),
    )
    return at, state, units


@dataclass
class UnitEditResult:
    edit_id: int
    operation: str
    layer: str
    district_code: str
    at: datetime
    units: list[Unit]  # the units in force after the edit (changed, created, followers)
    created: list[str]
    retired: list[str]
    followers: list[str]
    grids_refreshed: int = 0
    incidents_evaluated: int = 0
    incidents_moved: int = 0
    incident_moves: list[tuple[str, str | None, str | None, int]] = field(default_factory=list)


def apply_unit_edit(
    conn: Connection,
    registry: Registry,
    layer: str,
    operation: Operation,
    *,
    actor: str,
    reason: str,
    if_match: Sequence[str] | None,
    options: Options,
    tolerance_m: float,
    scope: AreaScope | None = None,
    group: Group | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> UnitEditResult:
    """Validate and commit one unit edit (see the module docstring). ``group`` is needed
    by a create (where the new unit goes); ``attrs`` sets attributes (name, department)
    of the unit a create, replace or update makes. Refusals raise and write nothing."""
    require_layer(layer)
    if not actor.strip() or not reason.strip():
        raise InvalidInputError(
            "每次部门单元调整都须注明操作人与原因", "every unit edit needs an actor and a reason"
        )
    named = list(operation.named)
    if named:
        before = [current(conn, layer, code, scope) for code in dict.fromkeys(named)]
        group = group_of(before)
    elif group is None:
        raise InvalidInputError("新建单元须指明区县", "a new unit needs its district")
    elif scope is not None and not scope.covers_code(group.district_code):
        raise PermissionDeniedError(
            f"无权在区县 {group.district_code} 新建部门单元（不在账户的区域内）",
            f"district {group.district_code} lies outside the account's area",
        )
    assert group is not None
    lock_group(conn, layer, group.district_code)
    at, state, units = state_of(conn, group)
    lb = state.labels
    check_etags(units, named, if_match, lb)
    changes = operation.build(state)
    set_attributes(layer, group, operation, state, changes, attrs or {})
    changes = validate(state, changes, options)
    check_children(conn, layer, changes, options)
    refuse_pending(conn, layer, changes.touched)
    return write_unit_changes(
        conn,
        registry,
        layer,
        group,
        operation.operation,
        units,
        changes,
        at,
        actor=actor,
        reason=reason,
        options=options,
        tolerance_m=tolerance_m,
    )


def set_attributes(
    layer: str,
    group: Group,
    operation: Operation,
    state: CommunityState,
    changes: Changes,
    attrs: Mapping[str, Any],
) -> None:
    """Unit attributes for what the grid operations built: the group's level and parent
    are fixed; new pieces of a split inherit their unit's attributes."""
    editable = [name for name in ATTRIBUTES[layer] if name not in GROUP_ATTRIBUTES]
    given = {k: v for k, v in attrs.items() if k in editable}
    fixed: dict[str, Any] = {}
    if "level" in ATTRIBUTES[layer]:
        fixed = {"level": group.level, "parent_code": group.parent_code}
    if isinstance(operation, Create):
        changes.new = [(geom, {**given, **fixed}) for geom, _ in changes.new]
    elif isinstance(operation, Split):
        inherited = dict(state.attrs[operation.code])
        changes.new = [(geom, dict(inherited)) for geom, _ in changes.new]
        changes.attrs[operation.code] = dict(inherited)
    elif isinstance(operation, Replace | Update):
        changes.attrs[operation.code] = {**state.attrs[operation.code], **given, **fixed}
    required = [name for name in ("name", "department") if name in ATTRIBUTES[layer]]
    for _, values in changes.new:
        missing = [name for name in required if not values.get(name)]
        if missing:
            raise InvalidInputError(
                f"新部门单元须有{'、'.join(REQUIRED_TITLES[m] for m in missing)}",
                f"a new unit needs its {', '.join(missing)}",
            )


def check_children(conn: Connection, layer: str, changes: Changes, options: Options) -> None:
    """A unit with child units (police: a station's policing areas) cannot be retired, and
    its new shape must still hold every child."""
    if "parent_code" not in ATTRIBUTES[layer] or not changes.geometries:
        return
    rows = conn.execute(
        text(
            f"SELECT code, parent_code, ST_AsBinary(geom) AS wkb FROM {layer} "
            "WHERE parent_code = ANY(:codes) ORDER BY code"
        ),
        {"codes": list(changes.geometries)},
    ).all()
    problems: list[EditProblem] = []
    for row in rows:
        child = shapely.from_wkb(bytes(row.wkb))
        parent = changes.geometries[row.parent_code]
        if parent is None:
            problems.append(
                EditProblem(
                    "has-children",
                    f"单元 {row.parent_code} 仍有下级单元 {row.code}，不能撤销或合并",
                    f"unit {row.parent_code} still has child unit {row.code}",
                    child,
                    (row.parent_code, row.code),
                )
            )
            continue
        for part in polygon_parts(shapely.difference(child, parent)):
            area = area_m2(part)
            if area >= options.tolerance_m2:
                problems.append(
                    EditProblem(
                        "child-outside",
                        f"下级单元 {row.code} 将超出单元 {row.parent_code}（{area:.1f} 平方米）",
                        f"child unit {row.code} would stick out of {row.parent_code} "
                        f"({area:.1f} m²)",
                        part,
                        (row.parent_code, row.code),
                        round(area, 2),
                    )
                )
    if problems:
        raise EditConflictError(problems, labels=labels(layer, None))


def refuse_pending(
    conn: Connection, layer: str, codes: Sequence[str], *, except_plan: int | None = None
) -> None:
    """A unit a published plan will change on a later day is frozen until then: an edit
    in between would be overwritten, or make the plan impossible to apply (409)."""
    row = conn.execute(
        text(
            """
            SELECT p.id, p.effective_from, array_agg(u.code ORDER BY u.code) AS codes
            FROM plan p JOIN plan_unit u ON u.plan_id = p.id
            WHERE p.unit_layer = :l AND p.status = 'published' AND p.unit_applied_at IS NULL
              AND u.code = ANY(:codes) AND p.id IS DISTINCT FROM :except_plan
            GROUP BY p.id, p.effective_from ORDER BY p.effective_from, p.id LIMIT 1
            """
        ),
        {"l": layer, "codes": list(codes), "except_plan": except_plan},
    ).first()
    if row is not None:
        day = row.effective_from.isoformat()
        raise ConflictError(
            f"单元 {'、'.join(row.codes)} 已有方案 {row.id} 定于 {day} 生效，生效前不能修改",
            f"unit {', '.join(row.codes)} is changed by plan {row.id} taking force at {day}; "
            "it cannot be edited before then",
            public={"plan_id": int(row.id), "codes": ",".join(row.codes)},
        )


def ever_used_codes(conn: Connection, layer: str) -> list[str]:
    """Every code of ``layer`` in force, retired or reserved by a plan (never given again)."""
    return list(
        conn.execute(
            text(
                f"SELECT code FROM {layer} UNION SELECT code FROM unit_version WHERE layer = :l "
                "UNION SELECT code FROM plan_unit WHERE layer = :l"
            ),
            {"l": layer},
        ).scalars()
    )


def next_unit_codes(prefix: str, ever_used: Sequence[str], count: int) -> list[str]:
    """``prefix`` and two-digit (or longer) numbers after the highest ever used: codes of
    retired units are never given again."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    numbers = [int(m.group(1)) for code in ever_used if (m := pattern.match(code))]
    start = max(numbers, default=0) + 1
    return [f"{prefix}{n:02d}" for n in range(start, start + count)]


_PREFIX: Final = {"police_unit": "PCS", "urban_unit": "CG", "emergency_unit": "YJ"}


def code_prefix(layer: str, group: Group, operation: str, named: Sequence[str]) -> str:
    """New units are numbered under their parent (``PCS320213001-03``), under the unit
    they were split from, or under the layer and district (``CG320213-01``)."""
    if group.parent_code:
        return f"{group.parent_code}-"
    if operation == "split" and named:
        return f"{named[0]}-"
    return f"{_PREFIX[layer]}{group.district_code}-"


def _township_of(conn: Connection, geom: BaseGeometry, district_code: str) -> str | None:
    point = geom.representative_point()
    code = conn.execute(
        text(
            "SELECT code FROM township WHERE district_code = :d "
            "AND ST_Intersects(geom, ST_GeomFromWKB(:p, 4490)) ORDER BY code LIMIT 1"
        ),
        {"d": district_code, "p": shapely.to_wkb(point)},
    ).scalar_one_or_none()
    return str(code) if code is not None else None


def _incident_columns(registry: Registry, layer: str) -> list[str]:
    """The incident columns holding codes of ``layer`` (foreign keys to it)."""
    if "incident" not in registry:
        return []
    return [c.name for c in registry.get("incident").columns if c.references == f"{layer}.code"]


def write_unit_changes(
    conn: Connection,
    registry: Registry,
    layer: str,
    group: Group,
    operation: str,
    units: dict[str, Unit],
    changes: Changes,
    at: datetime,
    *,
    actor: str,
    reason: str,
    options: Options,
    tolerance_m: float,
    new_codes: Sequence[str] | None = None,
) -> UnitEditResult:
    """Store validated changes; ``new_codes`` are the codes a plan reserved for the units
    it creates (else the next unused ones)."""
    attrs_names = ATTRIBUTES[layer]
    touched = changes.touched
    retired = sorted(c for c, g in changes.geometries.items() if g is None)
    ever_used = list(
        conn.execute(
            text(f"SELECT code FROM {layer} UNION SELECT code FROM unit_version WHERE layer = :l"),
            {"l": layer},
        ).scalars()
    )
    if new_codes is None:
        new_codes = next_unit_codes(
            code_prefix(layer, group, operation, touched),
            ever_used_codes(conn, layer),
            len(changes.new),
        )
    new_codes = list(new_codes)
    # The rows written below carry the clock's time, which a plan applied late (at its
    # effective moment, earlier) must also look from for the incidents to reassign.
    since = min(at, conn.execute(text("SELECT clock_timestamp()")).scalar_one())
    taken = sorted(set(new_codes) & set(ever_used))
    if taken:  # cannot happen with the rule above; refused rather than reused
        raise ConflictError(f"单元编码 {'、'.join(taken)} 已被使用", f"code {taken} is used")
    # The state before a unit's first edit becomes its first recorded version.
    conn.execute(
        text(
            f"""
            INSERT INTO unit_version (layer, code, district_code, township_code, attrs,
                                      valid_from, geom)
            SELECT :l, u.code, u.district_code, u.township_code,
                   jsonb_build_object({", ".join(f"'{a}', u.{a}" for a in attrs_names)}),
                   LEAST(u.updated_at, :t), u.geom
            FROM {layer} u
            WHERE u.code = ANY(:codes) AND NOT EXISTS (
                SELECT 1 FROM unit_version v
                WHERE v.layer = :l AND v.code = u.code AND v.valid_to IS NULL)
            """
        ),
        {"l": layer, "codes": touched, "t": at},
    )
    old_ids = sorted(
        int(i)
        for i in conn.execute(
            text(
                "UPDATE unit_version SET valid_to = :t WHERE layer = :l AND code = ANY(:codes) "
                "AND valid_to IS NULL RETURNING id"
            ),
            {"l": layer, "codes": touched, "t": at},
        ).scalars()
    )
    region = shapely.union_all(
        [units[c].geometry for c in touched if c in units]
        + [g for g in changes.geometries.values() if g is not None]
        + [g for g, _ in changes.new]
    )
    columns = _incident_columns(registry, layer)
    before_units = _incident_units(conn, columns, region)
    # Incidents of a retired unit let go of its code first (the foreign key), and are
    # reassigned below with the others; the transaction never commits them without one.
    released: set[int] = set()
    for column in columns:
        released |= {
            int(i)
            for i in conn.execute(
                text(
                    f"UPDATE incident SET {column} = NULL WHERE {column} = ANY(:codes) RETURNING id"
                ),
                {"codes": retired},
            ).scalars()
        }
    if retired:
        conn.execute(text(f"DELETE FROM {layer} WHERE code = ANY(:codes)"), {"codes": retired})
    sets = ", ".join(f"{a} = :{a}" for a in attrs_names)
    for code in touched:
        if code in retired:
            continue
        changed = changes.geometries.get(code)
        geom = units[code].geometry if changed is None else changed
        values = changes.attrs.get(code, units[code].attrs)
        conn.execute(
            text(
                f"UPDATE {layer} SET {sets}, geom = ST_Multi(ST_GeomFromWKB(:wkb, 4490)), "
                "updated_at = clock_timestamp() WHERE code = :code"
            ),
            {**{a: values.get(a) for a in attrs_names}, "wkb": shapely.to_wkb(geom), "code": code},
        )
    names = ", ".join(attrs_names)
    binds = ", ".join(f":{a}" for a in attrs_names)
    for code, (geom, values) in zip(new_codes, changes.new, strict=True):
        conn.execute(
            text(
                f"INSERT INTO {layer} (code, district_code, township_code, {names}, geom, "
                f"updated_at) VALUES (:code, :d, :t, {binds}, "
                "ST_Multi(ST_GeomFromWKB(:wkb, 4490)), clock_timestamp())"
            ),
            {
                **{a: values.get(a) for a in attrs_names},
                "code": code,
                "d": group.district_code,
                "t": _township_of(conn, geom, group.district_code),
                "wkb": shapely.to_wkb(geom),
            },
        )
    kept = [c for c in touched if c not in retired] + new_codes
    new_ids = [
        int(i)
        for i in conn.execute(
            text(
                f"""
                INSERT INTO unit_version (layer, code, district_code, township_code, attrs,
                                          valid_from, geom)
                SELECT :l, u.code, u.district_code, u.township_code,
                       jsonb_build_object({", ".join(f"'{a}', u.{a}" for a in attrs_names)}),
                       :t, u.geom
                FROM {layer} u WHERE u.code = ANY(:codes) ORDER BY u.code
                RETURNING id
                """
            ),
            {"l": layer, "codes": kept, "t": at},
        ).scalars()
    ]
    grid_ids = [
        int(i)
        for i in conn.execute(
            text("SELECT id FROM grid WHERE ST_Intersects(geom, ST_GeomFromWKB(:r, 4490))"),
            {"r": shapely.to_wkb(region)},
        ).scalars()
    ]
    if grid_ids:
        refresh_grid_units(conn, grid_ids)
    ids = sorted(set(incidents.affected_by_changes(conn, since, tolerance_m)) | released)
    report = incidents.reassign(conn, tolerance_m, ids) if ids else incidents.ReassignReport()
    moves = _unit_moves(conn, columns, before_units)
    details = {
        "options": {"overlap": options.overlap, "gap": options.gap},
        "group": {"level": group.level, "parent_code": group.parent_code},
        "followers": list(changes.followers),
        "grids_refreshed": len(grid_ids),
        "incidents_evaluated": report.evaluated,
        "incident_moves": [list(m) for m in moves],
    }
    edit_id = int(
        conn.execute(
            text(
                """
                INSERT INTO unit_edit (at, actor, reason, operation, layer, district_code,
                                       codes, retired_codes, old_versions, new_versions,
                                       incidents_moved, details)
                VALUES (:t, :actor, :reason, :operation, :l, :d, :codes, :retired, :old,
                        :new, :moved, :details)
                RETURNING id
                """
            ).bindparams(bindparam("details", type_=JSONB)),
            {
                "t": at,
                "actor": actor.strip(),
                "reason": reason.strip(),
                "operation": operation,
                "l": layer,
                "d": group.district_code,
                "codes": sorted({*touched, *new_codes}),
                "retired": retired,
                "old": old_ids,
                "new": new_ids,
                "moved": sum(n for *_, n in moves),
                "details": details,
            },
        ).scalar_one()
    )
    conn.execute(
        text("UPDATE unit_version SET edit_id = :e WHERE id = ANY(:ids)"),
        {"e": edit_id, "ids": new_ids},
    )
    rows = conn.execute(
        text(f"SELECT {_columns(layer)} FROM {layer} u WHERE u.code = ANY(:c) ORDER BY u.code"),
        {"c": kept},
    ).all()
    return UnitEditResult(
        edit_id=edit_id,
        operation=operation,
        layer=layer,
        district_code=group.district_code,
        at=at,
        units=[_unit(layer, r) for r in rows],
        created=sorted(new_codes),
        retired=retired,
        followers=list(changes.followers),
        grids_refreshed=len(grid_ids),
        incidents_evaluated=report.evaluated,
        incidents_moved=sum(n for *_, n in moves),
        incident_moves=moves,
    )


def _incident_units(
    conn: Connection, columns: list[str], region: BaseGeometry
) -> dict[int, tuple[str | None, ...]]:
    """The units of the incidents in (or assigned around) the changed area, before."""
    if not columns:
        return {}
    rows = conn.execute(
        text(
            f"SELECT id, {', '.join(columns)} FROM incident "
            "WHERE ST_Intersects(geom, ST_GeomFromWKB(:r, 4490))"
        ),
        {"r": shapely.to_wkb(region)},
    ).all()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def _unit_moves(
    conn: Connection, columns: list[str], before: dict[int, tuple[str | None, ...]]
) -> list[tuple[str, str | None, str | None, int]]:
    """(column, from, to, count) for the incidents whose unit of this layer changed."""
    if not before:
        return []
    rows = conn.execute(
        text(f"SELECT id, {', '.join(columns)} FROM incident WHERE id = ANY(:ids)"),
        {"ids": list(before)},
    ).all()
    counts: dict[tuple[str, str | None, str | None], int] = {}
    for row in rows:
        old = before[int(row[0])]
        for i, column in enumerate(columns):
            if old[i] != row[i + 1]:
                key = (column, old[i], row[i + 1])
                counts[key] = counts.get(key, 0) + 1
    return sorted(((c, a, b, n) for (c, a, b), n in counts.items()), key=lambda m: (-m[3], m[0]))


def edit_log(
    conn: Connection,
    layers: Sequence[str],
    code: str | None,
    limit: int,
    scope: AreaScope | None = None,
) -> list[dict[str, Any]]:
    """The newest unit edits of the given layers (and of one unit code), within the
    caller's area (an area-scoped account sees the edits of the districts its area lies
    in)."""
    districts = (
        None if scope is None or scope.codes is None else sorted({c[:6] for c in scope.codes})
    )
    rows = conn.execute(
        text(
            """
            SELECT id, at, actor, reason, operation, layer, district_code, codes,
                   retired_codes, old_versions, new_versions, incidents_moved, details
            FROM unit_edit
            WHERE layer = ANY(CAST(:l AS text[]))
              AND (CAST(:code AS text) IS NULL OR :code = ANY(codes))
              AND (CAST(:d AS text[]) IS NULL OR district_code = ANY(:d))
            ORDER BY at DESC, id DESC LIMIT :limit
            """
        ),
        {"l": list(layers), "code": code, "limit": limit, "d": districts},
    ).mappings()
    return [dict(r) for r in rows]


__all__ = [
    "ATTRIBUTES",
    "Group",
    "Unit",
    "UnitEditResult",
    "apply_unit_edit",
    "current",
    "edit_log",
    "history",
    "next_unit_codes",
]
