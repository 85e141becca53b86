#!/bin/sh
# Cold-start time of `nestctl host --json` against a bare `python -c pass` from the same interpreter.
#
# Targets (issue 3): median <= 100 ms wall, and <= 5x the bare interpreter start, measured in the
# same run. Every run is a new process (a cold start of the interpreter; the OS page cache is warm,
# as it is for a user running the command twice).
#
# Usage: perf/host_startup.sh [RUNS] [-- extra nestctl args, e.g. --root DIR]
#   PYTHON=path/to/python overrides the interpreter (default: .venv/latest/bin/python).
# Public tools only: python's time.perf_counter around subprocess runs (hyperfine is used for a
# second opinion when it is installed).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-30}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
PYTHON=${PYTHON:-$here/.venv/latest/bin/python}
if [ ! -x "$PYTHON" ]; then
    echo "no interpreter at $PYTHON (run scripts/test once, or set PYTHON=)" >&2
    exit 2
fi
script=$(dirname "$PYTHON")/nestctl

# Measure nestctl as installed: with byte-code. This environment may set PYTHONDONTWRITEBYTECODE,
# which would make every run recompile the editable checkout; a private cache directory (emptied
# afterwards) keeps the checkout clean and applies alike to every command timed.
unset PYTHONDONTWRITEBYTECODE
PYTHONPYCACHEPREFIX=$(mktemp -d "${TMPDIR:-/tmp}/nestctl-bench.XXXXXX")
export PYTHONPYCACHEPREFIX
trap 'rm -rf "$PYTHONPYCACHEPREFIX"' EXIT

"$PYTHON" - "$runs" "$PYTHON" "$script" "$@" <<'PY'
import os
import statistics
import subprocess
import sys
import time

runs = int(sys.argv[1])
python, script, extra = sys.argv[2], sys.argv[3], sys.argv[4:]
commands = {
    "python -c pass": [python, "-c", "pass"],
    "python -c 'import click'": [python, "-c", "import click"],
    "python -m nestctl host --json": [python, "-m", "nestctl", "host", "--json", *extra],
}
if os.access(script, os.X_OK):
    commands["nestctl host --json (console script)"] = [script, "host", "--json", *extra]

def once(argv):
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1, 2):
        sys.exit(f"{' '.join(argv)}: exit code {proc.returncode}")
    return elapsed

results = {}
for name, argv in commands.items():
    once(argv)  # warm the page cache
samples = {name: [] for name in commands}
for _ in range(runs):  # interleaved, so load on the machine hits every command alike
    for name, argv in commands.items():
        samples[name].append(once(argv))
print(f"{runs} runs each, interpreter {python}")
for name, values in samples.items():
    med = statistics.median(values) * 1000
    lo = min(values) * 1000
    results[name] = med
    print(f"  {name:42s} median {med:7.1f} ms   min {lo:7.1f} ms")
base = results["python -c pass"]
worst = max(v for k, v in results.items() if "nestctl" in k)
ratio = worst / base
print(f"nestctl host --json: median {worst:.1f} ms (target <= 100 ms): "
      f"{'OK' if worst <= 100 else 'MISSED'}")
print(f"ratio to python -c pass: {ratio:.2f}x (target <= 5x): {'OK' if ratio <= 5 else 'MISSED'}")
PY

if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N --warmup 3 --runs "$runs" "$PYTHON -c pass" "$PYTHON -m nestctl host --json $*" || true
fi
