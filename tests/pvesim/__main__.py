"""Run the simulator on its own, for benchmarks and browser tests.

    python -m tests.pvesim --cluster tests/data/clusters/lab --port 8006 --latency-ms 20
    python -m tests.pvesim --generate 16x2000 --latency-ms 20

Prints one JSON line (url, fingerprint, token, password, cert) on stdout once it listens, then
serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from tests.pvesim.cluster import load_cluster
from tests.pvesim.generate import generate_cluster
from tests.pvesim.server import ROOT_PASSWORD, PveSim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.pvesim", description=__doc__.split("\n")[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cluster", type=Path, help="a fixture cluster directory")
    source.add_argument(
        "--generate",
        metavar="NODESxVMS",
        help="a generated cluster, e.g. 16x2000 or 16x1400+600 (and 600 CTs)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--task-seconds", type=float, default=0.5, help="how long a power task runs"
    )
    parser.add_argument(
        "--old-server", action="store_true", help="error text only in the reason phrase"
    )
    parser.add_argument("--token-secret", help="a fixed secret for root@pam!pvesim")
    args = parser.parse_args(argv)
    if args.cluster is not None:
        if not (args.cluster / "nodes").is_dir():
            parser.error(f"{args.cluster}: no nodes/ directory (not a fixture cluster)")
        cluster = load_cluster(args.cluster)
    else:
        try:
            nodes_text, _, guests = args.generate.lower().partition("x")
            vms_text, _, cts_text = guests.partition("+")  # 16x1400+600: 600 containers too
            nodes, vms, cts = int(nodes_text), int(vms_text), int(cts_text or "0")
        except ValueError:
            parser.error(f"--generate {args.generate}: expected NODESxVMS[+CTS], e.g. 16x2000")
        cluster = generate_cluster(nodes=nodes, vms=vms, cts=cts)
    cluster.task_seconds = args.task_seconds
    sim = PveSim(
        cluster,
        latency_ms=args.latency_ms,
        old_server=args.old_server,
        host=args.host,
        port=args.port,
    )
    if args.token_secret:
        sim.root_token = sim.add_token("root@pam", "pvesim", args.token_secret, privsep=False)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with sim:
        info = {
            "url": sim.url,
            "fingerprint": sim.fingerprint,
            "token": sim.root_token,
            "user": "root@pam",
            "password": ROOT_PASSWORD,
            "cert": str(sim.cert_path),
        }
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
