"""Proposed grids for one community (条例第六十二条：优化网格划分), drawn from building blocks.

Pure shapely / numpy; the counts come in from :mod:`gridgov.layers.optimise`, which
gathers them with the measures engine (:mod:`gridgov.layers.measures`).

How a proposal is made:

1. **Blocks** tile the community exactly: the Voronoi cells of its buildings (plus the
   centres of the H3 cells, resolution 9, that hold no building, so that empty land is cut
   into pieces a boundary can follow), clipped to the community and cut along the police
   units' boundaries. A building lies in its own block, so no building is ever split.
2. **Region growing** from ``k`` spread-out seeds (``k`` = households / target): the
   lightest region takes its nearest free neighbouring block, preferring blocks of its own
   police unit. With ``min_change`` the start is today's grids instead.
3. **Local search** moves boundary blocks between neighbouring regions when that lowers
   the objective (CV of workload, mean non-compactness, area outside the main police unit,
   share of households moved), never taking a block whose removal would cut its region in
   two (a connectivity check on the block adjacency graph): every region stays contiguous.

Deterministic for a given seed: every random choice comes from ``numpy`` seeded with it,
and every loop runs in a sorted order.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import h3
import numpy as np
import numpy.typing as npt
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from gridgov.errors import InvalidInputError
from gridgov.gis.measures import polygon_parts, to_metric

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Progress = Callable[[float], None]

H3_RESOLUTION = 9  # cells of ~0.1 km² (edge ~174 m) cut the empty land into blocks
# A piece of a block in another police unit smaller than this share of the block is
# digitising noise along the unit boundary: it stays with the rest of the block.
UNIT_SLIVER_SHARE = 0.01
OBJECTIVE_NAMES = ("balance", "compactness", "docking", "moved")


class OptimiseError(InvalidInputError):
    """The inputs cannot be partitioned (no community geometry, nothing to split)."""


@dataclass(frozen=True)
class ObjectiveWeights:
    """Weights of the terms the local search lowers (all dimensionless, 0–1 scale)."""

    balance: float = 1.0  # coefficient of variation of the grids' workload
    compactness: float = 1.0  # mean (1 − Polsby-Popper)
    docking: float = 1.0  # share of the area lying outside its grid's main police unit
    moved: float = 1.0  # share of households in a grid other than today's (min_change only)

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> ObjectiveWeights:
        flat = {name: getattr(cls(), name) for name in OBJECTIVE_NAMES}
        for name, value in values.items():
            if name not in flat:
                raise ValueError(f"unknown objective weight {name!r}; use one of {OBJECTIVE_NAMES}")
            if not math.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"objective weight {name} must be a finite number >= 0")
            flat[name] = float(value)
        return cls(**flat)


@dataclass(frozen=True)
class Options:
    target_households: int = 400
    seed: int = 0
    min_change: bool = False
    weights: ObjectiveWeights = field(default_factory=ObjectiveWeights)
    max_passes: int = 40
    restarts: int = 4  # searches from differently seeded starts; the best objective wins


@dataclass(frozen=True)
class Blocks:
    """The building blocks of one community and their adjacency (rook: a shared edge)."""

    geoms: tuple[Polygon, ...]  # CGCS2000 lon/lat; their union is the community
    units: tuple[str | None, ...]  # the police unit holding each block (None: no unit)
    area: FloatArray  # m², EPSG:4549
    perimeter: FloatArray  # m
    centre: FloatArray  # (n, 2) metres
    neighbours: tuple[tuple[int, ...], ...]
    shared: Mapping[tuple[int, int], float]  # (i, j), i < j -> shared edge length, m

    def __len__(self) -> int:
        return len(self.geoms)

    def edge(self, i: int, j: int) -> float:
        return self.shared[(i, j) if i < j else (j, i)]


def _seeds(community: BaseGeometry, buildings: Sequence[Point], resolution: int) -> list[Point]:
    """Building points (one per location) and the centres of the H3 cells without one."""
    seen: set[tuple[float, float]] = set()
    seeds: list[Point] = []
    for point in buildings:
        key = (point.x, point.y)
        if key not in seen and community.intersects(point):
            seen.add(key)
            seeds.append(point)
    taken = {h3.latlng_to_cell(p.y, p.x, resolution) for p in seeds}
    cells = sorted(h3.geo_to_cells(community, resolution))
    for cell in cells:
        if cell not in taken:
            lat, lon = h3.cell_to_latlng(cell)
            centre = Point(lon, lat)
            if community.contains(centre):
                seeds.append(centre)
    if not seeds:
        seeds.append(community.representative_point())
    return seeds


def _voronoi(community: BaseGeometry, seeds: Sequence[Point]) -> list[BaseGeometry]:
    """Voronoi cells of the seeds (in locally isotropic coordinates) over the community."""
    if len(seeds) == 1:
        return [community]
    lat = community.centroid.y
    scale = math.cos(math.radians(lat))
    squeeze = affinity.scale
    points = shapely.MultiPoint([(p.x * scale, p.y) for p in seeds])
    envelope = squeeze(community.envelope.buffer(0.01), xfact=scale, yfact=1.0, origin=(0, 0))
    diagram = shapely.voronoi_polygons(points, extend_to=envelope, ordered=True)
    return [squeeze(cell, xfact=1.0 / scale, yfact=1.0, origin=(0, 0)) for cell in diagram.geoms]


def tessellate(
    community: BaseGeometry,
    buildings: Sequence[Point],
    units: Mapping[str, BaseGeometry],
    resolution: int = H3_RESOLUTION,
) -> tuple[list[Polygon], list[str | None]]:
    """Blocks that tile ``community`` and each lie in one police unit, with that unit."""
    if community.is_empty or community.area <= 0:
        raise OptimiseError("村社区没有面", "the community has no area")
    blocks: list[Polygon] = []
    owners: list[str | None] = []
    codes = sorted(units)
    for cell in _voronoi(community, _seeds(community, buildings, resolution)):
        piece = shapely.intersection(cell, community)
        if piece.is_empty or piece.area <= 0:
            continue
        cuts: list[tuple[str | None, BaseGeometry]] = []
        rest = piece
        for code in codes:
            unit = units[code]
            if not unit.intersects(piece):
                continue
            inside = shapely.intersection(piece, unit)
            if inside.area > UNIT_SLIVER_SHARE * piece.area:
                cuts.append((code, inside))
                rest = shapely.difference(rest, unit)
        if len(cuts) == 1 and rest.area <= UNIT_SLIVER_SHARE * piece.area:
            cuts = [(cuts[0][0], piece)]  # wholly in one unit: keep the block uncut
        elif cuts:
            # The slivers left over go to the largest cut, so that nothing is dropped.
            largest = max(range(len(cuts)), key=lambda i: cuts[i][1].area)
            if not rest.is_empty and rest.area > 0:
                if rest.area > UNIT_SLIVER_SHARE * piece.area:
                    cuts.append((None, rest))
                else:
                    owner, geom = cuts[largest]
                    cuts[largest] = (owner, shapely.union(geom, rest))
        else:
            cuts = [(None, piece)]
        for owner, geom in cuts:
            for part in polygon_parts(geom):
                if part.area > 0:
                    blocks.append(part)
                    owners.append(owner)
    return blocks, owners


def build_blocks(geoms: Sequence[Polygon], units: Sequence[str | None]) -> Blocks:
    """Areas, perimeters, centres and the rook adjacency of the blocks."""
    array = np.asarray(geoms, dtype=object)
    metric = [to_metric(g) for g in geoms]
    area = np.array([m.area for m in metric], dtype=float)
    perimeter = np.array([m.length for m in metric], dtype=float)
    centre = np.array([[m.centroid.x, m.centroid.y] for m in metric], dtype=float)
    tree = shapely.STRtree(array)
    left, right = tree.query(array, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    lines = shapely.intersection(shapely.boundary(array[left]), shapely.boundary(array[right]))
    shared: dict[tuple[int, int], float] = {}
    near: list[set[int]] = [set() for _ in geoms]
    for i, j, line in zip(left.tolist(), right.tolist(), lines, strict=True):
        if line.is_empty or shapely.get_dimensions(line) < 1 or line.length <= 0:
            continue
        length = float(to_metric(line).length)
        if length <= 0:
            continue
        shared[(i, j)] = length
        near[i].add(j)
        near[j].add(i)
    return Blocks(
        geoms=tuple(geoms),
        units=tuple(units),
        area=area,
        perimeter=perimeter,
        centre=centre,
        neighbours=tuple(tuple(sorted(s)) for s in near),
        shared=shared,
    )


def components(blocks: Blocks, members: Sequence[int] | None = None) -> list[list[int]]:
    """Connected groups of ``members`` (all blocks by default), each sorted, largest first."""
    pool = set(range(len(blocks)) if members is None else members)
    found: list[list[int]] = []
    for start in sorted(pool):
        if not any(start in group for group in found):
            group = _reach(blocks, start, pool)
            found.append(sorted(group))
    found.sort(key=lambda g: (-len(g), g[0]))
    return found


def _reach(blocks: Blocks, start: int, pool: set[int]) -> set[int]:
    seen = {start}
    queue = deque([start])
    while queue:
        i = queue.popleft()
        for j in blocks.neighbours[i]:
            if j in pool and j not in seen:
                seen.add(j)
                queue.append(j)
    return seen


class _State:
    """Regions and the running sums the objective is computed from (O(1) move deltas)."""

    def __init__(
        self,
        blocks: Blocks,
        workload: FloatArray,
        households: FloatArray,
        labels: IntArray,
        k: int,
        home: IntArray | None,
        weights: ObjectiveWeights,
    ) -> None:
        self.blocks = blocks
        self.workload = workload
        self.households = households
        self.labels = labels
        self.k = k
        self.home = home
        self.w = weights
        self.mean = float(workload.sum()) / k
        self.total_area = float(blocks.area.sum())
        self.total_households = max(float(households.sum()), 1.0)
        self.members: list[set[int]] = [set() for _ in range(k)]
        self.load = np.zeros(k)
        self.area = np.zeros(k)
        self.perim = np.zeros(k)
        self.unit_area: list[dict[str | None, float]] = [{} for _ in range(k)]
        for i, r in enumerate(labels.tolist()):
            self.members[r].add(i)
        for r in range(k):
            self._recompute(r)

    def _recompute(self, r: int) -> None:
        b = self.blocks
        members = self.members[r]
        self.load[r] = float(sum(self.workload[i] for i in members))
        self.area[r] = float(sum(b.area[i] for i in members))
        inner = sum(b.edge(i, j) for i in members for j in b.neighbours[i] if j in members)
        self.perim[r] = float(sum(b.perimeter[i] for i in members)) - inner
        units: dict[str | None, float] = {}
        for i in members:
            units[b.units[i]] = units.get(b.units[i], 0.0) + float(b.area[i])
        self.unit_area[r] = units

    # The terms per region; the objective sums them (balance through its square sum).
    def _dev(self, load: float) -> float:
        return (load - self.mean) ** 2

    @staticmethod
    def _loose(area: float, perim: float) -> float:
        return 1.0 - 4.0 * math.pi * area / perim**2 if perim > 0 else 0.0

    @staticmethod
    def _outside(units: Mapping[str | None, float], area: float) -> float:
        best = max((a for code, a in units.items() if code is not None), default=0.0)
        return area - best

    def objective(self) -> float:
        ss = float(sum(self._dev(x) for x in self.load))
        return self._combine(
            ss,
            sum(self._loose(a, p) for a, p in zip(self.area, self.perim, strict=True)),
            sum(self._outside(u, a) for u, a in zip(self.unit_area, self.area, strict=True)),
            self.moved(),
        )

    def _combine(self, ss: float, loose: float, outside: float, moved: float) -> float:
        cv = math.sqrt(max(ss, 0.0) / self.k) / self.mean if self.mean > 0 else 0.0
        return (
            self.w.balance * cv
            + self.w.compactness * loose / self.k
            + self.w.docking * outside / self.total_area
            + self.w.moved * moved / self.total_households
        )

    def moved(self) -> float:
        if self.home is None:
            return 0.0
        return float(self.households[self.labels != self.home].sum())

    def stays_connected(self, i: int) -> bool:
        """Whether region ``labels[i]`` is still in one piece without block ``i``."""
        r = int(self.labels[i])
        members = self.members[r]
        inside = [j for j in self.blocks.neighbours[i] if j in members]
        if len(inside) <= 1:
            return True
        pool = members - {i}
        return set(inside) <= _reach(self.blocks, inside[0], pool)

    def move_delta(self, i: int, s: int, totals: tuple[float, float, float, float]) -> float:
        """Objective after moving block ``i`` to region ``s`` (``totals``: the current
        square sum, looseness, outside area and moved households)."""
        b = self.blocks
        r = int(self.labels[i])
        ss, loose, outside, moved = totals
        w, a, p = float(self.workload[i]), float(b.area[i]), float(b.perimeter[i])
        to_r = sum(b.edge(i, j) for j in b.neighbours[i] if self.labels[j] == r)
        to_s = sum(b.edge(i, j) for j in b.neighbours[i] if self.labels[j] == s)
        ss += (
            self._dev(self.load[r] - w)
            + self._dev(self.load[s] + w)
            - self._dev(self.load[r])
            - self._dev(self.load[s])
        )
        loose += (
            self._loose(self.area[r] - a, self.perim[r] - p + 2 * to_r)
            + self._loose(self.area[s] + a, self.perim[s] + p - 2 * to_s)
            - self._loose(self.area[r], self.perim[r])
            - self._loose(self.area[s], self.perim[s])
        )
        unit = b.units[i]
        ur, us = dict(self.unit_area[r]), dict(self.unit_area[s])
        ur[unit] = ur.get(unit, 0.0) - a
        us[unit] = us.get(unit, 0.0) + a
        outside += (
            self._outside(ur, self.area[r] - a)
            + self._outside(us, self.area[s] + a)
            - self._outside(self.unit_area[r], self.area[r])
            - self._outside(self.unit_area[s], self.area[s])
        )
        if self.home is not None:
            hh = float(self.households[i])
            home = int(self.home[i])
            moved += hh * (int(home == r) - int(home == s))
        return self._combine(ss, loose, outside, moved)

    def totals(self) -> tuple[float, float, float, float]:
        return (
            float(sum(self._dev(x) for x in self.load)),
            float(sum(self._loose(a, p) for a, p in zip(self.area, self.perim, strict=True))),
            float(sum(self._outside(u, a) for u, a in zip(self.unit_area, self.area, strict=True))),
            self.moved(),
        )

    def apply(self, i: int, s: int) -> None:
        r = int(self.labels[i])
        self.members[r].discard(i)
        self.members[s].add(i)
        self.labels[i] = s
        self._recompute(r)
        self._recompute(s)


def _grow(
    blocks: Blocks,
    workload: FloatArray,
    seeds: Sequence[int],
    labels: IntArray,
    pool: set[int],
) -> None:
    """Grow regions (already holding their ``seeds``' blocks in ``labels``) over the free
    blocks of ``pool``: the lightest region with a free neighbour takes the nearest one,
    a block of its own police unit first."""
    region_units = {int(labels[s]): blocks.units[s] for s in seeds}
    origin = {int(labels[s]): blocks.centre[s] for s in seeds}
    load: dict[int, float] = {}
    frontier: dict[int, set[int]] = {}
    for i in sorted(pool):
        r = int(labels[i])
        if r >= 0:
            load[r] = load.get(r, 0.0) + float(workload[i])
    for r in origin:
        load.setdefault(r, 0.0)
        frontier[r] = set()
    for i in sorted(pool):
        r = int(labels[i])
        if r >= 0 and r in frontier:
            frontier[r].update(j for j in blocks.neighbours[i] if j in pool and labels[j] < 0)
    while True:
        open_regions = [r for r in sorted(frontier) if frontier[r]]
        if not open_regions:
            return
        r = min(open_regions, key=lambda q: (load[q], q))

        def cost(j: int, r: int = r) -> tuple[float, int]:
            distance = float(np.hypot(*(blocks.centre[j] - origin[r])))
            other = blocks.units[j] != region_units[r]
            return (distance * (3.0 if other else 1.0), j)

        j = min(frontier[r], key=cost)
        labels[j] = r
        load[r] += float(workload[j])
        for q in frontier:
            frontier[q].discard(j)
        frontier[r].update(x for x in blocks.neighbours[j] if x in pool and labels[x] < 0)


def _spread_seeds(
    blocks: Blocks, members: Sequence[int], k: int, rng: np.random.Generator
) -> list[int]:
    """``k`` blocks far apart (farthest-point sampling from a seeded random start)."""
    members = sorted(members)
    first = members[int(rng.integers(len(members)))]
    chosen = [first]
    xy = blocks.centre[members]
    best = np.hypot(*(xy - blocks.centre[first]).T)
    while len(chosen) < k:
        pick = members[int(np.argmax(best))]
        chosen.append(pick)
        best = np.minimum(best, np.hypot(*(xy - blocks.centre[pick]).T))
    return chosen


def region_count(households: float, target: int, blocks: int) -> int:
    return max(1, min(blocks, round(households / target)))


def _initial(
    blocks: Blocks,
    workload: FloatArray,
    households: FloatArray,
    k: int,
    rng: np.random.Generator,
) -> IntArray:
    """Seeded region growing, ``k`` regions shared out over the connected components."""
    labels = np.full(len(blocks), -1, dtype=np.int64)
    groups = components(blocks)
    total = max(float(households.sum()), 1.0)
    shares = [max(1, round(k * float(households[g].sum()) / total)) for g in groups]
    shares = [min(s, len(g)) for s, g in zip(shares, groups, strict=True)]
    next_label = 0
    for group, count in zip(groups, shares, strict=True):
        seeds = _spread_seeds(blocks, group, count, rng)
        for s in seeds:
            labels[s] = next_label
            next_label += 1
        _grow(blocks, workload, seeds, labels, set(group))
    return labels


def _from_today(
    blocks: Blocks,
    workload: FloatArray,
    households: FloatArray,
    today: IntArray,
    k: int,
    rng: np.random.Generator,
) -> IntArray:
    """Today's grids as the start: each keeps its largest connected piece of blocks, the
    rest is grown into; then the smallest regions merge into a neighbour (or the heaviest
    split in two) until there are ``k``."""
    n = len(blocks)
    labels = np.full(n, -1, dtype=np.int64)
    seeds: list[int] = []
    region = 0
    for old in sorted(set(today.tolist()) - {-1}):
        members = [i for i in range(n) if today[i] == old]
        piece = components(blocks, members)[0]
        for i in piece:
            labels[i] = region
        seeds.append(piece[0])
        region += 1
    if region == 0:
        return _initial(blocks, workload, households, k, rng)
    _grow(blocks, workload, seeds, labels, set(range(n)))
    # Blocks not reachable from any of today's grids (a separate piece): new regions.
    for group in components(blocks, [i for i in range(n) if labels[i] < 0]):
        for i in group:
            labels[i] = region
        region += 1
    labels = _relabel(labels)
    while int(labels.max()) + 1 > k:
        labels = _merge_lightest(blocks, workload, labels)
    while int(labels.max()) + 1 < k:
        split = _split_heaviest(blocks, workload, labels, rng)
        if split is None:
            break
        labels = split
    return labels


def _relabel(labels: IntArray) -> IntArray:
    order = {old: new for new, old in enumerate(sorted(set(labels.tolist())))}
    return np.array([order[x] for x in labels.tolist()], dtype=np.int64)


def _loads(workload: FloatArray, labels: IntArray) -> FloatArray:
    return np.bincount(labels, weights=workload, minlength=int(labels.max()) + 1).astype(float)


def _merge_lightest(blocks: Blocks, workload: FloatArray, labels: IntArray) -> IntArray:
    loads = _loads(workload, labels)
    for r in np.argsort(loads, kind="stable").tolist():
        near = sorted(
            {int(labels[j]) for i in np.flatnonzero(labels == r) for j in blocks.neighbours[i]}
            - {r}
        )
        if near:
            into = min(near, key=lambda q: (loads[q], q))
            merged = labels.copy()
            merged[labels == r] = into
            return _relabel(merged)
    return labels  # nothing touches anything else: cannot merge


def _split_heaviest(
    blocks: Blocks, workload: FloatArray, labels: IntArray, rng: np.random.Generator
) -> IntArray | None:
    loads = _loads(workload, labels)
    for r in np.argsort(-loads, kind="stable").tolist():
        members = np.flatnonzero(labels == r).tolist()
        if len(members) < 2:
            continue
        seeds = _spread_seeds(blocks, members, 2, rng)
        split = labels.copy()
        split[members] = -1
        new = int(labels.max()) + 1
        split[seeds[0]], split[seeds[1]] = r, new
        _grow(blocks, workload, seeds, split, set(members))
        return split
    return None


def partition(
    blocks: Blocks,
    workload: npt.ArrayLike,
    households: npt.ArrayLike,
    options: Options,
    today: npt.ArrayLike | None = None,
    progress: Progress | None = None,
) -> IntArray:
    """A region label per block: contiguous regions balancing ``workload``.

    ``today`` gives each block's grid today (an index, -1 for none); with
    ``options.min_change`` the search starts from it and counts households moved.
    """
    n = len(blocks)
    if n == 0:
        raise OptimiseError("没有可划分的地块", "no blocks to partition")
    load = np.asarray(workload, dtype=float)
    hh = np.asarray(households, dtype=float)
    k = region_count(float(hh.sum()), options.target_households, n)
    old = np.asarray(today, dtype=np.int64) if today is not None else None
    best: tuple[float, IntArray] | None = None
    runs = max(1, options.restarts)
    for attempt in range(runs):
        rng = np.random.default_rng([options.seed, attempt])
        if options.min_change and old is not None:
            labels = _from_today(blocks, load, hh, old, k, rng)
            home: IntArray | None = labels.copy()
        else:
            labels = _initial(blocks, load, hh, k, rng)
            home = None
        regions = int(labels.max()) + 1
        if regions == 1 or float(load.sum()) <= 0:
            return labels

        def step(done: float, attempt: int = attempt) -> None:
            if progress is not None:
                progress((attempt + done) / runs)

        state = _State(blocks, load, hh, labels, regions, home, options.weights)
        _search(state, rng, options.max_passes, step)
        value = state.objective()
        if best is None or value < best[0] - 1e-12:
            best = (value, state.labels.copy())
    assert best is not None
    return best[1]


def _search(
    state: _State, rng: np.random.Generator, max_passes: int, progress: Progress | None
) -> None:
    """First-improvement descent over boundary blocks, in a seeded random order."""
    n = len(state.blocks)
    current = state.objective()
    for done in range(max_passes):
        improved = False
        for i in rng.permutation(n).tolist():
            r = int(state.labels[i])
            near = sorted({int(state.labels[j]) for j in state.blocks.neighbours[i]} - {r})
            if not near or len(state.members[r]) == 1 or not state.stays_connected(i):
                continue
            totals = state.totals()
            best, target = current, -1
            for s in near:
                value = state.move_delta(i, s, totals)
                if value < best - 1e-12:
                    best, target = value, s
            if target >= 0:
                state.apply(i, target)
                current = best
                improved = True
        if progress is not None:
            progress((done + 1) / max_passes)
        if not improved:
            break
    if progress is not None:
        progress(1.0)


def region_geometries(blocks: Blocks, labels: npt.ArrayLike) -> list[BaseGeometry]:
    """The union of each region's blocks, in label order (one polygon per contiguous region)."""
    array = np.asarray(labels)
    out: list[BaseGeometry] = []
    for r in range(int(array.max()) + 1):
        parts = [blocks.geoms[i] for i in np.flatnonzero(array == r).tolist()]
        merged = shapely.union_all(parts)
        if isinstance(merged, MultiPolygon) and len(merged.geoms) == 1:
            merged = merged.geoms[0]
        out.append(merged)
    return out


def households_moved(labels: npt.ArrayLike, today: npt.ArrayLike, households: npt.ArrayLike) -> int:
    """Households whose grid changes: proposed regions are matched one-to-one to today's
    grids (greedily, largest shared household count first); a household moves when its
    region's match is not its grid today. Blocks in no grid today are not counted."""
    new = np.asarray(labels, dtype=np.int64)
    old = np.asarray(today, dtype=np.int64)
    hh = np.asarray(households, dtype=float)
    shared: dict[tuple[int, int], float] = {}
    for r, g, h in zip(new.tolist(), old.tolist(), hh.tolist(), strict=True):
        if g >= 0:
            shared[(r, g)] = shared.get((r, g), 0.0) + h
    match: dict[int, int] = {}
    used: set[int] = set()
    for (r, g), _h in sorted(shared.items(), key=lambda kv: (-kv[1], kv[0])):
        if r not in match and g not in used:
            match[r] = g
            used.add(g)
    moved = sum(
        h
        for r, g, h in zip(new.tolist(), old.tolist(), hh.tolist(), strict=True)
        if g >= 0 and match.get(r) != g
    )
    return round(float(moved))


def today_index(
    blocks: Blocks, grids: Sequence[BaseGeometry], anchors: Sequence[Point | None]
) -> IntArray:
    """Each block's grid today: the grid holding its building (``anchors[i]``), else the
    grid holding most of its area; -1 when no grid does."""
    tree = shapely.STRtree(np.asarray(grids, dtype=object))
    out = np.full(len(blocks), -1, dtype=np.int64)
    for i, geom in enumerate(blocks.geoms):
        anchor = anchors[i]
        if anchor is not None:
            hits = sorted(tree.query(anchor, predicate="intersects").tolist())
            if hits:
                out[i] = hits[0]
                continue
        best, share = -1, 0.0
        for g in sorted(tree.query(geom, predicate="intersects").tolist()):
            overlap = shapely.intersection(geom, grids[g]).area
            if overlap > share:
                best, share = g, overlap
        out[i] = best
    return out


def anchors(blocks: Blocks, buildings: Sequence[Point]) -> list[Point | None]:
    """The first building lying in each block (blocks are built around buildings)."""
    array = np.asarray(buildings, dtype=object)
    out: list[Point | None] = [None] * len(blocks)
    if len(array) == 0:
        return out
    tree = shapely.STRtree(array)
    for i, geom in enumerate(blocks.geoms):
        hits = sorted(tree.query(geom, predicate="intersects").tolist())
        if hits:
            out[i] = array[hits[0]]
    return out
