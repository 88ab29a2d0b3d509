"""The area scope of an account, as SQL: the ONE place that decides which rows it may see.

A scope is a set of admin codes of any level (6-digit district, 9-digit township,
12-digit community, 15-digit grid). A row is in scope when, for some scope code ``s``:

* the layer carries ``s``'s level and the row's code at that level is ``s`` (the row lies
  inside the scope area), or
* the layer is coarser than ``s`` (e.g. police units carry district and township codes
  only, a district polygon carries its own code) and the row's finest code is the matching
  prefix of ``s`` (the row's area contains the scope area).

:func:`scope_terms` states that rule once; :func:`scope_clause` (SQLAlchemy Core),
:func:`scope_sql` (text SQL such as the tile query) and :func:`row_in_scope` (rows about
to be written) are three renderings of the same terms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, Connection, Table, false, or_, text, true

from gridgov.layers.spec import AdminLevel, LayerSpec

LEVEL_OF_LENGTH = {level.code_length: level for level in AdminLevel}


@dataclass(frozen=True)
class AreaScope:
    """``codes`` None: every area (admins); an empty set: no area at all."""

    codes: frozenset[str] | None

    @classmethod
    def everything(cls) -> AreaScope:
        return cls(None)

    @classmethod
    def of(cls, codes: Iterable[str]) -> AreaScope:
        return cls(frozenset(codes))

    @property
    def unrestricted(self) -> bool:
        return self.codes is None

    def covers_code(self, code: str | None) -> bool:
        """Whether an admin code (of any level) lies inside the scope."""
        if self.codes is None:
            return True
        if not code:
            return False
        return any(code.startswith(s) for s in self.codes)

    def by_level(self) -> dict[str, tuple[str, ...]]:
        """Scope codes grouped by admin level (``{"township": ("320213001",)}``)."""
        grouped: dict[str, list[str]] = {}
        for code in sorted(self.codes or ()):
            level = LEVEL_OF_LENGTH.get(len(code))
            if level is not None:
                grouped.setdefault(level.value, []).append(code)
        return {k: tuple(v) for k, v in grouped.items()}


def scope_terms(spec: LayerSpec, scope: AreaScope) -> dict[str, tuple[str, ...]] | None:
    """``{column: codes}``: a row is in scope when any column holds one of its codes.

    None means unrestricted; an empty dict means nothing is in scope.
    """
    if scope.codes is None:
        return None
    levels = spec.admin_levels
    terms: dict[str, set[str]] = {}
    for code in scope.codes:
        level = LEVEL_OF_LENGTH.get(len(code))
        if level is None or not levels:
            continue
        if level in levels:
            terms.setdefault(spec.admin_column(level), set()).add(code)
            continue
        finest = levels[-1]
        if finest.code_length < level.code_length:
            terms.setdefault(spec.admin_column(finest), set()).add(code[: finest.code_length])
    return {column: tuple(sorted(codes)) for column, codes in sorted(terms.items())}


def scope_clause(spec: LayerSpec, table: Table, scope: AreaScope) -> ColumnElement[bool]:
    """The scope as a WHERE clause on ``table`` (bound parameters only)."""
    terms = scope_terms(spec, scope)
    if terms is None:
        return true()
    if not terms:
        return false()
    return or_(*(table.c[column].in_(list(codes)) for column, codes in terms.items()))


def scope_sql(
    spec: LayerSpec, scope: AreaScope, alias: str = "t", prefix: str = "scope"
) -> tuple[str, dict[str, Any]]:
    """The scope as a text SQL condition on ``alias`` and its parameters (``scope_0``, …;
    another ``prefix`` when two area conditions go into one statement)."""
    terms = scope_terms(spec, scope)
    if terms is None:
        return "true", {}
    if not terms:
        return "false", {}
    parts, params = [], {}
    for i, (column, codes) in enumerate(terms.items()):
        # Column names come from the registry, never from a request.
        parts.append(f"{alias}.{column} = ANY(:{prefix}_{i})")
        params[f"{prefix}_{i}"] = list(codes)
    return "(" + " OR ".join(parts) + ")", params


def row_in_scope(spec: LayerSpec, row: Mapping[str, Any], scope: AreaScope) -> bool:
    """Whether a row (mapping of column → value) is in scope, by the same terms."""
    terms = scope_terms(spec, scope)
    if terms is None:
        return True
    return any(row.get(column) in codes for column, codes in terms.items())


# Overlaps of the part outside the account's area smaller than this (m²) are boundary
# dust: the demo's (and real) community polygons overlap their neighbours by slivers.
OUTSIDE_DUST_M2 = 1.0
# Parts outside it narrower than twice this (degrees, about 0.1 m) are rounding ribbons: a
# grid sent back as GeoJSON with 7 (or 6) decimals strays a centimetre or so past its own
# edge, along the whole edge, which adds up to more than the dust above on a long border.
OUTSIDE_RIBBON_DEG = 1e-6


def communities_outside(
    conn: Connection, scope: AreaScope, geometries: Mapping[str, BaseGeometry]
) -> list[str]:
    """Codes of out-of-scope communities that the geometries (EPSG:4490) reach, by more than
    dust, outside what the account already sees: measures of a proposal count what lies
    under it, so it must stay inside the area.

    "What the account sees" is its communities and its grids in force: neighbouring
    community polygons overlap each other, and grids may spill over their community's edge,
    so a planner's own, unchanged grids can reach another township's community; measuring
    them tells nothing the account could not already read.
    """
    if scope.codes is None or not geometries:
        return []
    rows = conn.execute(
        text(
            "WITH g AS (SELECT ST_GeomFromWKB(wkb, 4490) AS geom "
            "FROM unnest(CAST(:wkb AS bytea[])) AS u(wkb)), "
            "outer_part AS (SELECT ST_Buffer(COALESCE(ST_Difference(g.geom, mine.geom), g.geom), "
            "-:width) AS geom "
            "FROM g CROSS JOIN LATERAL (SELECT ST_Union(s.geom) AS geom FROM ("
            "SELECT c.geom FROM community c WHERE c.code LIKE ANY(:p) AND c.geom && g.geom "
            "UNION ALL SELECT r.geom FROM grid r WHERE r.valid_to IS NULL "
            "AND r.code LIKE ANY(:p) AND r.geom && g.geom) AS s) AS mine) "
            "SELECT DISTINCT c.code FROM community c JOIN outer_part o "
            "ON NOT ST_IsEmpty(o.geom) AND ST_Relate(c.geom, o.geom, '2********') "
            "AND ST_Area(ST_Intersection(c.geom, o.geom)::geography) > :dust "
            "WHERE NOT (c.code LIKE ANY(:p)) ORDER BY c.code"
        ),
        {
            "wkb": [shapely.to_wkb(g) for g in geometries.values()],
            "p": [f"{c}%" for c in scope.codes],
            "dust": OUTSIDE_DUST_M2,
            "width": OUTSIDE_RIBBON_DEG,
        },
    ).scalars()
    return list(rows)


# --- row-level security: the database's own copy of the rule (migration 0005_accounts) ---

API_ROLE = "gridgov_api"


def setting(scope: AreaScope) -> str:
    """The value of ``gridgov.scope``: ``*`` for every area, else the codes (``-``: none)."""
    if scope.codes is None:
        return "*"
    return ",".join(sorted(scope.codes)) or "-"


def api_role_ready(conn: Connection) -> bool:
    """Whether the bound role exists, this login may become it and it was granted the tables."""
    return bool(
        conn.execute(
            text(
                "SELECT CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = :r) "
                "THEN pg_has_role(current_user, :r, 'MEMBER') "
                "AND has_table_privilege(:r, 'incident', 'SELECT') ELSE false END"
            ),
            {"r": API_ROLE},
        ).scalar_one()
    )


def enter(conn: Connection, scope: AreaScope, bound: bool) -> None:
    """Put the scope into the transaction; with ``bound``, continue as the bound role."""
    conn.execute(text("SELECT set_config('gridgov.scope', :s, true)"), {"s": setting(scope)})
    if bound:
        conn.execute(text(f"SET LOCAL ROLE {API_ROLE}"))


def leave(conn: Connection) -> None:
    """Back to the login role, no scope (for connections that outlive a request: tests)."""
    conn.execute(text("RESET ROLE"))
    conn.execute(text("SELECT set_config('gridgov.scope', '', true)"))


@contextmanager
def as_owner(conn: Connection) -> Iterator[None]:
    """Step out of the bound role for work that must see every row (shared caches,
    refusal bookkeeping), and back in afterwards."""
    bound = conn.execute(text("SELECT current_user = :r"), {"r": API_ROLE}).scalar_one()
    if bound:
        conn.execute(text("RESET ROLE"))
    try:
        yield
    finally:
        if bound:
            conn.execute(text(f"SET LOCAL ROLE {API_ROLE}"))


__all__ = [
    "API_ROLE",
    "AreaScope",
    "api_role_ready",
    "as_owner",
    "enter",
    "leave",
    "row_in_scope",
    "scope_clause",
    "scope_sql",
    "scope_terms",
    "setting",
]
