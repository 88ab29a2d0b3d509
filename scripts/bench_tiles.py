"""Benchmark: vector tiles of gridgov vs tipg, and heatmap aggregates vs a plain GROUP BY.

Needs the demo city loaded (``gridgov demo load``; ``--test`` for the test database) and
tipg installed (``pip install tipg==1.6.1``: a benchmark-only tool). Both tile servers run
as one-worker uvicorn processes on loopback (tipg's best setting here), against the same
database and tables, serving the same properties with the same tile buffer; the same tile
list (zooms 10–16 under a fixed sample of incidents across Wuxi) is fetched by the same
client threads. Not a test: the numbers depend on the machine; the ratios are what matter.

What is compared, labelled in the output:

- **A. identical content**: grid tiles z12–16 and incident tiles above the incident
  layer's ``cluster_max_zoom``: both servers send every feature with the same properties.
- **B. zooms 12–16 as served**: A plus the low-zoom incident tiles, where gridgov sends
  clusters and tipg every point (different content, by design).
- **C. zooms 10–11** (``--low-zooms``): outside both layers' zoom range; gridgov answers
  204, tipg renders everything (not a speed comparison; tipg's tiles are tens of MB).

Each set is fetched once unmeasured first by each server (PostgreSQL buffers and connections
warm). Three servers run side by side (tipg; gridgov; gridgov with its tile cache off) and
are measured in turn over ``--rounds`` rounds, so that load from other users of the machine
falls on all of them: gridgov is measured cold with its cache off (every tile rendered),
cold with its cache just emptied (every tile rendered and stored) and warm (the same tiles
again, from its cache). Start-to-ready and the first tile of each server are printed too.
Aggregates: whole city, two years, gridgov's HTTP endpoints against the same GROUP BY over
the raw incidents, plus the start-up time (with the warm-up) and the first request with and
without the warm-up.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
from sqlalchemy import Engine, text

from gridgov.gis.webmercator import tile_for
from gridgov.layers import accounts
from gridgov.layers import tiles as tile_sql
from gridgov.layers.db import make_engine
from gridgov.layers.registry import default_registry
from gridgov.settings import Settings, libpq_url

LAYERS = ("grid", "incident")
ZOOMS = range(10, 17)
OVERDUE = "deadline_at < now() AND status NOT IN ('closed', 'evaluated')"
# With --gridgov-workers N > 1: uvicorn's worker processes over the app factory.
GRIDGOV_WORKERS = (
    "import sys, uvicorn; uvicorn.run('gridgov.api.app:app_from_environment', factory=True, "
    "host='127.0.0.1', workers=int(sys.argv[1]), port=int(sys.argv[2]), log_level='warning')"
)
GRIDGOV = (
    "import sys, uvicorn; from gridgov.api.app import create_app; "
    "from gridgov.settings import Settings; "
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port=int(sys.argv[1]), "
    "log_level='warning')"
)


@dataclass
class Run:
    latencies: list[float]
    seconds: float
    by_zoom: dict[int, list[float]]
    statuses: dict[int, int]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def p(self, q: float, values: list[float] | None = None) -> float:
        data = sorted(values if values is not None else self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def server(args: list[str], env: dict[str, str], probe: str) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [*args, str(port)] if "-c" in args else [*args, "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"server {args[:3]} did not start: {err[-2000:]}") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def auth_headers(engine: Engine) -> dict[str, str]:
    """gridgov needs a session: a token of the benchmark's own admin account."""
    with engine.begin() as conn:
        token = accounts.service_token(conn, Settings().require_secret_key())
    return {"Authorization": f"Bearer {token}"}


def fetch_all(
    port: int, paths: list[tuple[int, str]], threads: int, headers: dict[str, str] | None = None
) -> Run:
    """GET every path once, from ``threads`` kept-alive connections; returns timings."""
    latencies: list[float] = []
    by_zoom: dict[int, list[float]] = {}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(paths)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                break
            zoom, path = item
            started = time.perf_counter()
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                by_zoom.setdefault(zoom, []).append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return Run(latencies, time.perf_counter() - started, by_zoom, statuses)


