"""SQLAlchemy / GeoAlchemy2 tables generated from the layer specs.

Every constraint the domain knows is declared here so that the database itself refuses
bad rows: valid, non-empty 2-D geometry in China, code formats, codes that nest by prefix,
foreign keys up the admin pyramid and, for versioned layers, no overlapping versions.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.types import TypeEngine

from gridgov.layers.edit_support import build_edit_tables
from gridgov.layers.map_support import build_map_support_tables
from gridgov.layers.plan_support import build_plan_tables
from gridgov.layers.registry import Registry
from gridgov.layers.spec import (
    SRID,
    ColumnType,
    GeometryKind,
    LayerSpec,
    digits_check,
)
from gridgov.layers.spec import Column as SpecColumn
from gridgov.layers.support import build_support_tables
from gridgov.layers.unit_support import build_unit_tables

# China's extent (73–136°E, 18–54°N); rows outside it are refused by the database too.
CHINA_BOUNDS = (73.0, 18.0, 136.0, 54.0)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_TYPES: dict[ColumnType, type[TypeEngine[Any]]] = {
    ColumnType.TEXT: Text,
    ColumnType.INTEGER: Integer,
    ColumnType.BIGINT: BigInteger,
    ColumnType.FLOAT: Double,
    ColumnType.BOOLEAN: Boolean,
    ColumnType.DATE: Date,
}


def _sql_type(kind: ColumnType) -> TypeEngine[Any]:
    if kind is ColumnType.TIMESTAMP:
        return DateTime(timezone=True)
    return _TYPES[kind]()


def _quote(value: str) -> str:
    """A SQL string literal for DDL built from the registry (never from requests)."""
    return "'" + value.replace("'", "''") + "'"


def _attribute_column(col: SpecColumn) -> tuple[Column[Any], list[CheckConstraint]]:
    fk = [ForeignKey(col.references)] if col.references else []  # "layer.column" = table.column
    column: Column[Any] = Column(
        col.name,
        _sql_type(col.type),
        *fk,
        nullable=not col.required,
        unique=col.unique or None,
        index=col.filterable and not col.unique,
        server_default=text(col.default) if col.default else None,
        comment=f"{col.title_zh} ({col.title_en})",
    )
    checks: list[CheckConstraint] = []
    if col.pattern:
        checks.append(
            CheckConstraint(f"{col.name} ~ {_quote(col.pattern)}", name=f"{col.name}_format")
        )
    if col.choices:
        values = ", ".join(_quote(c.value) for c in col.choices)
        checks.append(CheckConstraint(f"{col.name} IN ({values})", name=f"{col.name}_choice"))
    if col.minimum is not None:
        checks.append(CheckConstraint(f"{col.name} >= {col.minimum!r}", name=f"{col.name}_min"))
    if col.maximum is not None:
        checks.append(CheckConstraint(f"{col.name} <= {col.maximum!r}", name=f"{col.name}_max"))
    if col.type is ColumnType.FLOAT:
        checks.append(CheckConstraint(f"{col.name} <> 'NaN'::float8", name=f"{col.name}_not_nan"))
    return column, checks


def _admin_columns(spec: LayerSpec, registry: Registry) -> tuple[list[Column[Any]], list[Any]]:
    """The layer's own code and the codes it carries, with format, nesting and FK checks."""
    columns: list[Column[Any]] = []
    constraints: list[Any] = []
    levels = spec.admin_levels
    for level in levels:
        name = spec.admin_column(level)
        own = level is spec.level
        parent_layer = registry.for_level(level)
        # Grid codes repeat across versions, so they are checked by format only.
        fk = (
            [ForeignKey(f"{parent_layer.table_name}.code")]
            if parent_layer and not own and not parent_layer.versioned
            else []
        )
        required = own or level in spec.required_levels
        columns.append(
            Column(
                name,
                Text,
                *fk,
                nullable=not required,
                unique=(own and not spec.versioned) or None,
                index=not (own and not spec.versioned),
                comment=f"{level.title_zh}代码 ({level.value} code)",
            )
        )
        constraints.append(
            CheckConstraint(digits_check(name, level.code_length), name=f"{name}_format")
        )
    # Codes nest by prefix: a community code starts with its township's code, and so on.
    for upper, lower in pairwise(levels):
        upper_col, lower_col = spec.admin_column(upper), spec.admin_column(lower)
        constraints.append(
            CheckConstraint(
                f"left({lower_col}, {upper.code_length}) = {upper_col}",
                name=f"{lower_col}_in_{upper.value}",
            )
        )
    return columns, constraints


