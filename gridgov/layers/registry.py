"""The layer registry: an immutable, validated collection of layer specs.

It is the single source of truth from which tables, routes, legends and commands are
derived; it refuses specs whose references or ids would clash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from types import MappingProxyType
from typing import Literal, get_args

from gridgov.errors import NotFoundError, RegistryError
from gridgov.layers.catalog import ALL_LAYERS
from gridgov.layers.spec import AdminLevel, LayerSpec

LayerId = Literal[
    "district",
    "township",
    "community",
    "grid",
    "building",
    "police_unit",
    "urban_unit",
    "emergency_unit",
    "hazard_zone",
    "rental_housing",
    "key_site",
    "shelter",
    "incident",
]

# Ids that would clash with routes or PostGIS/PostgreSQL objects.
RESERVED_IDS = frozenset(
    {
        "api",
        "collections",
        "conformance",
        "docs",
        "health",
        "map",
        "static",
        "tiles",
        "spatial_ref_sys",
        "geometry_columns",
        "geography_columns",
        "alembic_version",
    }
)


class Registry:
    """Immutable mapping of layer id to spec, ordered so that parents come first."""

    def __init__(self, specs: Iterable[LayerSpec]) -> None:
        ordered: dict[str, LayerSpec] = {}
        for spec in specs:
            spec.validate()
            if spec.id in ordered:
                raise RegistryError(f"图层 {spec.id} 重复注册", f"layer {spec.id} registered twice")
            if spec.id in RESERVED_IDS:
                raise RegistryError(
                    f"图层编号 {spec.id} 为保留字", f"layer id {spec.id} is reserved"
                )
            ordered[spec.id] = spec
        self._specs: Mapping[str, LayerSpec] = MappingProxyType(ordered)
        self._check_pyramid()
        self._check_references()

    def _check_pyramid(self) -> None:
        seen: dict[AdminLevel, str] = {}
        for spec in self._specs.values():
            if spec.level is None:
                continue
            if spec.level in seen:
                raise RegistryError(
                    f"{spec.level.title_zh} 层级由多个图层定义",
                    f"admin level {spec.level} is defined by {seen[spec.level]} and {spec.id}",
                )
            if spec.level.parent and spec.level.parent not in seen:
                raise RegistryError(
                    f"图层 {spec.id} 须排在上级图层之后",
                    f"layer {spec.id} must come after its parent level {spec.level.parent}",
                )
            seen[spec.level] = spec.id

    def _check_references(self) -> None:
        earlier: set[str] = set()
        for spec in self._specs.values():
            for col in spec.columns:
                if col.references is None:
                    continue
                layer_id, _, column = col.references.partition(".")
                target = self._specs.get(layer_id)
                if target is None or layer_id not in earlier:
                    raise RegistryError(
                        f"图层 {spec.id} 的列 {col.name} 引用了未知或靠后的图层 {layer_id}",
                        f"{spec.id}.{col.name} references unknown or later layer {layer_id}",
                    )
                if column not in {"code", "id"} and not target.column(column).unique:
                    raise RegistryError(
                        f"引用的列 {col.references} 不唯一",
                        f"{spec.id}.{col.name} references non-unique {col.references}",
                    )
            earlier.add(spec.id)

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, layer_id: object) -> bool:
        return layer_id in self._specs

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def get(self, layer_id: str) -> LayerSpec:
        """The spec of ``layer_id``; an unknown id is a 404 for the API, not a KeyError."""
        try:
            return self._specs[layer_id]
        except KeyError:
            # Only an id-like name is repeated back; anything else came from a stranger.
            shown = layer_id if re.fullmatch(r"[a-z][a-z0-9_]{0,62}", layer_id) else "(?)"
            raise NotFoundError(
                f"没有名为 {shown!r} 的图层",
                f"no layer named {shown!r}",
                public={"layer": shown},
            ) from None

    def for_level(self, level: AdminLevel) -> LayerSpec | None:
        """The pyramid layer that defines ``level`` (e.g. ``community``), if registered."""
        return next((s for s in self._specs.values() if s.level is level), None)

    def only(self, keep: Callable[[LayerSpec], bool]) -> Registry:
        """A view holding only the layers ``keep`` accepts (e.g. those a user may read).

        Not checked again: its specs come from this registry, which was checked whole, and a
        view may leave out a layer that a kept one refers to.
        """
        view = object.__new__(Registry)
        view._specs = MappingProxyType({k: v for k, v in self._specs.items() if keep(v)})
        return view

    def with_layers(self, *extra: LayerSpec) -> Registry:
        """A new registry with more layers: how tests and plug-ins add one spec."""
        return Registry([*self._specs.values(), *extra])


@cache
def default_registry() -> Registry:
    """The registry of every layer gridgov ships; built once, never mutated."""
    registry = Registry(ALL_LAYERS)
    if set(registry.ids) != set(get_args(LayerId)):
        raise RegistryError("LayerId 与目录不一致", "LayerId literal and catalog disagree")
    return registry
