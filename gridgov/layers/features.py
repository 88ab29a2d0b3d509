"""Feature queries behind OGC API – Features: filters, paging, output CRS, masking.

Every statement is built with SQLAlchemy Core from the generated tables: identifiers come
from the registry, every request value is a bound parameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    MetaData,
    Select,
    Table,
    and_,
    func,
    literal,
    or_,
    select,
    true,
)

from gridgov.gis.ogc_crs import STORAGE_SRID, OgcCrs
from gridgov.layers import vault
from gridgov.layers.scope import AreaScope, as_owner, scope_clause
from gridgov.layers.spec import ColumnType, LayerSpec

# Densify a projected bbox before reprojecting it, so that its edges stay close to true.
_BBOX_SEGMENTS = 16


@dataclass(frozen=True)
class TimeFilter:
    """A closed interval; ``None`` ends are open. An instant has ``start == end``."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class FeatureQuery:
    """What a client asked for, already parsed and validated by the API layer."""

    out: OgcCrs
    limit: int = 100
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    bbox_crs: OgcCrs | None = None
    time: TimeFilter | None = None
    equals: Mapping[str, Sequence[str | bool]] = field(default_factory=dict)
    prefixes: Mapping[str, str] = field(default_factory=dict)
    scope: AreaScope = field(default_factory=AreaScope.everything)
    unmasked: bool = False  # personal data in clear: only for holders of the grant
    data_key: bytes | None = None  # needed (and given) only when ``unmasked``


@dataclass(frozen=True)
class Filter:
    """One attribute filter a collection offers: query parameter ``name`` on ``column``.

    ``kind`` is ``code`` (admin or unit code: exact, or a prefix ending in ``*``),
    ``choice`` (one or more comma-separated values of a coded column), ``text`` (exact)
    or ``boolean``.
    """

    name: str
    column: str
    kind: str
    title_zh: str
    title_en: str
    choices: tuple[str, ...] = ()
    code_length: int | None = None


def filters_for(spec: LayerSpec) -> dict[str, Filter]:
    """The attribute filters of a layer, from its spec: admin codes and filterable columns.

    Personal-data columns are never offered.
    """
    filters: dict[str, Filter] = {}
    for level in spec.admin_levels:
        column = spec.admin_column(level)
        name = f"{level.value}_code"
        zh, en = f"{level.title_zh}代码", f"{level.value} code"
        filters[name] = Filter(name, column, "code", zh, en, code_length=level.code_length)
        if column == "code":
            filters["code"] = Filter("code", "code", "code", zh, en, code_length=level.code_length)
    for col in spec.columns:
        if not col.filterable or col.personal or col.name in filters:
            continue
        if col.choices:
            values = tuple(c.value for c in col.choices)
            filters[col.name] = Filter(
                col.name, col.name, "choice", col.title_zh, col.title_en, values
            )
        elif col.name == "code" or col.name.endswith("_code"):
            filters[col.name] = Filter(col.name, col.name, "code", col.title_zh, col.title_en)
        elif col.type is ColumnType.TEXT:
            filters[col.name] = Filter(col.name, col.name, "text", col.title_zh, col.title_en)
        elif col.type is ColumnType.BOOLEAN:
            filters[col.name] = Filter(col.name, col.name, "boolean", col.title_zh, col.title_en)
    return filters


def temporal_column(spec: LayerSpec) -> str | None:
    """The timestamp a ``datetime`` filter applies to: a filterable timestamp column.

    Versioned layers filter on their validity period instead (see :func:`_time_clause`).
    """
    return next(
        (c.name for c in spec.columns if c.filterable and c.type is ColumnType.TIMESTAMP), None
    )


def has_time(spec: LayerSpec) -> bool:
    return spec.versioned or temporal_column(spec) is not None


def property_names(spec: LayerSpec) -> list[str]:
    """Properties of a feature: admin codes, then the spec's columns, then bookkeeping."""
    names = [spec.admin_column(level) for level in spec.admin_levels]
    names += [c.name for c in spec.columns]
    names += ["synthetic", "updated_at"]
    if spec.versioned:
        names += ["valid_from", "valid_to"]
    return names


def _time_clause(spec: LayerSpec, table: Table, time: TimeFilter | None) -> ColumnElement[bool]:
    if spec.versioned:
        # Default: the versions in force now. An interval keeps versions overlapping it.
        start = time.start if time else None
        end = time.end if time else None
        if time is None:
            now = func.now()
            return and_(
                table.c.valid_from <= now, or_(table.c.valid_to.is_(None), table.c.valid_to > now)
            )
        clauses: list[ColumnElement[bool]] = []
        if end is not None:
            clauses.append(table.c.valid_from <= end)
        if start is not None:
            clauses.append(or_(table.c.valid_to.is_(None), table.c.valid_to > start))
        return and_(true(), *clauses)
    column = temporal_column(spec)
    if time is None or column is None:
        return true()
    clauses = []
    if time.start is not None:
        clauses.append(table.c[column] >= time.start)
    if time.end is not None:
        clauses.append(table.c[column] <= time.end)
    return and_(true(), *clauses)


