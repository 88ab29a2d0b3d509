"""Benchmark: gridgov's grid proposals against PySAL spopt regionalisation and today's grids.

On the same communities and the same building blocks (Voronoi cells of the buildings and
of empty H3 cells, cut along the community policing areas; see ``gridgov.gis.optimise``)
it partitions each community with

* gridgov (``gridgov.gis.optimise.partition``), with and without ``min_change``;
* spopt ``MaxPHeuristic`` (households threshold = the target), ``RegionKMeansHeuristic``
  and ``Skater`` (both with gridgov's number of grids; attributes: block centres);

and measures every result — and today's demo grids — with the one measures engine
(``gridgov.layers.measures.measure_geometries``): CV of workload, mean Polsby-Popper
compactness, docking score with the community policing areas, contiguity, households moved
and the partitioning time (blocks are built once and shared). Prints the table and the
ratios against spopt's best. Not a test: times depend on the machine.

Run by ``make bench`` on the benchmark database (it loads the demo city if empty), or
``python scripts/bench_optimise.py --database-url …`` on any database holding the demo.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from gridgov.gis import optimise as gis
from gridgov.gis import wuxi
from gridgov.gis.demo.city import DemoInputs, DemoOptions, build_city
from gridgov.gis.measures import WorkloadWeights
from gridgov.layers import optimise
from gridgov.layers.db import make_engine
from gridgov.layers.demo import is_empty, load_city
from gridgov.layers.registry import default_registry
from gridgov.layers.tables import build_metadata
from gridgov.settings import Settings

# The first communities of these demo townships that straddle policing areas (spopt MaxP
# takes ~30 s to minutes a community of ~100 blocks; ``--communities`` widens the run).
DEFAULT_AREAS = ("320213026", "320214054", "320214052")
MAX_BLOCKS = 150
# spopt MaxP's annealing can run for many minutes on a community of 18 blocks: a method
# that takes longer than this on one community is stopped and reported as a failure there.
METHOD_LIMIT_S = 120
# spopt's defaults (99 constructions, 10 annealing runs) take minutes per community here;
# these keep MaxP within an order of magnitude of the others (see the README).
MAXP_CONSTRUCTION, MAXP_SA = 2, 1
console = Console(width=170)
Labels = np.ndarray[Any, np.dtype[np.int64]]


@dataclass
class Score:
    name: str
    seconds: float = 0.0
    grids: list[dict[str, Any]] = field(default_factory=list)
    cvs: list[float] = field(default_factory=list)
    moved: int = 0
    households: int = 0
    docked_area: float = 0.0
    area: float = 0.0
    failures: list[str] = field(default_factory=list)

    def add(self, report: dict[str, Any]) -> None:
        self.grids += report["grids_detail"]
        if report["workload_cv"] is not None:
            self.cvs.append(float(report["workload_cv"]))
        area = sum(g["area_km2"] for g in report["grids_detail"])
        self.area += area
        self.docked_area += area * float(report["docking_score"]) / 100.0

    def row(self) -> dict[str, float]:
        loads = np.array([g["workload"] for g in self.grids], dtype=float)
        return {
            "grids": float(len(self.grids)),
            "cv_mean": float(np.mean(self.cvs)) if self.cvs else float("nan"),
            "cv_pooled": float(loads.std() / loads.mean()) if len(loads) else float("nan"),
            "compactness": float(np.mean([g["compactness"] for g in self.grids])),
            "docking": 100.0 * self.docked_area / self.area if self.area else float("nan"),
            "contiguity": float(np.mean([bool(g["contiguous"]) for g in self.grids])),
            "moved": 100.0 * self.moved / max(self.households, 1),
            "seconds": self.seconds,
        }


def ensure_demo(engine: Engine, settings: Settings) -> None:
    registry = default_registry()
    metadata = build_metadata(registry)
    with engine.begin() as conn:
        if not is_empty(conn, registry, metadata):
            return
        console.print("载入演示城市 (loading the demo city)…")
        inputs = DemoInputs(wuxi.load_districts(), wuxi.load_townships(), wuxi.load_communities())
        city = build_city(inputs, DemoOptions(incidents=20_000, rentals=3_000, hazards=100))
        load_city(conn, registry, metadata, city, settings.assign_tolerance_m)


def spopt_methods(
    target: int, seed: int
) -> dict[str, Callable[[optimise.Partitioned, int], Labels]]:
    """spopt's regionalisers on gridgov's blocks and adjacency (rook, shared edges)."""
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic, RegionKMeansHeuristic, Skater

    def frame(part: optimise.Partitioned) -> tuple[gpd.GeoDataFrame, W]:
        blocks = part.blocks
        centre = (blocks.centre - blocks.centre.mean(axis=0)) / max(blocks.centre.std(), 1.0)
        gdf = gpd.GeoDataFrame(
            {"x": centre[:, 0], "y": centre[:, 1], "households": part.households},
            geometry=list(blocks.geoms),
            crs="EPSG:4490",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = W({i: list(n) for i, n in enumerate(blocks.neighbours)}, silence_warnings=True)
        return gdf, w

    def maxp(part: optimise.Partitioned, k: int) -> Labels:
        gdf, w = frame(part)
        np.random.seed(seed)  # spopt draws from numpy's global generator
        model = MaxPHeuristic(
            gdf,
            w,
            ["x", "y"],
            "households",
            target,
            top_n=2,
            max_iterations_construction=MAXP_CONSTRUCTION,
            max_iterations_sa=MAXP_SA,
        )
        model.solve()
        return np.asarray(model.labels_, dtype=np.int64)

    def kmeans(part: optimise.Partitioned, k: int) -> Labels:
        gdf, w = frame(part)
        model = RegionKMeansHeuristic(gdf[["x", "y"]].to_numpy(), k, w, seed=seed)
        model.solve()
        return np.asarray(model.labels_, dtype=np.int64)

    def skater(part: optimise.Partitioned, k: int) -> Labels:
        gdf, w = frame(part)
        model = Skater(gdf, w, ["x", "y"], n_clusters=k, islands="increase")
        model.solve()
        return np.asarray(model.labels_, dtype=np.int64)

    return {"spopt MaxP": maxp, "spopt RegionKMeans": kmeans, "spopt SKATER": skater}


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread after ``seconds``."""

    def expire(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"stopped after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _relabel(labels: Labels) -> Labels:
    order = {old: new for new, old in enumerate(sorted(set(labels.tolist())))}
    return np.array([order[x] for x in labels.tolist()], dtype=np.int64)


def run(conn: Connection, areas: list[str], target: int, seed: int, limit: int) -> dict[str, Score]:
    registry = default_registry()
    weights = WorkloadWeights.from_mapping(Settings().workload_weights)
    period = optimise.last_year()
    codes = [c for area in areas for c in optimise.community_codes(conn, area)]
    methods: dict[str, Callable[[optimise.Partitioned, int], Labels]] = {
        "gridgov": lambda p, k: gis.partition(
            p.blocks, p.workload, p.households, gis.Options(target, seed), today=p.today
        ),
        "gridgov --min-change": lambda p, k: gis.partition(
            p.blocks,
            p.workload,
            p.households,
            gis.Options(target, seed, min_change=True),
            today=p.today,
        ),
        **spopt_methods(target, seed),
    }
    scores = {name: Score(name) for name in ["today", *methods]}
    # Communities split between two or more policing areas (else docking is trivially
    # 100 for every method) and of at most MAX_BLOCKS blocks (spopt MaxP's cost grows fast).
    chosen: list[optimise.Partitioned] = []
    for code in codes:
        part = optimise.prepare(conn, code, weights, period)
        units = {u for u in part.blocks.units if u is not None}
        if len(units) >= 2 and len(part.blocks) <= MAX_BLOCKS:
            chosen.append(part)
        if len(chosen) == limit:
            break
    if not chosen:
        raise SystemExit("no community of these areas straddles two policing areas")
    for n, part in enumerate(chosen, start=1):
        code = part.inputs.code
        k = gis.region_count(float(part.households.sum()), target, len(part.blocks))
        n_units = len({u for u in part.blocks.units if u is not None})
        console.print(
            f"[{n}/{len(chosen)}] {code}: {len(part.blocks)} blocks, {n_units} policing areas, "
            f"{k} grids"
        )
        households = int(part.households.sum())
        report = optimise.measure_report(conn, registry, part.inputs.grids, period, weights)
        scores["today"].add(report)
        scores["today"].households += households
        for name, method in methods.items():
            started = time.perf_counter()
            try:
                with time_limit(METHOD_LIMIT_S):
                    labels = _relabel(method(part, k))
            except Exception as error:  # a method that fails is reported, not hidden
                scores[name].failures.append(f"{code}: {type(error).__name__}: {error}")
                continue
            scores[name].seconds += time.perf_counter() - started
            geoms = gis.region_geometries(part.blocks, labels)
            keyed = {f"{code}-{i:03d}": g for i, g in enumerate(geoms, start=1)}
            report = optimise.measure_report(conn, registry, keyed, period, weights)
            scores[name].add(report)
            scores[name].moved += gis.households_moved(labels, part.today, part.households)
            scores[name].households += households
    return scores


def print_table(scores: dict[str, Score]) -> None:
    rows = {name: s.row() for name, s in scores.items()}
    table = Table(title="网格优化基准 (grid proposal benchmark): same communities, same blocks")
    for column in (
        "方法 (method)",
        "网格数 grids",
        "工作量CV (mean per community)",
        "工作量CV (pooled)",
        "紧凑度 PP",
        "对接得分 docking",
        "连通 contiguity",
        "变动户数 moved %",
        "用时 s",
    ):
        table.add_column(column, justify="right")
    for name, r in rows.items():
        table.add_row(
            name,
            f"{r['grids']:.0f}",
            f"{r['cv_mean']:.3f}",
            f"{r['cv_pooled']:.3f}",
            f"{r['compactness']:.3f}",
            f"{r['docking']:.1f}",
            f"{r['contiguity']:.1%}",
            f"{r['moved']:.1f}",
            "—" if name == "today" else f"{r['seconds']:.2f}",
        )
    console.print(table)
    spopt = {n: r for n, r in rows.items() if n.startswith("spopt") and not scores[n].failures}
    if spopt:
        best_cv = min(spopt.items(), key=lambda kv: kv[1]["cv_mean"])
        best_dock = max(spopt.items(), key=lambda kv: kv[1]["docking"])
        fastest = min(spopt.items(), key=lambda kv: kv[1]["seconds"])
        ours = rows["gridgov"]
        console.print(
            f"gridgov vs spopt's best balance ({best_cv[0]}): CV {ours['cv_mean']:.3f} / "
            f"{best_cv[1]['cv_mean']:.3f} = {ours['cv_mean'] / best_cv[1]['cv_mean']:.2f}× "
            "(lower is better)"
        )
        console.print(
            f"gridgov vs spopt's best docking ({best_dock[0]}): {ours['docking']:.1f} / "
            f"{best_dock[1]['docking']:.1f} = {ours['docking'] / best_dock[1]['docking']:.3f}× "
            "(higher is better)"
        )
        console.print(
            f"gridgov time vs spopt's fastest ({fastest[0]}): {ours['seconds']:.2f} s / "
            f"{fastest[1]['seconds']:.2f} s = {ours['seconds'] / fastest[1]['seconds']:.2f}×; "
            f"vs spopt's best balance: {ours['seconds'] / best_cv[1]['seconds']:.2f}×"
        )
    for s in scores.values():
        for failure in s.failures:
            console.print(f"[red]{s.name} failed[/] {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: the benchmark database")
    parser.add_argument("--areas", nargs="*", default=list(DEFAULT_AREAS))
    parser.add_argument("--target-households", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--communities", type=int, default=4, help="the first N communities")
    args = parser.parse_args()
    settings = Settings()
    url = (
        make_url(args.database_url) if args.database_url else settings.require_bench_database_url()
    )
    engine = make_engine(settings, url)
    try:
        ensure_demo(engine, settings)
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            scores = run(conn, args.areas, args.target_households, args.seed, args.communities)
        print_table(scores)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
