"""Benchmark: assigning 1,000,000 incidents, gridgov vs the GIS analyst's geopandas script.

Run by ``make bench`` on the benchmark database (``gridgov_bench``), which it fills with
the demo city once. Prints, from one run: end-to-end wall time, rows per second and peak
memory of each path and their ratio; gridgov's assignment step alone in points per
second; whether both paths gave the same grid and units to every row; and the latency of
``POST /incidents`` against ``GET /health`` on the same server. Not a test: the numbers
depend on the machine; the ratios are what matter.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from gridgov.gis import wuxi
from gridgov.gis.demo.city import DemoInputs, DemoOptions, build_city
from gridgov.layers import accounts, assignment, incidents
from gridgov.layers.db import make_engine
from gridgov.layers.demo import is_empty, load_city
from gridgov.layers.registry import default_registry
from gridgov.layers.tables import build_metadata
from gridgov.settings import Settings

# The gridgov command of the Python running this script (the checkout's .venv under make).
GRIDGOV = Path(sys.executable).parent / "gridgov"
UNIT_QUERIES = {
    "police_station_code": "SELECT code, geom FROM police_unit WHERE level = 'station'",
    "policing_area_code": "SELECT code, geom FROM police_unit WHERE level = 'policing_area'",
    "urban_unit_code": "SELECT code, geom FROM urban_unit",
    "emergency_unit_code": "SELECT code, geom FROM emergency_unit",
}
console = Console()


def ensure_demo(engine: Engine, settings: Settings) -> None:
    registry = default_registry()
    metadata = build_metadata(registry)
    with engine.begin() as conn:
        if not is_empty(conn, registry, metadata):
            return
        console.print("载入演示城市 (loading the demo city into the benchmark database)…")
        inputs = DemoInputs(wuxi.load_districts(), wuxi.load_townships(), wuxi.load_communities())
        city = build_city(inputs, DemoOptions(incidents=0, rentals=100, hazards=10))
        load_city(conn, registry, metadata, city, settings.assign_tolerance_m)


def make_csv(engine: Engine, rows: int, path: Path) -> None:
    """``rows`` incidents near the demo's buildings (WGS84), deterministic."""
    rng = np.random.default_rng(1)
    with engine.connect() as conn:
        points = conn.execute(text("SELECT ST_X(geom), ST_Y(geom), households FROM building")).all()
    xy = np.array([(x, y) for x, y, _ in points])
    weight = np.array([h for _, _, h in points], dtype=float)
    pick = rng.choice(len(xy), size=rows, p=weight / weight.sum())
    jitter = rng.normal(0, 0.0003, (rows, 2))
    # Keep every point inside the city, so that both paths can store every row.
    city = shapely.union_all(wuxi.load_districts().geometry.to_numpy())
    inside = shapely.contains_xy(city, xy[pick, 0] + jitter[:, 0], xy[pick, 1] + jitter[:, 1])
    jitter[~inside] = 0.0
    start = pd.Timestamp("2025-01-01T00:00:00+08:00")
    frame = pd.DataFrame(
        {
            "external_id": [f"BENCH-{i:07d}" for i in range(rows)],
            "lon": np.round(xy[pick, 0] + jitter[:, 0], 7),
            "lat": np.round(xy[pick, 1] + jitter[:, 1], 7),
            "category": rng.choice(
                ["dispute", "safety_hazard", "public_order", "city_management"], rows
            ),
            "source": rng.choice(["grid_worker", "hotline", "police"], rows),
            "reported_at": (
                start + pd.to_timedelta(rng.integers(0, 300 * 86400, rows), unit="s")
            ).strftime("%Y-%m-%dT%H:%M:%S+08:00"),
        }
    )
    frame.to_csv(path, index=False)


