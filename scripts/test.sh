#!/usr/bin/env bash
# The whole test suite: set-up, services, lint, format check, types, tests.
# Arguments are passed to pytest (e.g. scripts/test.sh tests/store -x).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/bootstrap.sh
scripts/services.sh

echo "== ruff check" >&2
.venv/bin/ruff check .
echo "== ruff format --check" >&2
.venv/bin/ruff format --check .
echo "== mypy src" >&2
.venv/bin/mypy src
echo "== pytest" >&2
.venv/bin/pytest "$@"
