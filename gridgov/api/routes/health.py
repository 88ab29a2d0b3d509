"""``/health``: is the service usable? (database reachable, PostGIS present)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gridgov import __version__
from gridgov.api.deps import ConnectionDep
from gridgov.layers.db import server_info

router = APIRouter(tags=["health 健康检查"])


class Health(BaseModel):
    status: str = Field(description="ok when the service and its database are usable")
    version: str = Field(description="gridgov version")
    database: str = Field(description="ok, or why not")
    postgres_version: str
    postgis_version: str


@router.get(
    "/health",
    summary="服务健康检查 (health check)",
    response_model=Health,
    responses={
        503: {
            "description": "数据库不可用 (database unreachable or PostGIS missing)",
            "content": {"application/problem+json": {}},
        }
    },
)
def health(conn: ConnectionDep) -> Health:
    info = server_info(conn)
    return Health(
        status="ok",
        version=__version__,
        database="ok",
        postgres_version=info.postgres_version,
        postgis_version=info.postgis_version,
    )
