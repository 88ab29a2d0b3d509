"""The web map pages, the grid editor and the small JSON the area selector needs.

Pages are built per request (cheap: no data is embedded, only the registry's styles and
which layers hold synthetic rows); their scripts then call the standard APIs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from gridgov.api.auth import PagePrincipalDep, Principal, PrincipalDep, request_token
from gridgov.api.deps import ConnectionDep, RegistryDep, SettingsDep
from gridgov.api.maps import docking, editor, editor_units, heatmap, overview
from gridgov.api.routes.optimise import ALLOWED_ROLES as PROPOSAL_ROLES
from gridgov.layers.areas import areas, synthetic_layers
from gridgov.layers.docking import unit_kinds
from gridgov.layers.registry import Registry
from gridgov.layers.spec import AdminLevel
from gridgov.security.roles import can_edit

router = APIRouter(tags=["maps 地图页面"])


def visible(registry: Registry, principal: Principal) -> Registry:
    """Only the layers the account may read appear on its pages (switcher, legends)."""
    return registry.only(lambda spec: principal.can_read(spec.id))


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
def overview_page(
    request: Request,
    principal: PagePrincipalDep,
    settings: SettingsDep,
    registry: RegistryDep,
    conn: ConnectionDep,
) -> HTMLResponse:
    """Accounts that may change a layer also get its import form (数据导入), and with it
    the session's token: an upload is a POST, which the cookie alone may not make."""
    shown = visible(registry, principal)
    importable = [spec.id for spec in shown if can_edit(principal.role, spec.id)]
    html = overview.page(
        settings,
        shown,
        synthetic_layers(conn, shown),
        importable=importable,
        api_token=request_token(request) if importable else None,
    )
    # The page holds the session's token: never kept by a browser or proxy cache.
    return HTMLResponse(html, headers={"Cache-Control": "no-store"} if importable else None)


@router.get("/map/heatmap", response_class=HTMLResponse, include_in_schema=False)
def heatmap_page(
    principal: PagePrincipalDep, settings: SettingsDep, registry: RegistryDep, conn: ConnectionDep
) -> HTMLResponse:
    principal.require_read("incident")
    shown = visible(registry, principal)
    return HTMLResponse(heatmap.page(settings, shown, synthetic_layers(conn, shown)))


@router.get("/map/docking", response_class=HTMLResponse, include_in_schema=False)
def docking_page(
    principal: PagePrincipalDep, settings: SettingsDep, registry: RegistryDep, conn: ConnectionDep
) -> HTMLResponse:
    principal.require_read("grid")
    shown = visible(registry, principal)
    return HTMLResponse(docking.page(settings, shown, synthetic_layers(conn, shown)))


PLANS = "/plans"  # the editor saves into a draft plan through its /plans/{id}/grids routes


@router.get("/editor", response_class=HTMLResponse, include_in_schema=False)
def editor_page(
    request: Request,
    principal: PagePrincipalDep,
    settings: SettingsDep,
    registry: RegistryDep,
    conn: ConnectionDep,
) -> HTMLResponse:
    """Editors get the tools, other roles that read grids the same map read-only. The
    page's script gets the session's token: POSTs (measures, edits) need it as a Bearer
    header, the cookie being accepted for GETs only."""
    principal.require_read("grid")
    shown = visible(registry, principal)
    editable = can_edit(principal.role, "grid")
    kinds = [k for k in unit_kinds(registry) if can_edit(principal.role, k.layer)]
    html = editor.page(
        settings,
        shown,
        synthetic_layers(conn, shown),
        can_edit=editable,
        role_title=principal.role.title_zh,
        api_token=request_token(request),
        plans_url=PLANS,
        can_propose=principal.role in PROPOSAL_ROLES,
        unit_kinds=kinds,
        home_area=editor_units.home_area(principal.scope.codes),
    )
    # The page carries the session's token: never kept by a cache.
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


class AreaOut(BaseModel):
    code: str
    name: str
    bbox: tuple[float, float, float, float] = Field(
        description="范围 (extent): min lon, min lat, max lon, max lat, CGCS2000"
    )


class AreaList(BaseModel):
    items: list[AreaOut]


@router.get(
    "/map/areas",
    summary="区划选择器的区县、镇街、村社区 (areas for the map's selector)",
    response_model=AreaList,
)
def list_areas(
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    level: Annotated[
        Literal["district", "township", "community"],
        Query(description="层级 (level): district / township / community"),
    ],
    parent: Annotated[
        str | None,
        Query(
            description="上级区划代码 (code of the parent area)", pattern=r"^[0-9]{6}([0-9]{3})?$"
        ),
    ] = None,
) -> AreaList:
    found = areas(conn, registry, AdminLevel(level), parent, principal.scope)
    return AreaList(items=[AreaOut(code=a.code, name=a.name, bbox=a.bbox) for a in found])
