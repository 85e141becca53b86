"""Start-up of nestctl as installed from the .deb and the .pyz, against the development install.

Builds the .deb and the .pyz from this tree, installs the .deb with apt into a pristine Debian 12
root (the install tests' cached mmdebstrap tarball; /proc, /sys, /dev bound, so every variant
inspects this same machine), then times, interleaved, each a new process:

- dev: `.venv/latest/bin/nestctl` (editable install, the test environment's Python and click/rich)
- deb: `/usr/bin/nestctl` in the root (Debian's python3, python3-click, python3-rich)
- pyz: `python3 nestctl.pyz` in the root (Debian's python3, vendored click/rich)

for `host --json` (the fast path) and `doctor --json` (click and rich imported). Targets (issue 9):
deb within 1.2x of dev for `host --json`; the .pyz ratio to the deb is reported. `chroot /bin/true`
is timed too: the cost of entering the root, which the deb and pyz figures include.

Usage (root): .venv/latest/bin/python perf/install_startup.py [RUNS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.install.rootfs import pristine_root  # noqa: E402 - the repository on sys.path first

VENV = REPO / ".venv" / "latest" / "bin"


def build(script: str, out: Path) -> Path:
    env = {**os.environ, "PYTHON": str(VENV / "python")}
    subprocess.run(
        [REPO / "scripts" / script, "--out", out], env=env, check=True, stdout=subprocess.DEVNULL
    )
    (built,) = out.iterdir()
    return built


def once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1, 2):
        sys.exit(f"{' '.join(argv)}: exit code {proc.returncode}")
    return elapsed


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    if os.geteuid() != 0 or not (VENV / "nestctl").exists():
        print("needs root (chroot) and .venv/latest (run scripts/test once)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="nestctl-bench-") as tmp:
        deb = build("build-deb", Path(tmp, "deb"))
        pyz = build("build-pyz", Path(tmp, "pyz"))
        kb, mb = deb.stat().st_size / 1e3, pyz.stat().st_size / 1e6
        print(f"{deb.name}: {kb:.0f} kB; nestctl.pyz: {mb:.1f} MB")
        with pristine_root() as root:
            shutil.copy(deb, root.host_path(f"/tmp/{deb.name}"))
            shutil.copy(pyz, root.host_path("/root/nestctl.pyz"))
            root.check("apt-get update -qq && apt-get install -y -qq /tmp/" + deb.name, timeout=900)
            return measure(root.path, runs)


def measure(chroot: Path, runs: int) -> int:
    cache = tempfile.mkdtemp(prefix="nestctl-bench-pyc-")
    # The editable checkout compiles into a private byte-code cache (this environment may set
    # PYTHONDONTWRITEBYTECODE, which would make every dev run recompile); the .deb's byte-code was
    # written by its postinst, the .pyz carries its own.
    dev_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    dev_env["PYTHONPYCACHEPREFIX"] = cache
    root_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    into = ["chroot", str(chroot)]
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "chroot /bin/true": ([*into, "/bin/true"], root_env),
        "dev python -c pass": ([str(VENV / "python"), "-c", "pass"], dev_env),
        "deb python3 -c pass": ([*into, "/usr/bin/python3", "-c", "pass"], root_env),
    }
    for args in (["host", "--json"], ["doctor", "--json"]):
        label = " ".join(args)
        commands[f"dev {label}"] = ([str(VENV / "nestctl"), *args], dev_env)
        commands[f"deb {label}"] = ([*into, "/usr/bin/nestctl", *args], root_env)
        commands[f"pyz {label}"] = (
            [*into, "/usr/bin/python3", "/root/nestctl.pyz", *args],
            root_env,
        )
    try:
        for argv, env in commands.values():
            once(argv, env)  # warm the page cache and the byte-code caches
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):  # interleaved: load on the shared machine hits every variant alike
            for name, (argv, env) in commands.items():
                samples[name].append(once(argv, env))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    med = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"{runs} runs each (medians, ms)")
    for name, value in med.items():
        print(f"  {name:28s} {value:7.1f}   (min {min(samples[name]) * 1000:6.1f})")
    ok = True
    for label in ("host --json", "doctor --json"):
        ratio = med[f"deb {label}"] / med[f"dev {label}"]
        pyz = med[f"pyz {label}"] / med[f"deb {label}"]
        verdict = ""
        if label == "host --json":
            verdict = " (target <= 1.2x): " + ("OK" if ratio <= 1.2 else "MISSED")
            ok = ratio <= 1.2
        print(f"{label}: deb / dev {ratio:.2f}x{verdict}; pyz / deb {pyz:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
