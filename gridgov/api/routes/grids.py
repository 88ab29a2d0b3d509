"""``/grids``: read a grid with its ETag, and edit grids safely (OGC API – Features Part 4
style: create, replace, update, delete = retire; plus split, merge and boundary moves).

Thin: the routes themselves are shared with ``/plans/{id}/grids``
(:mod:`gridgov.api.routes.grid_editing`); every rule is in :mod:`gridgov.gis.grid_edit`
and every statement in :mod:`gridgov.layers.grid_edit`. Every write needs ``If-Match``
with the ETags of the grids it names (428 without, 412 when stale) and a ``reason``; the
actor is the logged-in account, which must be allowed to edit grids in the grid's
community (403 else).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gridgov.api.auth import Principal, PrincipalDep
from gridgov.api.deps import ConnectionDep
from gridgov.api.routes.grid_editing import EditSide, GridCode, add_edit_routes, feature
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.layers import grid_edit

router = APIRouter(prefix="/grids", tags=["grids 网格编辑"], route_class=StrictJSONRoute)


def _require_grid_edit(principal: Principal) -> None:
    principal.require_edit("grid")  # the area is checked by apply_edit (scope)


LIVE = EditSide(
    base="/grids",
    target="live",
    read=grid_edit.current,
    require_edit=_require_grid_edit,
)


def live_side() -> EditSide:
    """Edits of ``/grids`` go to the grids in force."""
    return LIVE


@router.get("/edits", summary="网格调整记录 (grid edit log)")
def edits(
    conn: ConnectionDep,
    principal: PrincipalDep,
    community_code: Annotated[str | None, Query(pattern=r"^[0-9]{12}$")] = None,
    code: Annotated[str | None, Query(pattern=r"^[0-9]{15}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    principal.require_read("grid")
    rows = grid_edit.edit_log(conn, community_code, code, limit, principal.scope)
    for row in rows:
        row["at"] = row["at"].isoformat()
    return {"items": rows}


@router.get("/{code}/versions", summary="网格的全部版本 (every version of a grid code)")
def versions(code: GridCode, conn: ConnectionDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require_visible("grid", code)
    return {
        "type": "FeatureCollection",
        "features": [feature(v) for v in grid_edit.history(conn, code)],
    }


add_edit_routes(router, live_side, "现行网格")

__all__ = ["LIVE", "feature", "router"]
