"""The nested badge of a guest on the home screen: ONE call site for intent and verdict.

Only guests that want nesting get a badge (a VM that does not want it is "not nested", a neutral
state, not a problem). The intent and the verdict are decided by the engine's one function
(issue 18); this module is the only place the dashboard asks, so swapping the decision is one line.
"""

from __future__ import annotations

from typing import Any


def nested_badge(snap: Any, vmid: int, *, hosts_inner: bool = False) -> str | None:
    """ "ready" / "not-ready" / "unknown" for a VM that wants nesting; None for one that does
    not, or before the analysis arrived. `snap` is the target's `TargetSnapshot`."""
    if snap is None or snap.engine is None:
        return None
    entry = snap.vm(vmid)
    if entry is None:
        return None
    verdict = str(entry.verdict)
    if _wants_nested(snap.detail(vmid), verdict, hosts_inner=hosts_inner):
        return verdict
    return None


def _wants_nested(detail: dict[str, Any], verdict: str, *, hosts_inner: bool) -> bool:
    """Until the engine's intent function lands: a VM wants nesting when it runs an inner
    Proxmox, when its analysis found a nesting problem it reports as one (not-ready: errors and
    warnings are only raised for VMs asked about or wanting it), or when its config asks the
    CPU for vmx/svm (the chain's config link is ok and the guest sees it)."""
    if hosts_inner or verdict == "not-ready":
        return True
    chain = detail.get("chain") or {}
    return bool(chain.get("config") == "ok" and chain.get("guest") == "ok")
