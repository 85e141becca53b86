"""Ctrl-C on the long-running verbs is exit 130 with one line, as for every other verb: a real
SIGINT at a real process, while the exporter serves and while a benchmark measures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.host.scenarios import build


def _nestctl(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nestctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # our SIGINT only, and no stray one reaches pytest
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _interrupt(proc: subprocess.Popen[str]) -> None:
    """SIGINT: exit 130, one line, nothing half-printed on stdout."""
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "nestctl: interrupted"
    assert "Traceback" not in err
    assert out == ""


def test_sigint_stops_the_exporter_with_130(tmp_path: Path) -> None:
    build(tmp_path, "intel-nested-on")
    port = _free_port()
    proc = _nestctl("exporter", "--listen", f"127.0.0.1:{port}", "--root", str(tmp_path))
    deadline = time.monotonic() + 60
    while True:  # serving: a scrape answers
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                assert b"nestctl_" in r.read()
            break
        except OSError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the exporter never served"
            time.sleep(0.2)
    _interrupt(proc)
    assert _group_gone(proc.pid)


def _group_gone(pgid: int) -> bool:
    """No process of the run is left (a workload's child would keep measuring, and loading)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    return False


def test_sigint_stops_a_benchmark_with_130() -> None:
    proc = _nestctl("bench", "--json")  # the full set: minutes, so it is surely mid-run
    time.sleep(3)
    assert proc.poll() is None
    _interrupt(proc)
    assert _group_gone(proc.pid)
