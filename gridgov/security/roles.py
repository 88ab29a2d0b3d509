"""Roles and what each may read and edit; the area scope is applied separately (``layers.scope``).

| role | reads | edits |
|---|---|---|
| admin | every layer | every layer, users |
| supervisor | every layer, heatmaps and statistics | nothing |
| planner | admin areas, grids, buildings, department units | grids |
| police | admin areas, grids, police units | police units |
| grid_worker | admin areas, grids, buildings, sites, hazards, rentals, incidents | incidents |
| viewer | admin areas, grids, key sites, shelters, hazard zones | nothing |

Personal data (个人信息) is masked for everyone, admins included, unless the account holds
the ``personal_data`` grant.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    PLANNER = "planner"
    POLICE = "police"
    GRID_WORKER = "grid_worker"
    VIEWER = "viewer"

    @property
    def title_zh(self) -> str:
        return ROLE_TITLES[self]


class Grant(StrEnum):
    PERSONAL_DATA = "personal_data"


ROLE_TITLES = {
    Role.ADMIN: "系统管理员",
    Role.SUPERVISOR: "指挥中心",
    Role.PLANNER: "网格规划",
    Role.POLICE: "公安",
    Role.GRID_WORKER: "网格员",
    Role.VIEWER: "只读用户",
}

ALL = "*"
_AREAS = frozenset({"district", "township", "community"})

READ: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset({ALL}),
    Role.SUPERVISOR: frozenset({ALL}),
    Role.PLANNER: _AREAS | {"grid", "building", "police_unit", "urban_unit", "emergency_unit"},
    Role.POLICE: _AREAS | {"grid", "police_unit"},
    Role.GRID_WORKER: _AREAS
    | {"grid", "building", "hazard_zone", "rental_housing", "key_site", "shelter", "incident"},
    Role.VIEWER: _AREAS | {"grid", "key_site", "shelter", "hazard_zone"},
}

EDIT: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset({ALL}),
    Role.SUPERVISOR: frozenset(),
    Role.PLANNER: frozenset({"grid"}),
    Role.POLICE: frozenset({"police_unit"}),
    Role.GRID_WORKER: frozenset({"incident"}),
    Role.VIEWER: frozenset(),
}


def can_read(role: Role, layer: str) -> bool:
    allowed = READ[role]
    return ALL in allowed or layer in allowed


def can_edit(role: Role, layer: str) -> bool:
    allowed = EDIT[role]
    return ALL in allowed or layer in allowed


def parse_role(value: str) -> Role:
    """A role from its id (``grid_worker``; ``grid-worker`` is accepted too)."""
    try:
        return Role(value.strip().lower().replace("-", "_"))
    except ValueError:
        raise ValueError(
            "unknown role " + repr(value) + "; use one of: " + ", ".join(r.value for r in Role)
        ) from None


__all__ = ["EDIT", "READ", "Grant", "Role", "can_edit", "can_read", "parse_role"]
