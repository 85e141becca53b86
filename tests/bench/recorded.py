"""Recorded result files (real runs) and the derived variants the comparison tests need.

data/host-kvm-quick.json: `nestctl bench --quick` on the development machine (a KVM guest, L1+).
data/guest-tcg-quick.json: the same, inside the e2e guest under QEMU TCG (through qemu-ga).
A variant scales chosen medians (with their spreads and runs) and changes `where` keys, as one
level deeper with a given setting would.
"""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
HOST = DATA / "host-kvm-quick.json"
GUEST_TCG = DATA / "guest-tcg-quick.json"


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def variant(
    doc: dict[str, Any], factors: dict[str, float], default: float = 1.0, **where: Any
) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for r in out["results"]:
        f = factors.get(r["name"], default)
        if r["status"] == "ok":
            r["median"] *= f
            r["spread"] *= f
            r["runs"] = [x * f for x in r["runs"]]
    out["where"].update(where)
    return out


def medians(doc: dict[str, Any]) -> dict[str, float]:
    return {r["name"]: r["median"] for r in doc["results"] if r["status"] == "ok"}


def saved_lab(root: Path, *, days_ago: float = 1.0) -> None:
    """Under `root`, what `nestctl bench --save` leaves after a run on the host (L1) and one in
    VM 101 from pve1 (L2) whose host has EPT off: page_touch_cold 2.5x, cpuid 12x. Written by
    the command's own save function, so the reader is tested against the real writer."""
    from nestctl.cli.bench import _save  # noqa: PLC0415 - the writer under test

    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days_ago)
    started = when.isoformat(timespec="seconds")
    host = {**variant(load(HOST), {}, level="L1"), "started": started}
    chain = {"node": "pve1", "vmid": 101, "host_ept_npt": False, "host_ept_npt_source": "npt=0"}
    guest = variant(host, {"page_touch_cold": 2.5, "cpuid": 12.0}, level="L2", chain=chain)
    _save(host, str(root))
    _save(guest, str(root))