def baseline(database_url: str, csv_path: str) -> None:
    """What a GIS analyst would write: read, spatial-join each layer, to_postgis."""
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    started = time.perf_counter()
    frame = pd.read_csv(csv_path, dtype={"external_id": str})
    points = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(frame.lon, frame.lat), crs="EPSG:4490"
    )
    read = time.perf_counter()
    grids = gpd.read_postgis(
        "SELECT code AS grid_code, community_code, township_code, district_code, geom FROM grid",
        engine,
        geom_col="geom",
    )
    joined = gpd.sjoin(points, grids, how="left", predicate="intersects")
    # A point on a shared edge matches two grids: keep the lowest code (the documented
    # rule), so that both paths are compared under the same rule.
    joined = joined.sort_values("grid_code", kind="stable")
    joined = joined[~joined.index.duplicated(keep="first")].sort_index()
    joined = joined.drop(columns="index_right")
    for column, query in UNIT_QUERIES.items():
        units = gpd.read_postgis(query, engine, geom_col="geom").rename(columns={"code": column})
        hit = gpd.sjoin(points[["geometry"]], units, how="left", predicate="intersects")
        hit = hit.sort_values(column, kind="stable")
        hit = hit[~hit.index.duplicated(keep="first")].sort_index()
        joined[column] = hit[column]
    assigned = time.perf_counter()
    joined.to_postgis("bench_baseline", engine, if_exists="replace", index=False)
    engine.dispose()
    # The last line: the parent reads the time of each step from it.
    print(
        json.dumps(
            {
                "read": read - started,
                "join": assigned - read,
                "write": time.perf_counter() - assigned,
            }
        )
    )


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of that child alone, and its last output line (the
    import's time per phase)."""
    started = time.perf_counter()
    # Wide enough that rich prints the import's line of phase timings unwrapped.
    wide = {**env, "COLUMNS": "1000"}
    child = subprocess.Popen(command, env=wide, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    output = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{command} failed with {child.returncode}")
    lines = [line for line in output.splitlines() if line.strip()]
    return wall, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def assignment_rate(engine: Engine, settings: Settings) -> tuple[int, float, float]:
    """The assignment step alone on the imported incidents' points: points, seconds to
    index them (GiST), seconds to assign them (grid, codes, method and all four units).

    The points are copied, spatially ordered as the import orders each chunk, into an
    UNLOGGED table like the import's stage; everything is rolled back.
    """
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        source = assignment.scratch_name("bench_points")
        n = conn.execute(
            text(
                f"CREATE UNLOGGED TABLE {source} AS "
                "SELECT id, geom, reported_at AS at FROM incident ORDER BY geom"
            )
        ).rowcount
        started = time.perf_counter()
        conn.execute(text(f"CREATE INDEX ON {source} USING gist (geom)"))
        indexed = time.perf_counter()
        result = assignment.assign_table(conn, source, settings.assign_tolerance_m)
        assigned = time.perf_counter()
        console.print(
            f"  (fast path {result.fast:,} points, exact engine {result.exact:,}, "
            f"outside {len(result.outside):,})"
        )
        transaction.rollback()
    return n, indexed - started, assigned - indexed


def reassign_rate(engine: Engine, settings: Settings) -> list[tuple[float, object]]:
    """``incidents.reassign`` of every imported incident, both ways, each rolled back:
    the exact engine alone (how every reassignment ran before the bulk way), then the
    bulk way (scratch table, fast path). Seconds and report of each."""
    runs: list[tuple[float, object]] = []
    for bulk_from in (sys.maxsize, assignment.PARALLEL_MIN_ROWS):
        with engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            started = time.perf_counter()
            report = incidents.reassign(conn, settings.assign_tolerance_m, bulk_from=bulk_from)
            runs.append((time.perf_counter() - started, report))
            transaction.rollback()
    return runs


COMPARED = ["grid_code", *UNIT_QUERIES]


def _reasons(column: str) -> str:
    """Why gridgov and the baseline may differ on ``column``, in the order they apply."""
    if column == "grid_code":
        return """CASE
            WHEN i.assign_method IN ('nearest', 'fallback')
                THEN 'in no grid: gridgov ' || i.assign_method || ' rule, sjoin finds none'
            ELSE 'unexplained' END"""
    target = next(t for t in assignment.UNIT_TARGETS if t.column == column)
    return f"""CASE
        WHEN b.{column} IS NULL AND i.{column} IS NOT NULL
            THEN 'in no unit: gridgov nearest unit within tolerance, sjoin finds none'
        WHEN EXISTS (SELECT 1 FROM grid_unit w WHERE w.grid_id = i.grid_id
                     AND w.unit_layer = '{target.layer}' AND w.unit_level = '{target.level}'
                     AND w.share >= {assignment.WHOLE_SHARE})
            THEN 'grid lies wholly (≥ 99.9999 %) in one unit, which it gives for free; '
                 || 'the point sits in the remaining sliver'
        ELSE 'unexplained' END"""


def compare(engine: Engine) -> tuple[int, dict[str, dict[str, int]]]:
    """Rows compared, and per column the number of differences by reason."""
    with engine.connect() as conn:
        total = int(conn.execute(text("SELECT count(*) FROM bench_baseline")).scalar_one())
        differences: dict[str, dict[str, int]] = {}
        for column in COMPARED:
            rows = conn.execute(
                text(
                    f"SELECT {_reasons(column)} AS reason, count(*) FROM incident i "
                    "JOIN bench_baseline b ON b.external_id = i.external_id "
                    f"WHERE i.{column} IS DISTINCT FROM b.{column} GROUP BY 1 ORDER BY 2 DESC"
                )
            ).all()
            differences[column] = {str(r[0]): int(r[1]) for r in rows}
    return total, differences


def latency(env: dict[str, str], requests: int, token: str) -> tuple[list[float], list[float]]:
    """Sequential calls on one kept-alive connection to a real server process (writes
    need a signed-in user: the benchmark's own account, as ``bench_load.py`` does)."""
    port = 8799
    server = subprocess.Popen(
        [str(GRIDGOV), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):  # a loaded machine may take a minute to start it
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/health")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"the server exited with {server.returncode}") from None
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the server on port {port} did not start")
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def call(method: str, path: str, body: dict[str, object] | None = None) -> float:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"content-type": "application/json"} if body is not None else {}
            headers["Authorization"] = f"Bearer {token}"
            started = time.perf_counter()
            client.request(method, path, body=payload, headers=headers)
            response = client.getresponse()
            response.read()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status}")
            return time.perf_counter() - started

        posts, healths = [], []
        rng = np.random.default_rng(2)
        for i in range(requests):
            body: dict[str, object] = {
                "lon": 120.30 + rng.uniform(-0.01, 0.01),
                "lat": 31.57 + rng.uniform(-0.01, 0.01),
                "crs": "wgs84",
                "category": "dispute",
                "source": "hotline",
                "reported_at": "2025-06-01T10:00:00+08:00",
                "external_id": f"LAT-{i:05d}",
            }
            posts.append(call("POST", "/incidents", body))
            healths.append(call("GET", "/health"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return posts, healths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="incidents in the CSV (fewer: a quick run)"
    )
    parser.add_argument(
        "--requests", type=int, default=2_000, help="POST /incidents calls (0: skip latency)"
    )
    parser.add_argument("--baseline", nargs=2, metavar=("URL", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        baseline(*args.baseline)
        return
    settings = Settings()
    url = settings.require_bench_database_url()
    engine = make_engine(settings, url)
    ensure_demo(engine, settings)
    url_text = url.render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": url_text}
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "incidents.csv"
        console.print(f"生成 {args.rows:,} 条事件 (writing {args.rows:,} incidents to a CSV)…")
        make_csv(engine, args.rows, csv_path)
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE incident CASCADE"))
            conn.execute(text("DROP TABLE IF EXISTS bench_baseline"))
        # The TRUNCATE's trigger deleted the previous run's cluster cells row by row: clear
        # them away, as a first load into a new city finds no dead cells to step over.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) tile_cluster"))
        console.print("gridgov incidents import …")
        ours, ours_mem, said = timed(
            [str(GRIDGOV), "incidents", "import", str(csv_path), "--crs", "wgs84"], env
        )
        console.print(f"  {said}")
        console.print("baseline: geopandas read_csv → sjoin × 5 → to_postgis …")
        theirs, theirs_mem, their_steps = timed(
            [sys.executable, __file__, "--baseline", url_text, str(csv_path)], env
        )
        steps = json.loads(their_steps)
        console.print(
            f"  read {steps['read']:.1f} s; read polygons, sjoin × 5, lowest code "
            f"{steps['join']:.1f} s; to_postgis {steps['write']:.1f} s"
        )
    console.print("assignment step alone …")
    points, index_seconds, assign_seconds = assignment_rate(engine, settings)
    console.print("gridgov incidents reassign --all, the exact engine alone, then the bulk way …")
    (exact_seconds, exact_report), (bulk_seconds, bulk_report) = reassign_rate(engine, settings)
    total, differences = compare(engine)
    token = ""
    if args.requests:
        with engine.begin() as conn:
            token = accounts.service_token(conn, settings.require_secret_key())
    engine.dispose()

    table = Table(title=f"事件分派基准 (assignment benchmark), {args.rows:,} incidents")
    for column in ("", "gridgov", "geopandas baseline", "ratio"):
        table.add_column(column)
    table.add_row("wall time (s)", f"{ours:.1f}", f"{theirs:.1f}", f"{theirs / ours:.2f}× faster")
    table.add_row("rows / s", f"{args.rows / ours:,.0f}", f"{args.rows / theirs:,.0f}", "")
    table.add_row("peak memory (MiB, client)", f"{ours_mem:,.0f}", f"{theirs_mem:,.0f}", "")
    console.print(table)
    console.print(
        f"assignment step alone: {points:,} points in {assign_seconds:.2f} s = "
        f"{points / assign_seconds:,.0f} points/s (target 1,500,000); with the GiST "
        f"index on the staged points ({index_seconds:.2f} s): "
        f"{points / (index_seconds + assign_seconds):,.0f} points/s"
    )
    # Like for like (not the end-to-end target): the baseline's spatial joins
    # against gridgov's index and assignment of the same points.
    console.print(
        f"assignment against the baseline's joins: {steps['join']:.2f} s / "
        f"{index_seconds + assign_seconds:.2f} s = "
        f"{steps['join'] / (index_seconds + assign_seconds):.1f}× faster"
    )
    console.print(
        f"reassign every incident: {bulk_seconds:.1f} s in bulk against {exact_seconds:.1f} s "
        f"through the exact engine alone = {exact_seconds / bulk_seconds:.1f}× faster; "
        f"same reports: {bulk_report == exact_report}"
    )
    console.print(
        f"same assignment as the baseline (both with the lowest code on shared edges): "
        f"{total:,} rows compared"
    )
    for column, reasons in differences.items():
        if not reasons:
            console.print(f"  {column}: identical for every row")
        for reason, n in reasons.items():
            console.print(f"  {column}: {n:,} differ — {reason}")
    if not args.requests:
        return
    posts, healths = latency(env, args.requests, token)
    p50, p99 = statistics.median(posts), float(np.percentile(posts, 99))
    h50 = statistics.median(healths)
    console.print(
        f"POST /incidents over {args.requests:,} sequential calls: median "
        f"{p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; GET /health median "
        f"{h50 * 1000:.1f} ms; ratio {p50 / h50:.1f}×"
    )


if __name__ == "__main__":
    main()
