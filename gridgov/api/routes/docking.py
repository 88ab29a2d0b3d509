"""Grid-to-unit docking (条例第六十二条): straddling grids and each township's score."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep, RegistryDep
from gridgov.api.routes.measures import FromQ, ToQ, period
from gridgov.layers import docking, docking_proposal

router = APIRouter(prefix="/docking", tags=["docking 网格对接"])

UnitLayer = Annotated[
    str,
    Query(description="责任区图层 (unit layer): police_unit / urban_unit / emergency_unit"),
]
UnitLevel = Annotated[
    str | None,
    Query(description="层级 (level), e.g. station / policing_area; default: the layer's first"),
]
District = Annotated[
    str | None, Query(description="区县代码 (district code)", pattern=r"^[0-9]{6}$")
]
Township = Annotated[
    str | None, Query(description="镇街代码 (township code)", pattern=r"^[0-9]{9}$")
]


class UnitKindOut(BaseModel):
    unit_layer: str
    unit_level: str
    title: str = Field(description="中文名称")
    title_en: str


class TownshipOut(BaseModel):
    code: str
    name: str
    grids: int = Field(description="现行网格数 (grids in force)")
    docked: int = Field(description="位于单一责任区（≥99% 面积）的网格数")
    straddling: int = Field(description="跨两个及以上责任区的网格数")
    docked_share: float = Field(description="单一责任区网格占比 (0–1)")
    score: float = Field(description="对接得分 0–100：各网格最大占比的面积加权平均")


class TownshipList(BaseModel):
    unit_layer: str
    unit_level: str
    one_unit_share: float = Field(description="threshold of 'in one unit'")
    items: list[TownshipOut]


@router.get("/units", summary="可对接的责任区类型 (unit kinds)", response_model=list[UnitKindOut])
def units(registry: RegistryDep) -> list[UnitKindOut]:
    return [
        UnitKindOut(unit_layer=k.layer, unit_level=k.level, title=k.title_zh, title_en=k.title_en)
        for k in docking.unit_kinds(registry)
    ]


def dock_kind(
    principal: PrincipalDep,
    registry: RegistryDep,
    unit_layer: UnitLayer,
    unit_level: UnitLevel = None,
) -> docking.UnitKind:
    """The unit kind a docking request names; docking shows grids against a unit layer,
    so the caller must read both."""
    kind = docking.unit_kind(registry, unit_layer, unit_level)
    principal.require_read("grid")
    principal.require_read(kind.layer)
    return kind


DockKindDep = Annotated[docking.UnitKind, Depends(dock_kind)]


@router.get(
    "/grids",
    summary="跨责任区网格及各部分面积占比 (grids straddling units, with shares)",
    responses={200: {"content": {"application/geo+json": {}}}},
)
def straddling_grids(
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    kind: DockKindDep,
    district_code: District = None,
    township_code: Township = None,
) -> JSONResponse:
    body: dict[str, Any] = docking.straddling_grids(
        conn, kind, district_code, township_code, principal.scope
    )
    return JSONResponse(body, media_type="application/geo+json")


@router.get(
    "/townships",
    summary="各镇街网格对接得分 (docking score per township)",
    response_model=TownshipList,
)
def townships(
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    kind: DockKindDep,
    district_code: District = None,
) -> TownshipList:
    rows = docking.township_docking(conn, kind, district_code, principal.scope)
    return TownshipList(
        unit_layer=kind.layer,
        unit_level=kind.level,
        one_unit_share=docking.ONE_UNIT_SHARE,
        items=[
            TownshipOut(
                code=r.code,
                name=r.name,
                grids=r.grids,
                docked=r.docked,
                straddling=r.straddling,
                docked_share=round(r.docked / r.grids, 4) if r.grids else 0.0,
                score=r.score,
            )
            for r in rows
        ],
    )


@router.get(
    "/proposals/townships/{township_code}",
    summary="对接方案：网格随责任区边界调整 (proposal: a township's grids follow the units)",
)
def grids_follow_units(
    township_code: Annotated[str, Path(pattern=r"^[0-9]{9}$", description="镇街代码")],
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    kind: DockKindDep,
    start: FromQ = None,
    end: ToQ = None,
) -> dict[str, Any]:
    """Each straddling grid hands its pieces in other units to a neighbour of that unit;
    pieces that cannot move are listed with the reason. A proposal: nothing is written."""
    principal.require_visible("township", township_code)
    return docking_proposal.grids_follow_units_proposal(
        conn, registry, township_code, kind, period(start, end)
    )


@router.get(
    "/proposals/units/{unit_code}",
    summary="对接方案：责任区边界由整网格构成 (proposal: a unit's boundary made of whole grids)",
)
def units_from_grids(
    unit_code: Annotated[str, Path(pattern=r"^[0-9A-Za-z_-]{1,32}$", description="责任区代码")],
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    kind: DockKindDep,
    start: FromQ = None,
    end: ToQ = None,
) -> dict[str, Any]:
    """The unit takes the grids whose larger part lies in it and gives away the rest."""
    return docking_proposal.units_from_grids_proposal(
        conn, registry, kind, unit_code, period(start, end), principal.scope
    )
