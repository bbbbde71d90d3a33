#!/usr/bin/env bash
# Start the server on the embedded defaults (SQLite and models under ./data, demo agent seeded);
# talk to it from a browser at http://127.0.0.1:8000/.
# Arguments are passed to `voxline serve` (e.g. scripts/run.sh --port 9000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/bootstrap.sh
# Local quick start: the web client at / gets session tokens without an API key
# (development endpoints answer this machine only), unless VOXLINE_DEV_MODE is set here or in .env.
if [[ -z "${VOXLINE_DEV_MODE:-}" ]] && ! grep -qs '^VOXLINE_DEV_MODE=' .env; then
    export VOXLINE_DEV_MODE=true
fi
exec .venv/bin/voxline serve "$@"
