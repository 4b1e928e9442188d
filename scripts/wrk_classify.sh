#!/bin/sh
# Load a running `distilora serve` with wrk (apt-get install wrk): CLIENTS connections for DURATION, each POSTing
# one of RUN's test texts at a time (scripts/wrk_classify.lua).
#   scripts/wrk_classify.sh RUN [CLIENTS=32] [DURATION=60s] [MODEL=server default] [PORT=8000]
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 RUN [CLIENTS] [DURATION] [MODEL] [PORT]" >&2
    exit 2
fi
command -v wrk >/dev/null || { echo "$0: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
here=$(dirname "$0")
python=${PYTHON:-$here/../.venv/bin/python}
texts=$(mktemp "${TMPDIR:-/tmp}/wrk-texts.XXXXXX")
trap 'rm -f "$texts"' EXIT
"$python" "$here/latency.py" --run "$1" --dump-texts "$texts" >&2
TEXTS=$texts MODEL=${4:-} wrk -t1 -c"${2:-32}" -d"${3:-60s}" --timeout 10s --latency -s "$here/wrk_classify.lua" \
    "http://127.0.0.1:${5:-8000}/api/v1/classify"
