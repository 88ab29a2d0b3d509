"""The registry refuses unsound specs and describes every PRODUCT.md layer (no database)."""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

import pytest

from gridgov.errors import NotFoundError, RegistryError
from gridgov.layers.catalog import ALL_LAYERS, DISTRICT, HAZARD_ZONE, INCIDENT
from gridgov.layers.registry import LayerId, Registry, default_registry
from gridgov.layers.spec import AdminLevel, Column, ColumnType, GeometryKind, Style

PRODUCT_LAYERS = {
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
}


def test_every_product_layer_is_registered_once() -> None:
    registry = default_registry()
    assert set(registry.ids) == PRODUCT_LAYERS
    assert len(registry) == len(PRODUCT_LAYERS)
    assert set(get_args(LayerId)) == PRODUCT_LAYERS


def test_every_layer_has_chinese_title_legend_and_zoom() -> None:
    for spec in default_registry():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in spec.title_zh), spec.id
        assert spec.title_en
        assert spec.legend(), spec.id
        assert 0 <= spec.min_zoom <= spec.max_zoom <= 24


def test_pyramid_levels_and_codes() -> None:
    registry = default_registry()
    for level, layer in [
        (AdminLevel.DISTRICT, "district"),
        (AdminLevel.TOWNSHIP, "township"),
        (AdminLevel.COMMUNITY, "community"),
        (AdminLevel.GRID, "grid"),
    ]:
        spec = registry.for_level(level)
        assert spec is not None
        assert spec.id == layer
        assert spec.admin_column(level) == "code"
    grid = registry.get("grid")
    assert grid.versioned
    assert grid.admin_levels == tuple(AdminLevel)
    # Every non-pyramid layer can be filtered at least by district.
    for spec in registry:
        assert AdminLevel.DISTRICT in spec.admin_levels, spec.id


def test_risk_legend_is_red_orange_yellow_blue() -> None:
    legend = HAZARD_ZONE.legend()
    assert [e.title_zh for e in legend] == ["重大风险", "较大风险", "一般风险", "低风险"]
    assert [e.colour for e in legend] == ["#e60012", "#f39800", "#f5c400", "#0068b7"]


def test_incident_lifecycle_is_ordered() -> None:
    statuses = [c.value for c in INCIDENT.column("status").choices]
    assert statuses == [
        "reported",
        "registered",
        "dispatched",
        "handling",
        "handled",
        "closed",
        "evaluated",
    ]


def test_unknown_layer_is_not_found() -> None:
    with pytest.raises(NotFoundError) as caught:
        default_registry().get("no_such_layer")
    assert "no_such_layer" in caught.value.detail


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "Bad-Id"}, "lower-case identifier"),
        ({"id": "collections"}, "reserved"),
        ({"style": Style(stroke="red")}, "#rrggbb"),
        ({"min_zoom": 18, "max_zoom": 3}, "zoom range"),
        ({"columns": (Column("geom", ColumnType.TEXT, "几何", "geometry"),)}, "reserved"),
        ({"carries": (AdminLevel.DISTRICT,)}, "carries its own level"),
        ({"style": Style(stroke="#000000", by="nothing")}, "unknown column"),
    ],
)
def test_unsound_specs_are_refused(change: dict[str, object], message: str) -> None:
    spec = replace(DISTRICT, **change)  # type: ignore[arg-type]
    others = [s for s in ALL_LAYERS if s.id != "district"]
    with pytest.raises(RegistryError, match=message):
        Registry([spec, *others])


def test_duplicate_and_misordered_layers_are_refused() -> None:
    with pytest.raises(RegistryError, match="twice"):
        Registry([*ALL_LAYERS, DISTRICT])
    with pytest.raises(RegistryError, match="must come after"):
        Registry(reversed(ALL_LAYERS))


def test_reference_to_unknown_layer_is_refused() -> None:
    broken = replace(
        HAZARD_ZONE,
        id="broken",
        columns=(Column("owner", ColumnType.TEXT, "所属", "owner", references="nowhere.code"),),
        style=Style(stroke="#000000"),
    )
    with pytest.raises(RegistryError, match="unknown or later layer"):
        default_registry().with_layers(broken)


def test_geometry_kinds_name_postgis_types() -> None:
    assert GeometryKind.MULTIPOLYGON.allowed_types == ("ST_MultiPolygon",)
    assert set(GeometryKind.POINT_OR_POLYGON.allowed_types) == {
        "ST_Point",
        "ST_Polygon",
        "ST_MultiPolygon",
    }
