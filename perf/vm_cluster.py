"""Benchmark: `nestctl vm --all-nodes --json` over a generated cluster of N VM configs.

The configs are Proxmox's own cfg2cmd test configs (../shared/conformance/pve-cfg2cmd), copied at
run time into a temporary tree under /etc/pve/nodes/<node>/qemu-server (never into the repository),
spread over several nodes, with every 10th VM of the local node running (a fake pid file and
/proc/<pid>/cmdline). Each measurement is a whole `nestctl` process (start-up included), median of
several runs. Target (issue 4): median <= 1.5 s at 5,000 configs, and linear growth.

Modes: `--no-qemu` (the built-in table) always; `--use-qemu` with a warm answer cache in a private
cache directory when qemu-system-x86_64 is installed (the first, cache-filling run is reported
separately and not counted in the median).

Usage: python perf/vm_cluster.py [--sizes 500,2000,5000] [--runs 5] [--nodes 8]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: CPU seconds (user + sys) of each measured process: less sensitive than wall time to other
#: load on a shared machine.
CPU: list[float] = []
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONFORMANCE = REPO.parent / "shared" / "conformance" / "pve-cfg2cmd"
CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
    "model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\n"
    "flags\t\t: fpu vme sse4_2 popcnt avx avx2 bmi1 bmi2 fma movbe adx rdseed smap aes vmx\n"
)
DPKG = "".join(
    f"Package: {p}\nStatus: install ok installed\nVersion: {v}\n\n"
    for p, v in (("qemu-server", "9.2.6"), ("pve-manager", "9.2.2"), ("pve-qemu-kvm", "11.0.2-1"))
)


def write(root: Path, hostpath: str, data: str | bytes) -> None:
    real = root / hostpath.lstrip("/")
    real.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        real.write_bytes(data)
    else:
        real.write_text(data)


def build_tree(root: Path, count: int, nodes: int) -> None:
    sources = sorted(CONFORMANCE.glob("*.conf"))
    if not sources:
        sys.exit(f"no conformance configs under {CONFORMANCE}")
    texts = [p.read_text() for p in sources]
    write(root, "/proc/cpuinfo", CPUINFO)
    write(root, "/sys/module/kvm_intel/parameters/nested", "Y\n")
    write(root, "/dev/kvm", "")
    write(root, "/etc/hostname", "pve1\n")
    write(root, "/var/lib/dpkg/status", DPKG)
    models = CONFORMANCE / "_fixtures" / "cpu-models.conf"
    if models.exists():
        write(root, "/etc/pve/virtual-guest/cpu-models.conf", models.read_text())
    for i in range(count):
        vmid = 100 + i
        node = f"pve{i % nodes + 1}"
        write(root, f"/etc/pve/nodes/{node}/qemu-server/{vmid}.conf", texts[i % len(texts)])
        if node == "pve1" and i % 10 == 0:
            pid = 10_000 + i
            argv = [
                "/usr/bin/kvm",
                "-id",
                str(vmid),
                "-pidfile",
                f"/var/run/qemu-server/{vmid}.pid",
                "-cpu",
                "kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep",
            ]
            write(root, f"/var/run/qemu-server/{vmid}.pid", f"{pid}\n")
            write(root, f"/proc/{pid}/cmdline", ("\0".join(argv) + "\0").encode())


def once(argv: list[str], env: dict[str, str], expect: int) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1, 2):
        sys.exit(f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr.decode()[-2000:]}")
    import json  # noqa: PLC0415

    got = len(json.loads(proc.stdout)["vms"])
    if got != expect:
        sys.exit(f"expected {expect} VMs in the report, got {got}")
    return elapsed


def measure(argv: list[str], env: dict[str, str], runs: int, count: int) -> list[float]:
    return [once(argv, env, count) for _ in range(runs)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="500,2000,5000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--python", default=str(REPO / ".venv" / "latest" / "bin" / "python"))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="nestctl-vmbench."))
    env["XDG_CACHE_HOME"] = str(work / "cache")  # the QEMU answer cache, private to this run
    # Measure nestctl as installed, with byte-code (this environment may forbid writing it, which
    # would recompile every module on every run); a private cache directory keeps the tree clean.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    qemu = shutil.which("qemu-system-x86_64")
    print(
        f"python {args.python}; {args.runs} runs per point; nodes {args.nodes}; "
        f"configs from {CONFORMANCE}"
    )
    table: list[tuple[int, str, float, float]] = []
    try:
        for count in sizes:
            root = work / f"tree-{count}"
            build_tree(root, count, args.nodes)
            base = [
                args.python,
                "-m",
                "nestctl",
                "vm",
                "--all-nodes",
                "--json",
                "--root",
                str(root),
            ]
            modes = [("--no-qemu", [*base, "--no-qemu"])]
            if qemu:
                cold = once([*base, "--use-qemu"], env, count)
                print(
                    f"  {count:6d} configs  --use-qemu first run (asks QEMU what the cache "
                    f"lacks): {cold:.3f} s"
                )
                modes.append(("--use-qemu warm cache", [*base, "--use-qemu"]))
            for name, argv in modes:
                once(argv, env, count)  # warm the page cache
                CPU.clear()
                values = measure(argv, env, args.runs, count)
                med = statistics.median(values)
                cpu = statistics.median(CPU)
                table.append((count, name, med, cpu))
                print(
                    f"  {count:6d} configs  {name:22s} median {med:6.3f} s  "
                    f"min {min(values):6.3f} s  cpu {cpu:6.3f} s  {count / med:8.0f} configs/s"
                )
            shutil.rmtree(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in dict.fromkeys(n for _, n, _, _ in table):
        points = [(c, t, cpu) for c, n, t, cpu in table if n == name]
        per = ", ".join(f"{c}: {c / t:.0f} configs/s" for c, t, _ in points)
        print(f"{name}: {per}")
        if len(points) >= 2:
            (c0, t0, u0), (c1, t1, u1) = points[0], points[-1]
            print(
                f"  growth {c0} -> {c1}: {(t1 - t0) / (c1 - c0) * 1000:.3f} ms wall and "
                f"{(u1 - u0) / (c1 - c0) * 1000:.3f} ms CPU per extra config; fixed part "
                f"~{u0 - (u1 - u0) / (c1 - c0) * c0:.3f} s CPU"
            )
        big = [t for c, t, _ in points if c >= 5000]
        if big:
            print(
                f"  at {points[-1][0]}: median {big[-1]:.3f} s, target <= 1.5 s: "
                + ("OK" if big[-1] <= 1.5 else "MISSED")
            )


if __name__ == "__main__":
    main()
