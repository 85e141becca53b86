"""The executable-memory helper: real cpuid/rdtsc, and "not measurable here" when refused."""

from __future__ import annotations

import errno
import json
import mmap
import subprocess
import sys
from pathlib import Path

import pytest

from nestctl.bench.runner import QUICK, measure
from nestctl.bench.stub import load_stub
from nestctl.bench.workloads import WORKLOADS, Context
from nestctl.host.cpuinfo import parse_cpuinfo

SRC = Path(__file__).resolve().parents[2] / "src"
BY_NAME = {w.name: w for w in WORKLOADS}


def refuse(size: int) -> mmap.mmap:
    raise PermissionError(errno.EACCES, "Permission denied")


def test_cpuid_through_the_stub_names_the_cpu_vendor_cpuinfo_shows() -> None:
    stub = load_stub()
    if isinstance(stub, str):
        pytest.skip(stub)
    _eax, ebx, ecx, edx = stub.cpuid(0)
    vendor = b"".join(r.to_bytes(4, "little") for r in (ebx, edx, ecx)).decode()
    assert vendor == parse_cpuinfo(Path("/proc/cpuinfo").read_text()).vendor_id
    first = stub.rdtsc()
    stub.rdtsc_loop(1000)
    assert stub.rdtsc() > first


def test_refused_executable_memory_is_not_measurable_not_a_crash() -> None:
    stub = load_stub(refuse)
    assert isinstance(stub, str)
    assert "executable memory refused" in stub
    ctx = Context(stub, None)
    for name in ("cpuid", "rdtsc"):
        entry = measure(BY_NAME[name], ctx, QUICK, None)
        assert entry["status"] == "not-measurable"
        assert entry["median"] is None
        assert entry["reason"].startswith("not measurable here: executable memory refused")
    assert measure(BY_NAME["cpu"], ctx, QUICK, None)["status"] == "ok"


def _mdwe_available() -> bool:
    code = (
        "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
        "sys.exit(0 if libc.prctl(65, 1, 0, 0, 0) == 0 else 1)"
    )
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.runs_commands
def test_the_kernel_refusing_executable_memory_gives_not_measurable() -> None:
    """PR_SET_MDWE (Linux >= 6.3) makes the kernel itself refuse W+X memory, as SELinux would."""
    if not _mdwe_available():
        pytest.skip("the kernel has no memory-deny-write-execute (PR_SET_MDWE, Linux >= 6.3)")
    code = (
        "import ctypes, sys\n"
        "assert ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) == 0\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "from nestctl.bench.runner import main\n"
        "sys.exit(main(['--quick', '--only', 'cpuid,rdtsc,cpu']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    results = {r["name"]: r for r in doc["results"]}
    assert results["cpuid"]["status"] == "not-measurable"
    assert "executable memory refused" in results["cpuid"]["reason"]
    assert results["rdtsc"]["status"] == "not-measurable"
    assert results["cpu"]["status"] == "ok"
    assert doc["where"]["tsc_hz"] is None  # no rdtsc: cycles are unknown, not guessed
    assert results["cpu"]["cycles"] is None
