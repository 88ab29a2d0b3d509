"""Load benchmark: 50 concurrent users of mixed reads and incident writes for 60 seconds.

A second process on loopback drives the API: an asyncio loop of httpx2 clients, one task
per user, each picking its next request from a fixed mix (feature items by bbox, vector
tiles, heatmap aggregates; reporting incidents and moving them one lifecycle stage). The
server is started here (uvicorn workers with ``gridgov.api.app:app_from_environment``)
against the benchmark database, or given with ``--url``; the database must be the one
that server uses, since the script counts in it what was written.

It prints throughput, latency percentiles per kind of request, the error count (every
answer that is not the expected success; it must be 0) and whether every accepted write
is in the database (incidents with this run's external ids = accepted POSTs; their
``registered`` transitions = accepted transition POSTs). Exit status 1 when there were
errors or lost writes. The run's incidents are deleted afterwards unless ``--keep``.
Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from gridgov.gis.webmercator import tile_for
from gridgov.layers import accounts
from gridgov.layers.db import make_engine
from gridgov.settings import Settings

CATEGORIES = ("dispute", "safety_hazard", "public_order", "city_management")
LEVELS = ("grid", "community", "township", "district", "police_station", "policing_area")
# The mix: weights of each kind of request (reads 80 %, writes 20 %).
MIX = {
    "items": 30,
    "tiles": 30,
    "aggregates": 20,
    "report": 15,
    "transition": 5,
}
EXPECTED = {
    "items": {200},
    "tiles": {200, 204},
    "aggregates": {200},
    "report": {201},
    "transition": {200},
}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    reported: list[int] = field(default_factory=list)  # ids of accepted reports
    registered: int = 0  # accepted transitions

    def record(self, kind: str, seconds: float, status: int, detail: str) -> bool:
        self.latencies[kind].append(seconds)
        if status in EXPECTED[kind]:
            return True
        self.errors[kind] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind} {status} {detail[:200]}")
        return False


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def server(database_url: str, workers: int) -> Iterator[str]:
    """uvicorn with ``workers`` processes on a free loopback port, until the block ends."""
    port = free_port()
    # The server's log outlives the run (its path is printed): no context manager here.
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115
        prefix="gridgov-bench-load-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gridgov.api.app:app_from_environment",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "info",  # the supervisor's lifecycle lines too (a worker restarted …)
            "--no-access-log",
        ],
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=log,  # a file, not a pipe: a full pipe would stall the server's logging
        start_new_session=True,  # its own process group: the workers are stopped with it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Every worker must have started (its cube loaded) before the load begins: the
        # first one ready would otherwise take all 50 keep-alive connections for the whole
        # run while the others finish starting, and carry the load alone.
        deadline = time.monotonic() + 300
        while True:
            started = Path(log.name).read_text(errors="replace")
            if started.count("Application startup complete") >= workers:
                try:
                    httpx.get(f"{base}/health", timeout=5).raise_for_status()
                    break
                except httpx.HTTPError:
                    pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {started[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()
        print(f"server log: {log.name}")


@dataclass(frozen=True)
class Samples:
    points: list[tuple[float, float]]  # lon, lat of stored incidents (inside the city)
    districts: list[str]
    townships: list[str]


def samples(engine: Engine, seed: int) -> Samples:
    with engine.connect() as conn:
        conn.execute(text("SELECT setseed(:s)"), {"s": (seed % 1000) / 1000})
        points = [
            (float(r[0]), float(r[1]))
            for r in conn.execute(
                text(
                    "SELECT ST_X(geom), ST_Y(geom) FROM incident "
                    "TABLESAMPLE BERNOULLI (1) REPEATABLE (:seed) LIMIT 2000"
                ),
                {"seed": seed},
            )
        ]
        districts = [r[0] for r in conn.execute(text("SELECT code FROM district ORDER BY code"))]
        townships = [r[0] for r in conn.execute(text("SELECT code FROM township ORDER BY code"))]
    if len(points) < 100:
        raise SystemExit("the database holds too few incidents: load the demo city first")
    return Samples(points, districts, townships)


def next_request(
    kind: str, rng: random.Random, s: Samples, run_id: str, user: int, n: int, mine: list[int]
) -> tuple[str, str, dict[str, object] | None]:
    """(method, path with query, JSON body) of one request of ``kind``."""
    lon, lat = rng.choice(s.points)
    if kind == "items":
        d = rng.choice((0.005, 0.01, 0.02))
        bbox = f"{lon - d:.6f},{lat - d:.6f},{lon + d:.6f},{lat + d:.6f}"
        layer = rng.choice(("incident", "incident", "grid", "rental_housing", "key_site"))
        return "GET", f"/collections/{layer}/items?bbox={bbox}&limit=100", None
    if kind == "tiles":
        z = rng.randint(12, 16)
        x, y = tile_for(lon, lat, z)
        if rng.random() < 0.5:
            return "GET", f"/collections/incident/tiles/WebMercatorQuad/{z}/{x}/{y}", None
        return "GET", f"/tiles/WebMercatorQuad/{z}/{x}/{y}?collections=grid,incident", None
    if kind == "aggregates":
        pick = rng.random()
        if pick < 0.4:
            level = rng.choice(LEVELS)
            return (
                "GET",
                f"/aggregates/incidents/by/{level}?category={rng.choice(CATEGORIES)}",
                None,
            )
        if pick < 0.7:
            district = rng.choice(s.districts)
            return "GET", f"/aggregates/incidents/h3?resolution=8&district_code={district}", None
        township = rng.choice(s.townships)
        return "GET", f"/aggregates/incidents/trend?interval=week&township_code={township}", None
    if kind == "transition" and mine:
        return "POST", f"/incidents/{mine.pop()}/transitions", {"to": "registered"}
    # A report a few metres from a stored incident (so inside the city), as a phone sends it.
    body: dict[str, object] = {
        "lon": round(lon + rng.uniform(-3e-4, 3e-4), 7),
        "lat": round(lat + rng.uniform(-3e-4, 3e-4), 7),
        "crs": "cgcs2000",
        "category": rng.choice(CATEGORIES),
        "source": "hotline",
        "reported_at": (datetime.now(UTC) - timedelta(minutes=rng.randint(0, 600))).isoformat(),
        "external_id": f"bench-{run_id}-{user}-{n}",
        "description": "负载测试 (load benchmark)",
    }
    return "POST", "/incidents", body


async def user_loop(
    client: httpx.AsyncClient,
    user: int,
    seed: int,
    s: Samples,
    run_id: str,
    until: float,
    tally: Tally,
    mix: dict[str, int],
) -> None:
    rng = random.Random(seed * 1000 + user)  # noqa: S311 - a reproducible mix, not a secret
    kinds, weights = list(mix), list(mix.values())
    mine: list[int] = []  # this user's reported incidents still to be registered
    n = 0
    while time.monotonic() < until:
        kind = rng.choices(kinds, weights)[0]
        if kind == "transition" and not mine:
            kind = "report"
        method, path, body = next_request(kind, rng, s, run_id, user, n, mine)
        n += 1
        start = time.perf_counter()
        try:
            response = await client.request(method, path, json=body)
            status, detail = (
                response.status_code,
                response.text if response.status_code >= 300 else "",
            )
        except httpx.HTTPError as exc:
            status, detail = 0, repr(exc)
        ok = tally.record(kind, time.perf_counter() - start, status, detail)
        if ok and kind == "report":
            new_id = int(response.json()["id"])
            tally.reported.append(new_id)
            mine.append(new_id)
        elif ok and kind == "transition":
            tally.registered += 1


async def drive(
    base: str,
    users: int,
    seconds: float,
    seed: int,
    s: Samples,
    run_id: str,
    token: str | None,
    mix: dict[str, int],
) -> tuple[Tally, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    tally = Tally()
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60.0
    ) as client:
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(
            *(user_loop(client, u, seed, s, run_id, until, tally, mix) for u in range(users))
        )
        elapsed = time.monotonic() - started
    return tally, elapsed


def verify(engine: Engine, run_id: str, keep: bool) -> tuple[int, int]:
    """(incidents, registered transitions) of this run found in the database."""
    pattern = f"bench-{run_id}-%"
    with engine.begin() as conn:
        stored = int(
            conn.execute(
                text("SELECT count(*) FROM incident WHERE external_id LIKE :p"), {"p": pattern}
            ).scalar_one()
        )
        moved = int(
            conn.execute(
                text(
                    "SELECT count(*) FROM incident_transition t JOIN incident i "
                    "ON i.id = t.incident_id WHERE i.external_id LIKE :p "
                    "AND t.to_status = 'registered'"
                ),
                {"p": pattern},
            ).scalar_one()
        )
        if not keep:
            conn.execute(
                text(
                    "DELETE FROM incident_transition WHERE incident_id IN "
                    "(SELECT id FROM incident WHERE external_id LIKE :p)"
                ),
                {"p": pattern},
            )
            conn.execute(text("DELETE FROM incident WHERE external_id LIKE :p"), {"p": pattern})
    return stored, moved


def report(tally: Tally, elapsed: float, stored: int, moved: int, users: int) -> bool:
    every = [v for values in tally.latencies.values() for v in values]
    errors = sum(tally.errors.values())
    print(
        f"\n{users} users for {elapsed:.1f} s: {len(every):,} requests, "
        f"{len(every) / elapsed:,.1f} requests/s"
    )
    print(
        f"{'kind':<12}{'count':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
    )
    for kind in [*MIX, "all"]:
        values = every if kind == "all" else tally.latencies.get(kind, [])
        errs = errors if kind == "all" else tally.errors.get(kind, 0)
        print(
            f"{kind:<12}{len(values):>8}{len(values) / elapsed:>9.1f}{pct(values, 0.50):>9.1f}"
            f"{pct(values, 0.95):>9.1f}{pct(values, 0.99):>9.1f}{errs:>8}"
        )
    if every:
        print(f"mean latency {statistics.fmean(every) * 1000:.1f} ms")
    for sample in tally.error_samples:
        print("  error:", sample)
    accepted, transitions = len(tally.reported), tally.registered
    lost = accepted - stored
    print(
        f"writes: {accepted} reports accepted, {stored} in the database; "
        f"{transitions} transitions accepted, {moved} in the database"
    )
    print(f"errors: {errors}; lost writes: {lost + (transitions - moved)}")
    return errors == 0 and stored == accepted and moved == transitions


def parse_mix(text_: str) -> dict[str, int]:
    mix = dict(MIX)
    for part in filter(None, (p.strip() for p in text_.split(","))):
        kind, _, weight = part.partition("=")
        if kind not in MIX or not weight.isdigit():
            raise SystemExit(f"--mix: {part!r} is not KIND=WEIGHT with KIND one of {list(MIX)}")
        mix[kind] = int(weight)
    return mix


def database(args: argparse.Namespace, settings: Settings) -> URL:
    if args.test:
        return settings.require_test_database_url()
    return settings.require_bench_database_url()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent users (50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the request mix")
    parser.add_argument("--url", help="drive this running server instead of starting one")
    parser.add_argument("--test", action="store_true", help="use the test database")
    parser.add_argument("--keep", action="store_true", help="keep the run's incidents")
    parser.add_argument(
        "--mix",
        default=",".join(f"{k}={v}" for k, v in MIX.items()),
        help="weights of the request kinds, e.g. items=30,tiles=30,aggregates=20,report=15,"
        "transition=5 (the default)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("GRIDGOV_BENCH_TOKEN"),
        help="bearer token sent with every request (or GRIDGOV_BENCH_TOKEN)",
    )
    args = parser.parse_args()
    mix = parse_mix(args.mix)
    settings = Settings()
    url = database(args, settings)
    engine = make_engine(settings, url)
    s = samples(engine, args.seed)
    run_id = secrets.token_hex(4)
    print(
        f"Database {url.database}; {args.users} users, {args.duration:.0f} s, mix "
        + ", ".join(f"{k} {v}" for k, v in mix.items())
    )
    try:
        if args.url:
            tally, elapsed = asyncio.run(
                drive(args.url, args.users, args.duration, args.seed, s, run_id, args.token, mix)
            )
        else:
            database_url = url.render_as_string(hide_password=False)
            token = args.token
            if token is None:  # our own server: a session of the benchmark's own account
                with engine.begin() as conn:
                    token = accounts.service_token(conn, settings.require_secret_key())
            with server(database_url, args.workers) as base:
                print(f"server: uvicorn, {args.workers} workers, {base}")
                tally, elapsed = asyncio.run(
                    drive(base, args.users, args.duration, args.seed, s, run_id, token, mix)
                )
        stored, moved = verify(engine, run_id, args.keep)
    finally:
        engine.dispose()
    if not report(tally, elapsed, stored, moved, args.users):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
