"""Every SQL statement of imports and exports.

An import is loaded with COPY into a temporary staging table first; the checks that need
the database (parent codes, spatial nesting, duplicates, clashes with stored rows) then
run as a handful of set-based queries over it, and the final write is one
``INSERT … SELECT``. Identifiers come only from the registry (validated by
``LayerSpec.validate``) and are quoted; values are always bound parameters, geometry
crosses as (hex) WKB.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from geoalchemy2 import Geometry
from psycopg import sql
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Row,
    Table,
    delete,
    func,
    or_,
    select,
    text,
)

from gridgov.layers import vault
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope, scope_clause, scope_sql
from gridgov.layers.spec import SRID, LayerSpec

STAGE = "gridgov_import_stage"
# Not stored from files: the key, the demo flag and the bookkeeping timestamp.
NOT_IMPORTED = ("id", "synthetic", "updated_at", "geom", "geom_3857")


@dataclass(frozen=True)
class Stage:
    table: Table
    columns: tuple[str, ...]  # data columns, in COPY order after row_no (geom last)


def _q(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def data_columns(layer: Table) -> tuple[str, ...]:
    return tuple(c.name for c in layer.columns if c.name not in NOT_IMPORTED)


def create_stage(conn: Connection, layer: Table) -> Stage:
    """A fresh temporary table shaped like ``layer`` (dropped at commit or by drop_stage)."""
    drop_stage(conn)
    columns = data_columns(layer)
    table = Table(
        STAGE,
        MetaData(),
        Column("row_no", Integer, primary_key=True),
        *(Column(name, layer.c[name].type) for name in columns),
        Column("geom", Geometry("GEOMETRY", srid=SRID, spatial_index=False)),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    table.create(conn)
    return Stage(table, (*columns, "geom"))


def drop_stage(conn: Connection) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS pg_temp.{STAGE}"))


def copy_rows(conn: Connection, stage: Stage, rows: Iterable[Sequence[Any]]) -> None:
    """COPY ``(row_no, *columns)`` tuples into the stage; geometry as hex EWKB text."""
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(STAGE),
        sql.SQL(", ").join(sql.Identifier(n) for n in ("row_no", *stage.columns)),
    )
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def unknown_parents(
    conn: Connection, spec: LayerSpec, registry: Registry
) -> list[tuple[int, str, str]]:
    """(row_no, column, code) for each carried admin code with no row in its layer."""
    found: list[tuple[int, str, str]] = []
    for level in spec.carries:
        parent = registry.for_level(level)
        if parent is None:
            continue
        column = _q(conn, spec.admin_column(level))
        statement = text(
            f"SELECT s.row_no, s.{column} FROM {STAGE} s WHERE s.{column} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {_q(conn, parent.table_name)} p "
            f"WHERE p.code = s.{column}) ORDER BY s.row_no"
        )
        found += [(r[0], spec.admin_column(level), r[1]) for r in conn.execute(statement)]
    return found


def unknown_references(conn: Connection, spec: LayerSpec) -> list[tuple[int, str, str]]:
    """(row_no, column, value) for attribute columns declared ``references="layer.column"``
    whose value is in no row of that layer (the foreign key would refuse it)."""
    found: list[tuple[int, str, str]] = []
    for col in spec.columns:
        if col.references is None:
            continue
        target_table, _, target_column = col.references.partition(".")
        column = _q(conn, col.name)
        statement = text(
            f"SELECT s.row_no, s.{column}::text FROM {STAGE} s WHERE s.{column} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {_q(conn, target_table)} p "
            f"WHERE p.{_q(conn, target_column)} = s.{column}) ORDER BY s.row_no"
        )
        found += [(r[0], col.name, r[1]) for r in conn.execute(statement)]
    return found


def outside_parent(
    conn: Connection, spec: LayerSpec, registry: Registry, tolerance_m: float, srid: int
) -> list[tuple[int, str, float]]:
    """(row_no, parent code, metres outside) for pyramid rows not inside their parent.

    Measured in the projected CRS ``srid`` (CGCS2000 Gauss-Kruger), with ``tolerance_m``
    of slack for digitising noise; "metres outside" is the farthest vertex of the part
    that sticks out.
    """
    if spec.level is None or spec.level.parent is None:
        return []
    parent = registry.for_level(spec.level.parent)
    if parent is None:
        return []
    column = _q(conn, spec.admin_column(spec.level.parent))
    statement = text(
        f"WITH parent AS ("
        f" SELECT p.code, ST_Transform(p.geom, :srid) AS g,"
        f" ST_Buffer(ST_Transform(p.geom, :srid), :tol) AS gb"
        f" FROM {_q(conn, parent.table_name)} p"
        f" WHERE p.code IN (SELECT s.{column} FROM {STAGE} s WHERE s.geom IS NOT NULL)),"
        f" child AS (SELECT s.row_no, s.{column} AS pcode, ST_Transform(s.geom, :srid) AS g"
        f" FROM {STAGE} s WHERE s.geom IS NOT NULL)"
        f" SELECT c.row_no, c.pcode,"
        f" (SELECT max(ST_Distance(d.geom, p.g))"
        f"  FROM ST_DumpPoints(ST_Difference(c.g, p.g)) d) AS metres"
        f" FROM child c JOIN parent p ON p.code = c.pcode"
        f" WHERE NOT ST_Covers(p.gb, c.g) ORDER BY c.row_no"
    )
    rows = conn.execute(statement, {"srid": srid, "tol": tolerance_m})
    return [(r[0], r[1], float(r[2] or 0.0)) for r in rows]


def _unique_columns(spec: LayerSpec) -> list[str]:
    columns = [c.name for c in spec.columns if c.unique]
    if spec.level is not None:
        columns.insert(0, "code")
    return columns


def _overlap(later: str, earlier: str) -> str:
    return (
        f"tstzrange(coalesce({earlier}.valid_from, now()), {earlier}.valid_to) && "
        f"tstzrange(coalesce({later}.valid_from, now()), {later}.valid_to)"
    )


def duplicates_in_stage(conn: Connection, spec: LayerSpec) -> list[tuple[int, str, int]]:
    """(row_no, column, earlier row_no) for values that repeat within the file; for a
    versioned layer, a code repeats only if the two versions overlap in time."""
    found: list[tuple[int, str, int]] = []
    for name in _unique_columns(spec):
        column = _q(conn, name)
        period = f" AND {_overlap('s', 'o')}" if spec.versioned and name == "code" else ""
        statement = text(
            f"SELECT s.row_no, min(o.row_no) FROM {STAGE} s JOIN {STAGE} o "
            f"ON o.{column} = s.{column} AND o.row_no < s.row_no{period} "
            f"GROUP BY s.row_no ORDER BY s.row_no"
        )
        found += [(r[0], name, r[1]) for r in conn.execute(statement)]
    return found


def clashes_with_table(conn: Connection, spec: LayerSpec) -> list[tuple[int, str, str]]:
    """(row_no, column, value) for staged values already stored in the layer; for a
    versioned layer, a code clashes when a stored version overlaps the new one in time."""
    found: list[tuple[int, str, str]] = []
    table = _q(conn, spec.table_name)
    for name in _unique_columns(spec):
        column = _q(conn, name)
        period = f" AND {_overlap('s', 't')}" if spec.versioned and name == "code" else ""
        statement = text(
            f"SELECT s.row_no, s.{column}::text FROM {STAGE} s WHERE EXISTS "
            f"(SELECT 1 FROM {table} t WHERE t.{column} = s.{column}{period}) "
            f"ORDER BY s.row_no"
        )
        found += [(r[0], name, r[1]) for r in conn.execute(statement)]
    return found


def referencing_rows(
    conn: Connection, spec: LayerSpec, metadata: MetaData
) -> list[tuple[str, int]]:
    """(table, rows) of other layers whose foreign keys point at ``spec``'s rows."""
    found: list[tuple[str, int]] = []
    for table in metadata.tables.values():
        if table.name == spec.table_name:
            continue
        keys = [fk.parent for fk in table.foreign_keys if fk.column.table.name == spec.table_name]
        if not keys:
            continue
        count = conn.execute(
            select(func.count()).select_from(table).where(or_(*(k.isnot(None) for k in keys)))
        ).scalar_one()
        if count:
            found.append((table.name, int(count)))
    return found


