"""What the last API scan of a cluster read, so that the next scan reuses what did not change.

The exporter, the dashboard and `watch` rescan the same cluster every minute, and most VMs are
unchanged between two scans. An unchanged VM should cost its one request and nothing more: no
JSON decoding, no config parsing, no `-cpu` prediction. So each scan keeps, per VM, the exact
bytes of its `pending` reply (which carries the config digest, every value and every pending
change) with the facts built from them, and the next scan compares bytes:

- same bytes, same run state (status, running QEMU and machine, pid) and the same node facts:
  the previous `VmFacts` object is reused as it is;
- anything else: the VM is read afresh.

Node facts are interned by value: a node whose facts equal the previous scan's keeps the previous
object, so its `CpuEnv` keeps its identity and the `-cpu` prediction cache (keyed per env)
answers the analysis too. Byte equality is stricter than the digest alone, and nothing is
trusted across a change: a memo can make a scan cheaper, never different.

Memos live in the process (a few clusters, bounded), keyed by the API URL and the user: one
user's view never serves another's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nestctl.vm.facts import NodeFacts, VmFacts

#: How many clusters (URL, user) a process remembers.
MAX_CLUSTERS = 8

#: What of a node list entry the run state is built from.
RUN_KEYS = ("status", "running-qemu", "running-machine", "pid")


@dataclass(frozen=True)
class VmEntry:
    reply: bytes
    run_key: tuple[Any, ...]
    node: NodeFacts
    facts: VmFacts


@dataclass
class ScanMemo:
    """One cluster's memo: the last committed scan's entries."""

    nodes: dict[str, NodeFacts] = field(default_factory=dict)
    vms: dict[tuple[str, int], VmEntry] = field(default_factory=dict)


@dataclass
class MemoRound:
    """One scan's use of a memo: reads the previous scan, writes this one (then `commit`)."""

    key: tuple[str, str]
    previous: ScanMemo
    current: ScanMemo = field(default_factory=ScanMemo)
    reused: int = 0

    def node(self, name: str, facts: NodeFacts | None) -> NodeFacts | None:
        """`facts`, or the previous scan's equal object (keeps the env's identity)."""
        if facts is None:
            return None
        old = self.previous.nodes.get(name)
        kept = old if old is not None and old == facts else facts
        self.current.nodes[name] = kept
        return kept

    def lookup(self, node: str, vmid: int) -> VmEntry | None:
        return self.previous.vms.get((node, vmid))

    def reuse(self, node: str, vmid: int, entry: VmEntry) -> VmFacts:
        self.current.vms[node, vmid] = entry
        self.reused += 1
        return entry.facts

    def keep(self, node: str, vmid: int, entry: VmEntry) -> None:
        self.current.vms[node, vmid] = entry

    def commit(self) -> None:
        with _LOCK:
            _MEMOS.pop(self.key, None)
            _MEMOS[self.key] = self.current
            while len(_MEMOS) > MAX_CLUSTERS:
                del _MEMOS[next(iter(_MEMOS))]


def run_key(status: Mapping[str, Any] | None, listed_status: Any) -> tuple[Any, ...]:
    """What a VM's run state depends on, from the node list (or the cluster list's status)."""
    if status is None:
        return ("listed", listed_status)
    return tuple(status.get(k) for k in RUN_KEYS)


_MEMOS: dict[tuple[str, str], ScanMemo] = {}
_LOCK = threading.Lock()


def begin(url: str, user: str) -> MemoRound:
    key = (url, user)
    with _LOCK:
        previous = _MEMOS.get(key) or ScanMemo()
    return MemoRound(key, previous)


def forget() -> None:
    """Drop every memo (tests, benchmarks measuring a first scan)."""
    with _LOCK:
        _MEMOS.clear()
