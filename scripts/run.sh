#!/usr/bin/env bash
# Start the server on the embedded defaults (SQLite and models under ./data, demo agent seeded).
# Arguments are passed to `voxline serve` (e.g. scripts/run.sh --port 9000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/bootstrap.sh
exec .venv/bin/voxline serve "$@"
