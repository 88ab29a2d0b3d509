"""The declarative layer spec: everything gridgov knows about one layer, in one place.

Tables, migrations, importers, feature and tile endpoints, legends and the layer switcher
are all derived from these specs, so adding a layer means adding one spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from gridgov.errors import RegistryError

SRID = 4490  # CGCS2000, China's official datum; every layer is stored in it.
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class GeometryKind(StrEnum):
    """Geometry a layer stores; ``POINT_OR_POLYGON`` is a typed mix checked by a constraint."""

    POINT = "POINT"
    POLYGON = "POLYGON"
    MULTIPOLYGON = "MULTIPOLYGON"
    POINT_OR_POLYGON = "POINT_OR_POLYGON"

    @property
    def allowed_types(self) -> tuple[str, ...]:
        """``ST_GeometryType`` values the column accepts."""
        return {
            GeometryKind.POINT: ("ST_Point",),
            GeometryKind.POLYGON: ("ST_Polygon",),
            GeometryKind.MULTIPOLYGON: ("ST_MultiPolygon",),
            GeometryKind.POINT_OR_POLYGON: ("ST_Point", "ST_Polygon", "ST_MultiPolygon"),
        }[self]


class ColumnType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    BIGINT = "bigint"  # ids of other rows
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"  # always with time zone


class AdminLevel(StrEnum):
    """The admin pyramid, top down; the value is the length of the level's code."""

    DISTRICT = "district"
    TOWNSHIP = "township"
    COMMUNITY = "community"
    GRID = "grid"

    @property
    def code_length(self) -> int:
        return {"district": 6, "township": 9, "community": 12, "grid": 15}[self.value]

    @property
    def parent(self) -> AdminLevel | None:
        order = list(AdminLevel)
        index = order.index(self)
        return order[index - 1] if index else None

    @property
    def title_zh(self) -> str:
        return {"district": "区县", "township": "镇街", "community": "村社区", "grid": "网格"}[
            self.value
        ]


def digits_check(column: str, length: int) -> str:
    """SQL that holds when ``column`` is exactly ``length`` ASCII digits (NULL passes).

    The same rule as ``column ~ '^[0-9]{length}$'`` at a third of the cost: a million-row
    import checks four codes a row (migration 0016).
    """
    return f"(octet_length({column}) = {length} AND ltrim({column}, '0123456789') = '')"


class LayerGroup(StrEnum):
    """Groups of the map's layer switcher."""

    ADMIN = "admin"
    GRIDS = "grids"
    UNITS = "units"
    SITES = "sites"
    INCIDENTS = "incidents"

    @property
    def title_zh(self) -> str:
        return {
            "admin": "行政区划",
            "grids": "网格",
            "units": "部门责任区",
            "sites": "场所与隐患",
            "incidents": "事件",
        }[self.value]


@dataclass(frozen=True)
class Choice:
    """One allowed value of a coded column, with its labels and legend colour."""

    value: str
    title_zh: str
    title_en: str
    colour: str | None = None


