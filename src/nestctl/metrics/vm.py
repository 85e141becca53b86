"""Per-VM families: nested configured / exposed, restart pending, config-vs-running mismatch and
the chain of links (host -> config -> process -> guest) as one status enum per link."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from nestctl.metrics.family import Families

#: The states each chain link of `nestctl vm --json` can take (vm/report.py `_chain`), and
#: "not-nested": the link would be broken or unknown, but the VM does not want nesting.
LINK_STATES: dict[str, tuple[str, ...]] = {
    "host": ("ok", "broken", "unknown", "not-nested"),
    "config": ("ok", "broken", "unknown", "not-nested"),
    "process": ("ok", "stale", "broken", "not-running", "not-nested"),
    "guest": ("ok", "broken", "unknown", "not-nested"),
}
#: A VM's verdict (nestctl.vm.verdict.judge_vm).
VM_VERDICTS = ("ready", "not-ready", "unknown", "not-nested")
INTENTS = frozenset({"tag", "inner-layer", "config", "guest", "none"})


def nested_configured(vm: Mapping[str, Any], vendor: object) -> bool | None:
    """Does the config (pending changes included) ask for the flag this node's CPU can give?

    Decided as if `nested` were on: "meant to nest", whatever the host does now. None when the
    config's -cpu or the node's vendor is unknown.
    """
    cpu = vm.get("cpu_arg_pending") or vm.get("cpu_arg")
    if not isinstance(cpu, str) or not isinstance(vendor, str):
        return None
    return _asks_for_flag(cpu, vendor)


@functools.lru_cache(maxsize=4096)
def _asks_for_flag(cpu: str, vendor: str) -> bool | None:
    """Clusters repeat a few -cpu values thousands of times: decide each once."""
    from nestctl.vm.exposure import decide  # noqa: PLC0415 - pure, but only needed here

    return decide(cpu, vendor, True).exposed


def config_mismatch(vm: Mapping[str, Any]) -> bool | None:
    """Running -cpu != the config in force; a stopped VM has nothing to mismatch."""
    running = vm.get("running")
    if running is False:
        return False
    have, want = vm.get("running_cpu_arg"), vm.get("cpu_arg")
    if running is not True or not isinstance(have, str) or not isinstance(want, str):
        return None
    return have != want


def vm_families(fam: Families, vid: str, vm: Mapping[str, Any], vendor: object) -> None:
    """Families of one VM `vid` (``qemu/<vmid>``) whose node could be reached."""
    fam.add("nestctl_up", 1.0, id=vid, layer="vm")
    fam.gauge("nestctl_vm_running", vm.get("running"), vid, id=vid)
    nested = vm.get("nested")
    exposed = nested.get("exposed") if isinstance(nested, Mapping) else None
    fam.gauge("nestctl_vm_nested_configured", nested_configured(vm, vendor), vid, id=vid)
    fam.gauge("nestctl_vm_nested_exposed", exposed, vid, id=vid)
    fam.gauge("nestctl_vm_restart_pending", vm.get("restart_required"), vid, id=vid)
    fam.gauge("nestctl_vm_config_mismatch", config_mismatch(vm), vid, id=vid)
    from nestctl.vm.verdict import judge_vm  # noqa: PLC0415 - the one verdict, as every view

    judged = judge_vm(vm)
    intent = judged.intent if judged.intent in INTENTS else "none"
    if "wants_nested" in vm:  # absent from an older nestctl's report: nothing to export
        fam.gauge("nestctl_vm_wants_nested", judged.wants_nested, vid, id=vid, intent=intent)
    fam.enum("nestctl_vm_verdict", VM_VERDICTS, judged.verdict, id=vid)
    chain = vm.get("chain")
    if not isinstance(chain, Mapping):
        return
    for link, states in LINK_STATES.items():
        state = chain.get(link)
        if judged.verdict == "not-nested" and state in ("broken", "unknown"):
            state = "not-nested"  # a fact, but no fault: nobody wants this VM to nest
        if state in states:
            fam.enum("nestctl_check_status", states, state, id=vid, check=link)
        else:
            fam.failed(vid, f"check_{link}")