def _where(spec: LayerSpec, table: Table, query: FeatureQuery) -> list[ColumnElement[bool]]:
    clauses = [_time_clause(spec, table, query.time), scope_clause(spec, table, query.scope)]
    if query.bbox is not None and query.bbox_crs is not None:
        west, south, east, north = query.bbox
        envelope: Any = func.ST_MakeEnvelope(west, south, east, north, query.bbox_crs.srid)
        if query.bbox_crs.srid != STORAGE_SRID:
            if not query.bbox_crs.geographic:
                step = max(east - west, north - south) / _BBOX_SEGMENTS or 1.0
                envelope = func.ST_Segmentize(envelope, step)
            envelope = func.ST_Transform(envelope, STORAGE_SRID)
        clauses.append(func.ST_Intersects(table.c.geom, envelope))
    for name, values in query.equals.items():
        clauses.append(table.c[name].in_(list(values)))
    for name, prefix in query.prefixes.items():
        # starts_with() binds the prefix as a value: no LIKE wildcards from the request.
        clauses.append(func.starts_with(table.c[name], prefix))
    return clauses


def _geojson(table: Table, out: OgcCrs) -> Any:
    geom: Any = table.c.geom
    if out.srid != STORAGE_SRID:
        geom = func.ST_Transform(geom, out.srid)
    if out.swap:
        geom = func.ST_FlipCoordinates(geom)
    return func.ST_AsGeoJSON(geom, out.decimals, 0).label("__geojson")


def _statement(spec: LayerSpec, table: Table, out: OgcCrs, unmasked: bool = False) -> Select[Any]:
    columns = [table.c[name] for name in property_names(spec)]
    personal = vault.masked_columns(spec, table, unmasked)
    return select(table.c.id, *columns, *personal, _geojson(table, out))


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def to_feature(
    spec: LayerSpec, row: Mapping[Any, Any], data_key: bytes | None = None
) -> dict[str, Any]:
    """A GeoJSON Feature; personal-data columns masked unless ``data_key`` is given."""
    personal = set(vault.personal_columns(spec))
    properties: dict[str, object] = {}
    for name in property_names(spec):
        value = row[name]
        if name in personal:
            value = vault.personal_value(spec, row, name, data_key)
        properties[name] = _plain(value)
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": json.loads(row["__geojson"]),
        "properties": properties,
    }


def select_features(
    conn: Connection, spec: LayerSpec, metadata: MetaData, query: FeatureQuery
) -> tuple[list[dict[str, Any]], int]:
    """One page of features in a stable order (by id), and how many match in all."""
    table = metadata.tables[spec.table_name]
    where = _where(spec, table, query)
    page = (
        _statement(spec, table, query.out, query.unmasked)
        .where(*where)
        .order_by(table.c.id)
        .limit(query.limit)
        .offset(query.offset)
    )
    key = query.data_key if query.unmasked else None
    features = [to_feature(spec, row, key) for row in conn.execute(page).mappings()]
    if query.offset == 0 and len(features) < query.limit:
        matched = len(features)
    else:
        counted = select(func.count()).select_from(table).where(*where)
        matched = int(conn.execute(counted).scalar_one())
    return features, matched


def select_feature(
    conn: Connection,
    spec: LayerSpec,
    metadata: MetaData,
    feature_id: int,
    out: OgcCrs,
    scope: AreaScope | None = None,
    data_key: bytes | None = None,
) -> dict[str, Any] | None:
    """One feature by id (any version of a versioned layer) inside ``scope``, or None.

    Personal data comes in clear only when ``data_key`` is given.
    """
    table = metadata.tables[spec.table_name]
    statement = _statement(spec, table, out, data_key is not None).where(
        table.c.id == literal(feature_id),
        scope_clause(spec, table, scope or AreaScope.everything()),
    )
    row = conn.execute(statement).mappings().first()
    return to_feature(spec, row, data_key) if row else None


def feature_exists(conn: Connection, spec: LayerSpec, metadata: MetaData, feature_id: int) -> bool:
    """Whether the id exists at all (to audit an out-of-area attempt; never told the caller)."""
    table = metadata.tables[spec.table_name]
    statement = select(table.c.id).where(table.c.id == literal(feature_id))
    with as_owner(conn):  # row-level security would hide it: that is the question here
        return conn.execute(statement).first() is not None


def layer_extent(
    conn: Connection, spec: LayerSpec, metadata: MetaData, scope: AreaScope | None = None
) -> tuple[float, float, float, float] | None:
    """Lon/lat box of the layer's features (CRS84) in ``scope``, or None for none."""
    table = metadata.tables[spec.table_name]
    box = func.ST_Extent(table.c.geom).label("box")
    inner = select(box).where(scope_clause(spec, table, scope or AreaScope.everything())).subquery()
    row = conn.execute(
        select(
            func.ST_XMin(inner.c.box),
            func.ST_YMin(inner.c.box),
            func.ST_XMax(inner.c.box),
            func.ST_YMax(inner.c.box),
        )
    ).one()
    if row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


__all__ = [
    "FeatureQuery",
    "Filter",
    "TimeFilter",
    "feature_exists",
    "filters_for",
    "has_time",
    "layer_extent",
    "property_names",
    "select_feature",
    "select_features",
    "temporal_column",
    "to_feature",
]
