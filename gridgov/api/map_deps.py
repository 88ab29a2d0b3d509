"""Dependencies of the map APIs: generated table metadata, absolute base URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import MetaData

from gridgov.layers.registry import Registry
from gridgov.layers.tables import build_metadata


def get_metadata(request: Request) -> MetaData:
    """The tables of the app's registry, generated once per app (not per request)."""
    state = request.app.state
    metadata: MetaData | None = getattr(state, "map_metadata", None)
    if metadata is None:
        registry: Registry = state.registry
        metadata = build_metadata(registry)
        state.map_metadata = metadata
    return metadata


def get_base_url(request: Request) -> str:
    """Scheme, host and root path, without a trailing slash: the prefix of every link."""
    return str(request.base_url).rstrip("/")


MetadataDep = Annotated[MetaData, Depends(get_metadata)]
BaseUrlDep = Annotated[str, Depends(get_base_url)]
