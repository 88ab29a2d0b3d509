"""An offline folium map: every script, stylesheet and image comes from gridgov's static files.

folium's stock template loads Leaflet, jQuery, Bootstrap, Font-Awesome and awesome-markers
from CDNs, which an isolated government intranet cannot reach. :class:`OfflineMap` replaces
that list with the vendored Leaflet only; each page adds the few plugins it needs and its own
script, which receives the Leaflet map and a JSON config built here from the registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import folium
from branca.element import Element, Figure
from folium.elements import JSCSSMixin
from folium.template import Template

from gridgov.settings import Settings

STATIC: Final = "/static"
VENDOR: Final = f"{STATIC}/vendor"
OWN: Final = f"{STATIC}/gridgov"

LEAFLET_JS: Final = ("leaflet", f"{VENDOR}/leaflet/leaflet.js")
LEAFLET_CSS: Final = ("leaflet_css", f"{VENDOR}/leaflet/leaflet.css")
VECTORGRID_JS: Final = (
    "vectorgrid",
    f"{VENDOR}/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js",
)
HEAT_JS: Final = ("heat", f"{VENDOR}/leaflet.heat/leaflet-heat.js")
GEOMAN_JS: Final = ("geoman", f"{VENDOR}/leaflet-geoman/leaflet-geoman.min.js")
GEOMAN_CSS: Final = ("geoman_css", f"{VENDOR}/leaflet-geoman/leaflet-geoman.css")
CHART_JS: Final = ("gg_chart", f"{OWN}/chart.js")
# Our own scripts, in load order: the datum shift and shared helpers come first.
COMMON_JS: Final = (("gg_gcj02", f"{OWN}/gcj02.js"), ("gg_common", f"{OWN}/common.js"))
MAPS_CSS: Final = ("gg_css", f"{OWN}/maps.css")

# Wuxi: the map opens on the whole city before any data has arrived.
WUXI_CENTRE: Final = (31.55, 120.15)
WUXI_ZOOM: Final = 9
MIN_ZOOM: Final = 6
MAX_ZOOM: Final = 19

SYNTHETIC_NOTE_ZH: Final = "区县以下数据为合成数据（演示），非真实情况"
SYNTHETIC_NOTE_EN: Final = "synthetic demo data below district level"


class OfflineMap(folium.Map):
    """A ``folium.Map`` whose assets are all local: only Leaflet, none of folium's CDN list.

    The lists are per instance, so that adding a plugin to one page never leaks into another.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_js: list[tuple[str, str]] = [LEAFLET_JS]
        self.default_css: list[tuple[str, str]] = [LEAFLET_CSS]


class PageScript(JSCSSMixin):
    """The page's own panel (HTML), assets and start-up call ``GridGov.<page>.init(map, cfg)``."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}{{ this.panel }}{% endmacro %}
        {% macro script(this, kwargs) %}
            GridGov.{{ this.page }}.init({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        page: str,
        panel: str,
        config: Mapping[str, Any],
        js: Sequence[tuple[str, str]],
        css: Sequence[tuple[str, str]],
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "PageScript"
        self.page = page
        self.panel = panel
        self.config = dict(config)
        self.default_js = list(js)
        self.default_css = list(css)


def datum_shift(settings: Settings) -> str | None:
    """``gcj02`` when gridgov's own data must be shifted to line up with the base map.

    Only a GCJ-02 base map needs it; without a base map nothing is shifted (CGCS2000 is
    drawn as WGS84, within centimetres).
    """
    if settings.basemap_url and settings.basemap_datum == "gcj02":
        return "gcj02"
    return None


def map_config(settings: Settings, synthetic: Mapping[str, bool]) -> dict[str, Any]:
    """What every page's script needs: datum, attribution, synthetic note, zoom limits."""
    note = f"{SYNTHETIC_NOTE_ZH} ({SYNTHETIC_NOTE_EN})" if any(synthetic.values()) else ""
    return {
        "displayDatum": datum_shift(settings),
        "hasBasemap": bool(settings.basemap_url),
        "syntheticNote": note,
        "synthetic": dict(synthetic),
        "minZoom": MIN_ZOOM,
        "maxZoom": MAX_ZOOM,
        "maxBBoxAreaKm2": settings.max_bbox_area_km2,
    }


def render_page(
    settings: Settings,
    *,
    title: str,
    page: str,
    panel: str,
    config: Mapping[str, Any],
    plugins: Sequence[tuple[str, str]] = (),
    plugin_css: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole HTML document of one map page, built with folium.

    ``plugins`` are scripts the page needs besides Leaflet and ``common.js`` (VectorGrid,
    heat, the chart, Geoman), ``plugin_css`` their stylesheets;
    ``/static/gridgov/<page>.js`` holds the page's own code.
    """
    fmap = OfflineMap(
        location=WUXI_CENTRE,
        zoom_start=WUXI_ZOOM,
        tiles=None,
        max_zoom=MAX_ZOOM,
        control_scale=True,
        zoom_control="topright",
    )
    if settings.basemap_url:
        folium.TileLayer(
            tiles=settings.basemap_url,
            attr=settings.basemap_attribution or "底图 (base map)",
            name="底图",
            max_zoom=MAX_ZOOM,
            max_native_zoom=18,
            overlay=False,
            control=False,
        ).add_to(fmap)
    scripts = [*plugins, *COMMON_JS, (f"gg_{page}", f"{OWN}/{page}.js")]
    PageScript(page, panel, config, scripts, [*plugin_css, MAPS_CSS]).add_to(fmap)
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root.title = title
    # An empty icon, so that the browser does not ask for /favicon.ico (a 404).
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="favicon")
    html: str = root.render()
    # The stock document says no language; our users read Chinese (fonts pick CJK glyphs).
    return html.replace("<html>", '<html lang="zh-CN">', 1)


def api_urls() -> dict[str, str]:
    """Paths of the APIs the scripts call (all on gridgov itself; ``{layer}`` filled in JS)."""
    return {
        "itemsUrl": "/collections/{layer}/items",
        "tilesUrl": "/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}",
        "areasUrl": "/map/areas",
        "h3Url": "/aggregates/incidents/h3",
        "byUrl": "/aggregates/incidents/by/{level}",
        "trendUrl": "/aggregates/incidents/trend",
        "dockingGridsUrl": "/docking/grids",
        "dockingTownshipsUrl": "/docking/townships",
    }


NAV_PAGES: Final = (
    ("/map", "综合地图"),
    ("/map/heatmap", "事件热力"),
    ("/map/docking", "网格对接"),
    ("/editor", "网格编辑"),
)


def nav(current: str) -> str:
    """Links between the pages (local, so they work offline)."""
    links = "".join(
        f'<a href="{href}"' + (' aria-current="page"' if href == current else "") + f">{title}</a>"
        for href, title in NAV_PAGES
    )
    return f'<nav class="gg-nav">{links}</nav>'
