#!/usr/bin/env bash
# Create .venv if missing and install voxline with its extras into it. The install is skipped
# while pyproject.toml is older than the stamp left by the last successful install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv
STAMP="$VENV/.voxline-installed"
# Every extra the server and the test suite use: the tests cover traces (otel) and the
# recordings' bucket (s3) too, so a clean clone needs them all.
EXTRAS="local,piper,otel,s3,dev,bench"

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ ! -x "$VENV/bin/python" ]]; then
    if ! python=$(find_python); then
        echo "bootstrap: no Python 3.11 or newer found: install one, or set PYTHON=/path/to/python3.11" >&2
        exit 1
    fi
    echo "bootstrap: creating $VENV with $python" >&2
    "$python" -m venv "$VENV"
fi

if [[ ! -f "$STAMP" || pyproject.toml -nt "$STAMP" || "$(cat "$STAMP")" != "$EXTRAS" ]]; then
    echo "bootstrap: installing voxline[$EXTRAS] into $VENV" >&2
    # llama.cpp's native CPU detection builds code that crashes on CPUs reporting AMX:
    # build llama-cpp-python for a fixed AVX2 baseline instead.
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
    echo "$EXTRAS" >"$STAMP"
fi

# The recognition set (bench/stt_set: its test and bench/bench_stt.py) speaks with espeak-ng
# voices; they fail, never skip, without it.
if ! command -v espeak-ng >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing espeak-ng for the recognition set" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
    else
        echo "bootstrap: espeak-ng is missing: install it (Debian: apt-get install espeak-ng)" >&2
        exit 1
    fi
fi

# The web client test (tests/web) drives Debian's chromium; it fails, never skips, without it.
if ! command -v chromium >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing chromium for the web client test" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "bootstrap: chromium is missing: install Debian's chromium for tests/web" >&2
    fi
fi

# The fleet test (tests/fleet) runs two servers behind Debian's haproxy; it fails without it.
if ! command -v haproxy >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing haproxy for the fleet test" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
    else
        echo "bootstrap: haproxy is missing: install Debian's haproxy for tests/fleet" >&2
    fi
fi
