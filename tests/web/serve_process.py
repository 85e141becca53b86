"""`nestctl serve` as its own process on a loopback port, pinned to a simulator (browser tests,
perf/serve.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.pvesim import PveSim

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeFailedError(RuntimeError):
    pass


def start_serve(
    sim: PveSim, log: Path, timeout: float = 30.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start it (output to `log`), wait until /healthz answers; (process, base URL)."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CONFIG_HOME": str(log.parent / "no-config")}
    argv = [sys.executable, "-m", "nestctl", "serve", "--listen", f"127.0.0.1:{port}"]
    argv += ["--api", sim.url, "--fingerprint", sim.fingerprint]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise ServeFailedError(f"nestctl serve did not start: see {log}")
        time.sleep(0.1)


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
