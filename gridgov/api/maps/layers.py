"""The registry as the map pages' scripts see it: styles, legends, popup columns, zooms.

Everything a page shows about a layer comes from its :class:`LayerSpec`, so a new layer
appears in the switcher, the legend and the popups without touching the pages.
"""

from __future__ import annotations

from typing import Any, Final

from gridgov.layers.registry import Registry
from gridgov.layers.spec import AdminLevel, LayerGroup, LayerSpec

# Layers first drawn at street zoom are the dense ones (grids, buildings, rentals,
# incidents: thousands in one view); they come as vector tiles, the rest as GeoJSON
# limited to the view's bbox.
TILE_FROM_ZOOM: Final = 12
# Largest GeoJSON page the scripts ask for (the Features API caps ``limit`` near 10,000).
GEOJSON_LIMIT: Final = 5000

# Columns every layer table has besides its spec's columns, titled for popups.
COMMON_TITLES: Final = {
    "code": "编码",
    "district_code": "区县代码",
    "township_code": "镇街代码",
    "community_code": "村社区代码",
    "grid_code": "网格代码",
    "valid_from": "生效时间",
    "valid_to": "失效时间",
}


def transport(spec: LayerSpec) -> str:
    """``tiles`` (Mapbox Vector Tiles) for dense layers, else ``geojson`` (bbox-limited)."""
    return "tiles" if spec.min_zoom >= TILE_FROM_ZOOM else "geojson"


def popup_columns(spec: LayerSpec) -> list[dict[str, Any]]:
    """Columns a popup may show, in spec order, with Chinese titles and choice labels.

    Personal columns (landlords' names, ID numbers, phones) are never offered, whatever
    the API would return.
    """
    columns: list[dict[str, Any]] = []
    if spec.level:
        columns.append({"name": "code", "title": f"{spec.level.title_zh}代码"})
    for col in spec.columns:
        if col.personal:
            continue
        entry: dict[str, Any] = {"name": col.name, "title": col.title_zh, "type": col.type.value}
        if col.choices:
            entry["choices"] = {c.value: c.title_zh for c in col.choices}
        columns.append(entry)
    for level in spec.carries:
        name = f"{level.value}_code"
        columns.append({"name": name, "title": COMMON_TITLES[name]})
    if spec.versioned:
        columns += [
            {"name": "valid_from", "title": COMMON_TITLES["valid_from"], "type": "timestamp"},
            {"name": "valid_to", "title": COMMON_TITLES["valid_to"], "type": "timestamp"},
        ]
    return columns


def layer_config(spec: LayerSpec, synthetic: bool) -> dict[str, Any]:
    """One layer for the scripts: how to fetch it, draw it, filter it and explain it."""
    style = spec.style
    return {
        "id": spec.id,
        "title": spec.title_zh,
        "titleEn": spec.title_en,
        "group": spec.group.value,
        "geometry": spec.geometry.value,
        "transport": transport(spec),
        "minZoom": spec.min_zoom,
        "maxZoom": spec.max_zoom,
        "adminLevels": [lv.value for lv in spec.admin_levels],
        "ownLevel": spec.level.value if spec.level else None,
        "versioned": spec.versioned,
        "synthetic": synthetic,
        "style": {
            "stroke": style.stroke,
            "fill": style.fill,
            "fillOpacity": style.fill_opacity,
            "weight": style.weight,
            "radius": style.radius,
            "dash": style.dash,
            "by": style.by,
        },
        "legend": [
            {"title": e.title_zh, "titleEn": e.title_en, "colour": e.colour, "value": e.value}
            for e in spec.legend()
        ],
        "columns": popup_columns(spec),
    }


def groups() -> list[dict[str, str]]:
    """The switcher's groups, in registry order, with Chinese titles."""
    return [{"id": g.value, "title": g.title_zh} for g in LayerGroup]


def levels() -> list[dict[str, str]]:
    """The admin pyramid the area selector walks (district → township → community)."""
    return [
        {"id": lv.value, "title": lv.title_zh}
        for lv in (AdminLevel.DISTRICT, AdminLevel.TOWNSHIP, AdminLevel.COMMUNITY)
    ]


def registry_config(registry: Registry, synthetic: dict[str, bool]) -> list[dict[str, Any]]:
    return [layer_config(spec, synthetic.get(spec.id, False)) for spec in registry]