@dataclass(frozen=True)
class Column:
    """An attribute column; its constraints become CHECKs in the database."""

    name: str
    type: ColumnType
    title_zh: str
    title_en: str
    required: bool = False
    unique: bool = False
    pattern: str | None = None  # POSIX regex the value must match (CHECK col ~ pattern)
    choices: tuple[Choice, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    references: str | None = None  # "layer.column" for a foreign key
    filterable: bool = False  # offered as a query filter by the APIs
    personal: bool = False  # personal data (个人信息): masked unless granted
    default: str | None = None  # SQL expression for a server default

    def choice(self, value: str) -> Choice:
        for item in self.choices:
            if item.value == value:
                return item
        raise RegistryError(
            f"列 {self.name} 没有取值 {value!r}", f"{self.name}: no choice {value!r}"
        )


@dataclass(frozen=True)
class LegendEntry:
    title_zh: str
    title_en: str
    colour: str
    value: str | None = None  # the value of ``Style.by`` this entry stands for


@dataclass(frozen=True)
class Style:
    """How the layer is drawn; ``by`` colours features by a coded column's choices."""

    stroke: str
    fill: str | None = None
    fill_opacity: float = 0.2
    weight: float = 1.5
    radius: float = 5.0  # point symbols, in pixels
    dash: str | None = None
    by: str | None = None


@dataclass(frozen=True)
class LayerSpec:
    """One layer: a PostGIS table, its API collection, its map layer and its legend."""

    id: str
    title_zh: str
    title_en: str
    geometry: GeometryKind
    group: LayerGroup
    columns: tuple[Column, ...]
    style: Style
    description_zh: str = ""
    level: AdminLevel | None = None  # set on the admin pyramid layers themselves
    carries: tuple[AdminLevel, ...] = ()  # admin codes the layer carries as *_code columns
    required_levels: tuple[AdminLevel, ...] = ()  # of those, the ones that must be set
    versioned: bool = False  # valid_from / valid_to: versions may coexist over time
    min_zoom: int = 0
    max_zoom: int = 22
    personal_data: bool = False
    # Point layers only: up to this zoom a tile carries clusters (count + mean position per
    # 1/64-tile cell, kept by triggers in ``tile_cluster``) instead of every point, because a
    # city-wide zoom-12 tile of a million incidents would be megabytes no browser can draw.
    cluster_max_zoom: int | None = None

    @property
    def table_name(self) -> str:
        return self.id

    @property
    def code_column(self) -> str | None:
        """The column holding the layer's own admin code, for pyramid layers."""
        return "code" if self.level else None

    def admin_column(self, level: AdminLevel) -> str:
        """Column that holds the code of ``level`` for this layer's features."""
        if level is self.level:
            return "code"
        if level in self.carries:
            return f"{level.value}_code"
        raise RegistryError(
            f"图层 {self.id} 不含 {level.title_zh} 代码", f"layer {self.id} has no {level} code"
        )

    @property
    def admin_levels(self) -> tuple[AdminLevel, ...]:
        """Every level this layer can be filtered by, top down."""
        own = (self.level,) if self.level else ()
        return tuple(lv for lv in AdminLevel if lv in own or lv in self.carries)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise RegistryError(
            f"图层 {self.id} 没有列 {name}", f"layer {self.id} has no column {name}"
        )

    def legend(self) -> tuple[LegendEntry, ...]:
        """Legend entries: one per choice of ``style.by``, else one for the layer."""
        if self.style.by:
            by = self.column(self.style.by)
            return tuple(
                LegendEntry(c.title_zh, c.title_en, c.colour or self.style.stroke, c.value)
                for c in by.choices
            )
        return (LegendEntry(self.title_zh, self.title_en, self.style.fill or self.style.stroke),)

    def validate(self) -> None:
        """Refuse a spec that could not become a sound table; called by the registry."""
        problems: list[str] = []
        if not IDENTIFIER.match(self.id):
            problems.append(f"id {self.id!r} is not a lower-case identifier")
        names = [c.name for c in self.columns]
        reserved = {"id", "geom", "synthetic", "updated_at", "valid_from", "valid_to"} | {
            f"{lv.value}_code" for lv in AdminLevel
        }
        if self.level:
            reserved.add("code")
        problems += [f"column {n!r} is declared twice" for n in set(names) if names.count(n) > 1]
        problems += [f"column {n!r} is reserved" for n in names if n in reserved]
        problems += [f"column {n!r} is not an identifier" for n in names if not IDENTIFIER.match(n)]
        if self.level and self.level in self.carries:
            problems.append("a pyramid layer carries its own level as `code`, not as a column")
        if self.level and self.level.parent and self.level.parent not in self.carries:
            problems.append(f"{self.level} layer must carry its parent {self.level.parent} code")
        problems += [
            f"required level {lv} is not carried"
            for lv in self.required_levels
            if lv not in self.carries
        ]
        if not 0 <= self.min_zoom <= self.max_zoom <= 24:
            problems.append("zoom range must satisfy 0 <= min_zoom <= max_zoom <= 24")
        if self.cluster_max_zoom is not None and (
            self.geometry is not GeometryKind.POINT
            or not self.min_zoom <= self.cluster_max_zoom < self.max_zoom
        ):
            problems.append("cluster_max_zoom needs a point layer and min_zoom <= it < max_zoom")
        colours = [self.style.stroke, self.style.fill] + [
            ch.colour for c in self.columns for ch in c.choices
        ]
        problems += [
            f"colour {c!r} is not #rrggbb" for c in colours if c and not HEX_COLOUR.match(c)
        ]
        if self.style.by:
            try:
                if not self.column(self.style.by).choices:
                    problems.append(f"style.by column {self.style.by!r} has no choices")
            except RegistryError:
                problems.append(f"style.by names unknown column {self.style.by!r}")
        for col in self.columns:
            if col.choices and col.type is not ColumnType.TEXT:
                problems.append(f"column {col.name!r}: choices need a text column")
            if col.pattern and col.type is not ColumnType.TEXT:
                problems.append(f"column {col.name!r}: pattern needs a text column")
        if problems:
            raise RegistryError(
                f"图层 {self.id} 的定义有误：" + "; ".join(problems),
                f"layer spec {self.id} is invalid: " + "; ".join(problems),
            )


def choices(*items: tuple[str, str, str] | tuple[str, str, str, str]) -> tuple[Choice, ...]:
    """Shorthand for a tuple of :class:`Choice` from ``(value, zh, en[, colour])`` tuples."""
    return tuple(Choice(*item) for item in items)


__all__ = [
    "SRID",
    "AdminLevel",
    "Choice",
    "Column",
    "ColumnType",
    "GeometryKind",
    "LayerGroup",
    "LayerSpec",
    "LegendEntry",
    "Style",
    "choices",
]