def tile_list(engine: Engine, samples: int) -> list[tuple[int, int, int]]:
    """Tiles at zooms 10–16 under a fixed, evenly spread sample of incidents (no repeats)."""
    with engine.connect() as conn:
        points = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incident ORDER BY id")).all()
    step = max(1, len(points) // samples)
    chosen = points[::step][:samples]
    seen: dict[tuple[int, int, int], None] = {}
    for zoom in ZOOMS:
        for lon, lat in chosen:
            seen.setdefault((zoom, *tile_for(lon, lat, zoom)), None)
    return list(seen)


def timed(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def print_tiles(name: str, run: Run) -> None:
    print(
        f"  {name:<34} {len(run.latencies):>5} req {run.throughput:>8.1f} tiles/s  "
        f"p50 {run.p(0.5):>7.1f} ms  p95 {run.p(0.95):>7.1f} ms  {run.statuses}"
    )
    print(
        "      per zoom p50/p95 ms: "
        + "  ".join(
            f"z{z} {run.p(0.5, ts):.1f}/{run.p(0.95, ts):.1f}"
            for z, ts in sorted(run.by_zoom.items())
        )
    )


@dataclass(frozen=True)
class TileSet:
    """A named list of (layer, z, x, y) requests that both servers are asked for."""

    name: str
    note: str
    requests: list[tuple[str, int, int, int]]


def tile_sets(
    tiles: list[tuple[int, int, int]], cluster_max: int, low_zooms: bool
) -> list[TileSet]:
    """What is compared: identical content first, then everything as each server serves it."""
    in_range = [t for t in tiles if t[0] >= 12]
    same = [("grid", *t) for t in in_range] + [
        ("incident", *t) for t in in_range if t[0] > cluster_max
    ]
    sets = [
        TileSet(
            "A. identical content",
            f"grid z12–16 and incident z{cluster_max + 1}–16: both servers send every "
            "feature with the same properties",
            same,
        ),
        TileSet(
            "B. zooms 12–16 as served",
            f"as A plus incident z12–{cluster_max}, where gridgov sends clusters (count per "
            "1/64-tile cell) and tipg every point: DIFFERENT content",
            [(layer, *t) for layer in LAYERS for t in in_range],
        ),
    ]
    if low_zooms:
        sets.append(
            TileSet(
                "C. zooms 10–11",
                "outside both layers' zoom range: gridgov answers 204 by design, tipg renders "
                "every feature: DIFFERENT content, not a speed comparison",
                [(layer, *t) for layer in LAYERS for t in tiles if t[0] < 12],
            )
        )
    return sets


def requests_for(
    tile_set: TileSet, template: Callable[[str, int, int, int], str]
) -> list[tuple[int, str]]:
    return [(z, template(layer, z, x, y)) for layer, z, x, y in tile_set.requests]


def bench_tiles(
    engine: Engine,
    database_url: str,
    samples: int,
    threads: int,
    low_zooms: bool,
    rounds: int,
    workers: int = 1,
) -> None:
    registry = default_registry()
    tiles = tile_list(engine, samples)
    cluster_max = registry.get("incident").cluster_max_zoom or 11
    sets = tile_sets(tiles, cluster_max, low_zooms)
    print(
        f"\nTiles: {len(tiles)} distinct tiles (zooms 10–16 under {samples} incidents spread "
        f"over Wuxi) × layers {', '.join(LAYERS)}; {threads} client threads on kept-alive "
        f"connections; tipg one uvicorn worker (its best setting here), gridgov {workers}; same "
        "database, same properties, same tile buffer. Every set is fetched once unmeasured "
        "first by each server (PostgreSQL buffers and connections warm for all); then "
        f"{rounds} rounds, each measuring tipg, gridgov with its cache off, gridgov with its "
        "cache just emptied (cold: every tile rendered and stored) and the same tiles again "
        "(warm: from the cache). Figures pool the rounds; the per-round ratios show the "
        "spread a shared machine adds.\n"
    )
    fields = {
        layer: ",".join(f.name for f in tile_sql.tile_fields(registry.get(layer)) if f.name != "id")
        for layer in LAYERS
    }
    tipg_env = {
        "DATABASE_URL": libpq_url_str(database_url),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": '["public.grid", "public.incident"]',
        "TIPG_MAX_FEATURES_PER_TILE": "1000000",
        "TIPG_TILE_BUFFER": str(tile_sql.BUFFER),
        "TIPG_DEBUG": "FALSE",
    }
    tipg_args = [
        sys.executable,
        "-m",
        "uvicorn",
        "tipg.main:app",
        "--host",
        "127.0.0.1",
        "--workers",
        "1",
        "--log-level",
        "warning",
    ]

    def tipg_path(layer: str, z: int, x: int, y: int) -> str:
        return (
            f"/collections/public.{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"
            f"?properties={fields[layer]}"
        )

    def gridgov_path(layer: str, z: int, x: int, y: int) -> str:
        return f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"

    gridgov_env = {
        "DATABASE_URL": database_url,
        "GRIDGOV_DATABASE_URL": database_url,
        "GRIDGOV_WARM_UP": "false",  # the aggregate cube: not used by tiles (see below)
    }
    headers = auth_headers(engine)  # gridgov needs a session; tipg has no accounts
    # All three servers run for the whole benchmark and are measured in turn, round after
    # round: a load spike from the other users of this machine hits all of them alike.
    # "cold" is the cache-enabled server with its cache just emptied (every tile rendered
    # and stored); "off" has the cache turned off (every tile rendered, nothing stored).
    command = (
        [sys.executable, "-c", GRIDGOV]
        if workers == 1
        else [sys.executable, "-c", GRIDGOV_WORKERS, str(workers)]
    )
    kinds = {
        "tipg": ([*tipg_args], tipg_env, "/collections", None, tipg_path),
        "gridgov": (
            command,
            gridgov_env,
            "/conformance",
            headers,
            gridgov_path,
        ),
        "gridgov-off": (
            command,
            {**gridgov_env, "GRIDGOV_TILE_CACHE_MAX_TILES": "0"},
            "/conformance",
            headers,
            gridgov_path,
        ),
    }
    first = sets[0].requests[0]
    ports: dict[str, int] = {}
    started_lines = []
    rounds_done: dict[str, dict[str, list[Run]]] = {
        t.name: {k: [] for k in ("tipg", "off", "cold", "warm")} for t in sets
    }
    with ExitStack() as stack:
        for name, (args, env, probe, hdrs, path) in kinds.items():
            began = time.perf_counter()
            ports[name] = stack.enter_context(server(args, env, probe))
            ready = time.perf_counter() - began
            once = fetch_all(ports[name], [(first[1], path(*first))], 1, hdrs)
            started_lines.append(
                f"  {name:<12} start → ready {ready:5.1f} s; first tile "
                f"({first[0]} z{first[1]}) {once.latencies[0] * 1000:6.1f} ms"
            )
        for tile_set in sets:  # PostgreSQL buffers and every server's connections warm
            for name, (_, _, _, hdrs, path) in kinds.items():
                fetch_all(ports[name], requests_for(tile_set, path), threads, hdrs)
        for _ in range(rounds):
            for tile_set in sets:
                done = rounds_done[tile_set.name]
                tipg_paths = requests_for(tile_set, tipg_path)
                ours = requests_for(tile_set, gridgov_path)
                done["tipg"].append(fetch_all(ports["tipg"], tipg_paths, threads))
                done["off"].append(fetch_all(ports["gridgov-off"], ours, threads, headers))
                with engine.begin() as conn:
                    tile_sql.clear(conn)
                done["cold"].append(fetch_all(ports["gridgov"], ours, threads, headers))
                done["warm"].append(fetch_all(ports["gridgov"], ours, threads, headers))
    print("Start-up (tile servers; gridgov without the aggregate warm-up, see below):")
    print("\n".join(started_lines))
    print()
    labels = {
        "off": "gridgov cold, cache off",
        "cold": "gridgov cold, cache emptied",
        "warm": "gridgov warm (from its cache)",
    }
    for tile_set in sets:
        runs = rounds_done[tile_set.name]
        print(f"{tile_set.name}: {tile_set.note}")
        pooled = {k: merge(v) for k, v in runs.items()}
        print_tiles("tipg 1.6.1", pooled["tipg"])
        for key, label in labels.items():
            print_tiles(label, pooled[key])
        tipg = pooled["tipg"]
        for key, label in labels.items():
            run = pooled[key]
            per_round = [
                ours.throughput / theirs.throughput
                for ours, theirs in zip(runs[key], runs["tipg"], strict=True)
            ]
            print(
                f"  => {label} / tipg: throughput ×{run.throughput / tipg.throughput:.2f} "
                f"(rounds: {', '.join(f'{r:.2f}' for r in per_round)}), "
                f"p50 {run.p(0.5):.1f} vs {tipg.p(0.5):.1f} ms, "
                f"p95 {run.p(0.95):.1f} vs {tipg.p(0.95):.1f} ms"
            )
        print()


def merge(runs: list[Run]) -> Run:
    """Several passes over the same tiles as one: every latency, the summed time."""
    by_zoom: dict[int, list[float]] = {}
    statuses: dict[int, int] = {}
    for run in runs:
        for zoom, values in run.by_zoom.items():
            by_zoom.setdefault(zoom, []).extend(values)
        for status, n in run.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    return Run(
        [v for run in runs for v in run.latencies],
        sum(run.seconds for run in runs),
        by_zoom,
        statuses,
    )


def libpq_url_str(url: str) -> str:
    from sqlalchemy.engine import make_url

    return libpq_url(make_url(url))


def bench_aggregates(engine: Engine, database_url: str, repeat: int) -> None:
    """The whole city over two years: gridgov's endpoints vs plain GROUP BY on raw rows."""
    day = "(reported_at AT TIME ZONE 'Asia/Shanghai')::date"
    plain = {
        "by district": f"SELECT district_code, count(*), count(*) FILTER (WHERE {OVERDUE}) "
        "FROM incident GROUP BY 1",
        "by grid": f"SELECT grid_code, count(*), count(*) FILTER (WHERE {OVERDUE}) "
        "FROM incident GROUP BY 1",
        "trend by month": f"SELECT date_trunc('month', {day}), count(*), "
        f"count(*) FILTER (WHERE {OVERDUE}) FROM incident GROUP BY 1",
    }
    urls = {
        "by district": "/aggregates/incidents/by/district",
        "by grid": "/aggregates/incidents/by/grid",
        "trend by month": "/aggregates/incidents/trend?interval=month",
        "H3 res 8": "/aggregates/incidents/h3?resolution=8",
    }

    def plain_h3() -> None:
        # Without H3 in PostGIS, the plain way: every point out of the database, binned here.
        with engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT ST_X(geom), ST_Y(geom), ({OVERDUE}) FROM incident")
            ).all()
        counts: dict[int, list[int]] = {}
        for lon, lat, late in rows:
            c = counts.setdefault(h3i.latlng_to_cell(lat, lon, 8), [0, 0])
            c[0] += 1
            c[1] += int(bool(late))

    def run_sql(sql: str) -> Callable[[], None]:
        def go() -> None:
            with engine.connect() as conn:
                conn.execute(text(sql)).all()

        return go

    headers = auth_headers(engine)
    gridgov_env = {"DATABASE_URL": database_url, "GRIDGOV_DATABASE_URL": database_url}
    started = time.perf_counter()
    with server([sys.executable, "-c", GRIDGOV], gridgov_env, "/conformance") as port:
        ready = time.perf_counter() - started

        def get(path: str) -> Callable[[], None]:
            def go() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                assert response.status == 200, response.status

            return go

        first = timed(get(urls["by grid"]), 1)
        print(
            f"\nAggregates, whole city, two years, no filter (median of {repeat} after the "
            "first). gridgov: HTTP request to a running server, JSON body read; plain: the "
            "same GROUP BY over the raw incident table (same counts, overdue included).\n"
            f"  server start → ready (includes the start-up warm-up: refresh + load of the "
            f"pre-aggregate): {ready:.1f} s; first request after that (by grid): {first:.0f} ms"
        )
        print(
            f"\n  {'query':<16} {'plain GROUP BY':>15} {'gridgov HTTP':>13} {'gridgov / plain':>16}"
        )
        for name, url in urls.items():
            base = (
                timed(plain_h3, repeat)
                if name == "H3 res 8"
                else timed(run_sql(plain[name]), repeat)
            )
            ours = timed(get(url), repeat)
            print(f"  {name:<16} {base:>12.1f} ms {ours:>10.1f} ms {ours / base:>16.3f}")
    cold_env = {**gridgov_env, "GRIDGOV_WARM_UP": "false"}
    with server([sys.executable, "-c", GRIDGOV], cold_env, "/conformance") as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        started = time.perf_counter()
        conn.request("GET", urls["by grid"])
        conn.getresponse().read()
        print(
            "  without the warm-up (GRIDGOV_WARM_UP=false) the first request pays the load: "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", action="store_true", help="use the test database")
    parser.add_argument(
        "--working", action="store_true", help="use the working database (default: gridgov_bench)"
    )
    parser.add_argument("--samples", type=int, default=60, help="incident sample per zoom")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--repeat", type=int, default=7, help="aggregate repetitions")
    parser.add_argument(
        "--gridgov-workers",
        type=int,
        default=1,
        help="uvicorn worker processes of the gridgov servers (tipg: always 1, its best here)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="measured passes per tile set and server"
    )
    parser.add_argument(
        "--low-zooms", action="store_true", help="also fetch zooms 10–11 (tipg: slow, huge tiles)"
    )
    parser.add_argument("--only", choices=("tiles", "aggregates"), help="run one part only")
    args = parser.parse_args()
    settings = Settings()
    if args.test:
        url = settings.require_test_database_url()
    elif args.working:
        url = settings.require_database_url()
    else:
        url = settings.require_bench_database_url()  # filled by scripts/bench_assign.py
    database_url = url.render_as_string(hide_password=False)
    engine = make_engine(settings, url)
    with engine.connect() as conn:
        incidents = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
    if incidents < 100_000:
        raise SystemExit(
            f"{url.database} holds {incidents} incidents: load the demo city "
            "first (make bench runs scripts/bench_assign.py before this script)"
        )
    print(f"Database {url.database}: {incidents:,} incidents; numpy {np.__version__}")
    if args.only != "aggregates":
        bench_tiles(
            engine,
            database_url,
            args.samples,
            args.threads,
            args.low_zooms,
            args.rounds,
            args.gridgov_workers,
        )
    if args.only != "tiles":
        bench_aggregates(engine, database_url, args.repeat)
    engine.dispose()


if __name__ == "__main__":
    main()