def _geometry_constraints(spec: LayerSpec) -> list[CheckConstraint]:
    xmin, ymin, xmax, ymax = CHINA_BOUNDS
    checks = [
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        CheckConstraint("NOT ST_IsEmpty(geom)", name="geom_not_empty"),
        CheckConstraint(
            f"ST_XMin(geom) >= {xmin} AND ST_XMax(geom) <= {xmax} "
            f"AND ST_YMin(geom) >= {ymin} AND ST_YMax(geom) <= {ymax}",
            name="geom_in_china",
        ),
    ]
    if spec.geometry is GeometryKind.POINT_OR_POLYGON:
        # Not "ST_GeometryType(geom) IN (...)": PostGIS's geometry_columns view would parse
        # that as a single-type column and tell GDAL / QGIS the layer holds only points.
        allowed = ", ".join(_quote(t) for t in spec.geometry.allowed_types)
        checks.append(
            CheckConstraint(
                f"array_position(ARRAY[{allowed}], ST_GeometryType(geom)) IS NOT NULL",
                name="geom_type",
            )
        )
        checks.append(CheckConstraint("ST_NDims(geom) = 2", name="geom_2d"))
    return checks


def _version_constraints(spec: LayerSpec) -> list[Any]:
    table = spec.table_name
    return [
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_period"),
        UniqueConstraint("code", "valid_from"),
        # Two versions of one grid code may never be in force at the same moment.
        ExcludeConstraint(
            (literal_column("code"), "="),
            (func.tstzrange(literal_column("valid_from"), literal_column("valid_to")), "&&"),
            name=f"ex_{table}_code_period",
            using="gist",
        ),
    ]


TILE_SRID = 3857  # Web Mercator: what vector tiles are cut in
TILE_GEOMETRY = "geom_3857"


def has_tile_geometry(spec: LayerSpec) -> bool:
    """Layers that keep their geometry in Web Mercator too: every non-point layer.

    Tiles then skip reprojecting polygons on every request (the stored column is computed
    by PostgreSQL from ``geom``, so no writer can leave it out of step). Point layers do not:
    a point is cheap to reproject, and an extra column would slow their bulk imports.
    """
    return spec.geometry is not GeometryKind.POINT


def _tile_geometry(spec: LayerSpec, geometry_type: str) -> list[Column[Any]]:
    if not has_tile_geometry(spec):
        return []
    return [
        Column(
            TILE_GEOMETRY,
            Geometry(geometry_type=geometry_type, srid=TILE_SRID, spatial_index=False),
            Computed(f"ST_Transform(geom, {TILE_SRID})", persisted=True),
            comment="瓦片用 Web 墨卡托几何 (geom in EPSG:3857 for tiles; computed)",
        )
    ]


def build_table(spec: LayerSpec, registry: Registry, metadata: MetaData) -> Table:
    """The table of one layer spec, added to ``metadata``."""
    admin_columns, admin_constraints = _admin_columns(spec, registry)
    attribute_columns: list[Column[Any]] = []
    attribute_checks: list[CheckConstraint] = []
    for col in spec.columns:
        column, checks = _attribute_column(col)
        attribute_columns.append(column)
        attribute_checks.extend(checks)
    geometry_type = (
        "GEOMETRY" if spec.geometry is GeometryKind.POINT_OR_POLYGON else spec.geometry.value
    )
    extra: list[Any] = []
    if spec.versioned:
        extra += [
            Column(
                "valid_from",
                DateTime(timezone=True),
                nullable=False,
                server_default=func.now(),
                comment="生效时间 (valid from)",
            ),
            Column(
                "valid_to",
                DateTime(timezone=True),
                nullable=True,
                comment="失效时间 (valid to; NULL while in force)",
            ),
            *_version_constraints(spec),
        ]
    return Table(
        spec.table_name,
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        *admin_columns,
        *attribute_columns,
        Column(
            "synthetic",
            Boolean,
            nullable=False,
            server_default=text("false"),
            comment="演示用合成数据 (synthetic demo data)",
        ),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        *extra,
        Column(
            "geom",
            Geometry(geometry_type=geometry_type, srid=SRID, spatial_index=True),
            nullable=False,
        ),
        *_tile_geometry(spec, geometry_type),
        *admin_constraints,
        *attribute_checks,
        *_geometry_constraints(spec),
        comment=f"{spec.title_zh} ({spec.title_en})",
    )


def build_metadata(registry: Registry) -> MetaData:
    """One ``MetaData`` holding the table of every layer in ``registry``."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for spec in registry:
        build_table(spec, registry, metadata)
    if "incident" in registry and "grid" in registry:
        build_support_tables(metadata)
        build_map_support_tables(metadata)
        build_edit_tables(metadata)
        build_plan_tables(metadata)
        build_unit_tables(metadata)
    return metadata


__all__ = [
    "CHINA_BOUNDS",
    "NAMING_CONVENTION",
    "TILE_GEOMETRY",
    "TILE_SRID",
    "build_metadata",
    "build_table",
    "has_tile_geometry",
]
