"""Make nested partitions share their vertices before they leave the metric plane.

The demo cuts districts into townships, townships into communities and communities into
grids with straight lines in metres. A later cut puts a vertex on the middle of an edge
that the neighbour on the other side does not have (a T-junction). In metres that is
harmless, but the datum change to lon/lat bends the edge between its ends and not the
vertex, so each T-junction opens a centimetre-wide gap or overlap in the stored polygons:
up to 100 m² per community, which planners would see as coverage faults on every grid and
which would put points on the "wrong" side of an edge. Inserting every nearby vertex into
every edge first makes the shared edges identical vertex by vertex, and a vertex-by-vertex
transform keeps them identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import NDArray

GeometryArray = NDArray[np.object_]


def _segments(geoms: GeometryArray) -> tuple[GeometryArray, NDArray[np.int64]]:
    """Every edge of every ring as a two-point line, with the index of its polygon."""
    rings = shapely.get_rings(geoms, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings[0], return_index=True)
    same_ring = ring_of[1:] == ring_of[:-1]
    starts = np.flatnonzero(same_ring)
    lines = np.asarray(shapely.linestrings(np.stack([coords[starts], coords[starts + 1]], axis=1)))
    return lines, rings[1][ring_of[starts]]


def share_vertices(layers: Sequence[GeometryArray], tolerance: float) -> list[GeometryArray]:
    """Each polygon of each layer with every vertex of any layer that lies on its boundary
    (within ``tolerance``, in the layers' units) inserted into its edges."""
    vertices = np.unique(np.concatenate([shapely.get_coordinates(g) for g in layers]), axis=0)
    points = shapely.points(vertices)
    out = []
    for geoms in layers:
        lines, owner = _segments(geoms)
        tree = shapely.STRtree(lines)
        point_index, line_index = tree.query(points, predicate="dwithin", distance=tolerance)
        polygon_index = owner[line_index]
        pairs = np.unique(np.stack([polygon_index, point_index], axis=1), axis=0)
        result = geoms.copy()
        if len(pairs):
            cuts = np.flatnonzero(np.diff(pairs[:, 0])) + 1
            for group in np.split(pairs, cuts):
                polygon = int(group[0, 0])
                anchors = shapely.multipoints(vertices[group[:, 1]])
                result[polygon] = shapely.snap(geoms[polygon], anchors, tolerance)
        out.append(result)
    return out
