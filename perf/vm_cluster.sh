#!/bin/sh
# `nestctl vm --all-nodes --json` over generated clusters of 500, 2,000 and 5,000 VM configs.
# Target (issue 4): median <= 1.5 s at 5,000 configs, linear growth. See perf/vm_cluster.py.
# Usage: perf/vm_cluster.sh [--sizes 500,2000,5000] [--runs 5] [--nodes 8]
#   PYTHON=path/to/python overrides the interpreter (default: .venv/latest/bin/python).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$here/.venv/latest/bin/python}
if [ ! -x "$PYTHON" ]; then
    echo "no interpreter at $PYTHON (run scripts/test once, or set PYTHON=)" >&2
    exit 2
fi
if [ ! -d "$here/../shared/conformance/pve-cfg2cmd" ]; then
    echo "needs ../shared/conformance/pve-cfg2cmd beside the clone (the configs it replicates)" >&2
    exit 2
fi
exec "$PYTHON" "$here/perf/vm_cluster.py" --python "$PYTHON" "$@"
