"""The nested badge of a guest on the home screen: ONE call site for intent and verdict.

Only guests that want nesting get a badge (a VM that does not want it is "not nested", a neutral
state, not a problem). Intent and verdict come from the engine's one function,
`nestctl.vm.verdict.judge_vm` (through `nestctl.vm.analyse.finish_vm`), stored per VM by
`web.engine`; this module is the only place the dashboard asks.
"""

from __future__ import annotations

from typing import Any


def nested_badge(snap: Any, vmid: int, kind: str = "qemu") -> str | None:
    """The badge's verdict ("ready", "not-ready", "unknown") for a guest that wants nesting;
    None for one that does not ("not-nested"), or before the analysis arrived. `snap` is the
    target's `TargetSnapshot`: a VM's verdict is its tree entry's (`VmView`, judged by
    `judge_vm` and re-judged where an inner target runs in it), a container's the `nestctl ct`
    engine's, through the same `judge_vm`."""
    if snap is None or snap.engine is None:
        return None
    if kind == "lxc":
        verdict = (getattr(snap.engine, "cts", None) or {}).get(vmid, {}).get("verdict")
    else:
        entry = snap.vm(vmid)
        verdict = getattr(entry, "verdict", None)
    if not isinstance(verdict, str) or verdict == "not-nested":
        return None
    return verdict