def delete_all(conn: Connection, layer: Table) -> int:
    return conn.execute(delete(layer)).rowcount


def insert_from_stage(conn: Connection, spec: LayerSpec, stage: Stage, skip: Sequence[int]) -> int:
    """Write every staged row not in ``skip``; an empty cell takes the column's default."""
    defaults = {c.name: c.default for c in spec.columns if c.default is not None}
    if spec.versioned:
        defaults["valid_from"] = "now()"
    names = stage.columns
    values = ", ".join(
        f"coalesce(s.{_q(conn, n)}, {defaults[n]})" if n in defaults else f"s.{_q(conn, n)}"
        for n in names
    )
    statement = text(
        f"INSERT INTO {_q(conn, spec.table_name)} ({', '.join(_q(conn, n) for n in names)}) "
        f"SELECT {values} FROM {STAGE} s WHERE NOT (s.row_no = ANY(:skip)) ORDER BY s.row_no"
    )
    return conn.execute(statement, {"skip": list(skip)}).rowcount


def count_outside(conn: Connection, spec: LayerSpec, scope: AreaScope, skip: Sequence[int]) -> int:
    """Staged rows (not in ``skip``) whose admin codes lie outside ``scope``."""
    condition, params = scope_sql(spec, scope, "s")
    statement = text(
        f"SELECT count(*) FROM {STAGE} s WHERE NOT (s.row_no = ANY(:skip)) AND NOT {condition}"
    )
    return int(conn.execute(statement, {"skip": list(skip), **params}).scalar_one())


def export_rows(
    conn: Connection,
    spec: LayerSpec,
    layer: Table,
    code_prefix: str | None,
    all_versions: bool,
    scope: AreaScope | None = None,
    unmasked: bool = False,
) -> list[Row[Any]]:
    """Rows for an export in ``scope``, each with ``wkb`` (the geometry as WKB), the data
    columns, ``__row_id`` and the personal-data vault entries (:mod:`gridgov.layers.vault`)."""
    columns = [layer.c[n] for n in data_columns(layer)]
    statement = select(
        *columns,
        layer.c.id.label("__row_id"),
        *vault.masked_columns(spec, layer, unmasked),
        func.ST_AsBinary(layer.c.geom).label("wkb"),
    ).where(scope_clause(spec, layer, scope or AreaScope.everything()))
    if code_prefix:
        level = next(
            (lv for lv in spec.admin_levels if lv.code_length >= len(code_prefix)),
            spec.admin_levels[-1] if spec.admin_levels else None,
        )
        if level is not None:
            statement = statement.where(
                layer.c[spec.admin_column(level)].startswith(code_prefix, autoescape=True)
            )
    if spec.versioned and not all_versions:
        now = func.now()
        statement = statement.where(
            layer.c.valid_from <= now, or_(layer.c.valid_to.is_(None), layer.c.valid_to > now)
        )
    return list(conn.execute(statement.order_by(layer.c.id)))
