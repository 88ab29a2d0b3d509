# Thin wrappers over scripts/: the README's commands are the truth.
.PHONY: serve test bench lint migrate setup

serve:            ## install what is missing, start PostGIS, migrate, load demo, serve :8000
	scripts/bootstrap.sh serve
	.venv/bin/gridgov demo load --if-empty
	.venv/bin/gridgov serve

test:             ## the same set-up for the test database, then ruff, mypy and pytest
	scripts/bootstrap.sh test
	scripts/check.sh

bench:            ## benchmarks on the gridgov_bench database; they print ratios, not verdicts
	scripts/bootstrap.sh bench
	.venv/bin/python scripts/bench_assign.py
	.venv/bin/python scripts/bench_tiles.py
	.venv/bin/python scripts/bench_load.py
	.venv/bin/python scripts/bench_optimise.py

lint:             ## ruff and mypy only
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

migrate:          ## bring the working database to the newest migration
	.venv/bin/gridgov db migrate

setup:            ## set-up only (venv, PostGIS, database), without serving
	scripts/bootstrap.sh serve
