"""The editor's unit mode as the server renders it: which kinds an account gets, where it
lands and opens (no browser; the page tests are ``test_editor_units_page.py``)."""

from __future__ import annotations

import json
import re

from gridgov.api.maps import editor, editor_units
from gridgov.layers.docking import unit_kinds
from gridgov.layers.registry import Registry
from gridgov.security.roles import Role, can_edit
from gridgov.settings import Settings


def rendered(settings: Settings, registry: Registry, role: Role) -> tuple[str, dict[str, object]]:
    kinds = [k for k in unit_kinds(registry) if can_edit(role, k.layer)]
    html = editor.page(
        settings,
        registry,
        {},
        can_edit=can_edit(role, "grid"),
        role_title=role.title_zh,
        api_token=None,
        plans_url="/plans",
        unit_kinds=kinds,
        home_area=editor_units.home_area(["320205001"]),
    )
    found = re.search(r"GridGov\.editor\.init\([^,]+, (\{.*\})\);", html)
    assert found is not None
    config = json.loads(found.group(1))
    units: dict[str, object] = config["units"]
    assert config["gridEditable"] is can_edit(role, "grid")
    return html, units


def test_police_land_on_policing_areas_of_their_township(
    settings: Settings, registry: Registry
) -> None:
    html, units = rendered(settings, registry, Role.POLICE)
    assert units["start"] == "police_unit/policing_area"
    assert units["home"] == ["320205", "320205001"]
    assert [k["layer"] for k in units["kinds"]] == ["police_unit", "police_unit"]  # type: ignore[attr-defined]
    assert 'value="grid"' not in html
    assert 'id="gg-retire"' in html


def test_admin_gets_every_layer_and_starts_on_grids(settings: Settings, registry: Registry) -> None:
    html, units = rendered(settings, registry, Role.ADMIN)
    assert units["start"] == "grid"
    assert units["home"] is None  # planners and admins choose their area
    layers = {k["layer"] for k in units["kinds"]}  # type: ignore[attr-defined]
    assert layers == {"police_unit", "urban_unit", "emergency_unit"}
    assert 'value="grid"' in html


def test_planner_has_no_unit_mode(settings: Settings, registry: Registry) -> None:
    html, units = rendered(settings, registry, Role.PLANNER)
    assert units["kinds"] == []
    assert 'id="gg-layer"' not in html
    assert 'id="gg-unit-tools"' not in html


def test_home_area_only_for_one_township_or_community() -> None:
    assert editor_units.home_area(["320205001"]) == ["320205", "320205001"]
    assert editor_units.home_area(["320205001002"]) == ["320205", "320205001", "320205001002"]
    assert editor_units.home_area(["320205"]) is None
    assert editor_units.home_area(["320205001", "320205002"]) is None
    assert editor_units.home_area(None) is None


def test_the_page_is_served_in_grid_words_with_each_layers_words(
    settings: Settings, registry: Registry
) -> None:
    """Every template is filled with the grid's words as served (grid mode unchanged);
    each unit kind carries its layer's words, the ones its edits are titled with."""
    html, units = rendered(settings, registry, Role.ADMIN)
    assert "与相邻网格重叠时" in html
    assert 'title="在所选网格上画一条线将其拆分"' in html
    assert 'placeholder="例如：按道路调整边界，均衡网格工作量"' in html
    assert "网格化服务管理 · 网格编辑</h1>" in html
    # no template is left unfilled outside its own data-gg-* attribute
    shown = re.sub(r'data-gg-[a-z]+="[^"]*"', "", html.split("<script")[0])
    assert "{member}" not in shown
    assert "{neighbour}" not in shown
    words = {k["layer"]: k["words"] for k in units["kinds"]}  # type: ignore[attr-defined]
    assert words["police_unit"] == {
        "member": "警务单元",
        "neighbour": "单元",
        "memberEn": "police unit",
    }
    assert words["urban_unit"]["member"] == "城管单元"
    assert words["emergency_unit"]["member"] == "应急单元"
