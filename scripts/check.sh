#!/usr/bin/env bash
# Lint, type-check and run the whole test suite; any failure fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "[gridgov] ruff"; .venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[gridgov] mypy"; .venv/bin/mypy
echo "[gridgov] pytest"; .venv/bin/pytest "$@"
