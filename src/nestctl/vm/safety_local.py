"""`vm enable --snapshot` on the node: `qm snapshot` first, then `qm set` with the new digest.

Our own snapshot rewrites the config file (a section, `parent:`), so the digest the plan was
made with no longer matches: the config is read again, and only when nothing but the snapshot
changed it does `qm set` go on, with the new digest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nestctl.findings import Finding, error, info
from nestctl.vm.safety import SafetySnapshot, qm_argv, rollback_hint

if TYPE_CHECKING:  # vm.enable calls this module: it takes vmid and profile, not EnableOptions
    from nestctl.machine import Host
    from nestctl.vm.model import VmConfig

_SNAPSHOT_KEYS = {"parent", "lock"}


def take_local(
    host: Host,
    cfg: VmConfig,
    safety: SafetySnapshot,
    *,
    vmid: int,
    profile: str,
    commands: list[tuple[str, ...]],
    payload: dict[str, Any],
) -> tuple[list[Finding], list[tuple[str, ...]]]:
    """(findings, the commands to run now); no commands when the change must not go on."""
    from nestctl.vm.config import load_vm_configs  # noqa: PLC0415

    backup = f"nestctl backup now {vmid} --storage STORAGE"
    if safety.supported is False:
        payload["blocked"] = f"no snapshot possible: {safety.why}"
        return [
            error(
                "vm.enable.no-snapshot",
                f"VM {vmid}: not changed: no snapshot possible: {safety.why}",
                f"back it up first ({backup}), then run again without --snapshot",
            )
        ], []
    argv = qm_argv(vmid, safety, profile)
    res = host.run(argv, timeout=900.0)
    payload["snapshot"] = {**safety.to_json(), "argv": list(argv), "status": res.status.value}
    if res.status.value == "recorded":  # a test's recorded run: nothing to read back
        payload["snapshot"]["taken"] = True
        return [info("vm.enable.recorded", f"{' '.join(argv)}: recorded, not run")], commands
    if not res.ok:
        payload["blocked"] = f"the snapshot {safety.name} could not be taken"
        return [
            error(
                "vm.enable.snapshot-failed",
                f"VM {vmid}: not changed: the snapshot {safety.name} could not be taken: "
                f"{res.describe()}",
                f"fix the cause, or back it up first ({backup}) and run again without --snapshot",
            )
        ], []
    payload["snapshot"]["taken"] = True
    fresh = [c for c in load_vm_configs(host, vmids=[vmid]) if c.readable]
    same = bool(fresh) and {k: v for k, v in fresh[0].main.items() if k not in _SNAPSHOT_KEYS} == {
        k: v for k, v in cfg.main.items() if k not in _SNAPSHOT_KEYS
    }
    if not same:
        payload["blocked"] = "the config changed since nestctl checked it"
        return [
            error(
                "vm.enable.conflict",
                f"VM {vmid}: not changed: the config changed since nestctl checked it; "
                f"the snapshot {safety.name} was taken.",
                "run nestctl vm enable again to plan on the new config",
            )
        ], []
    new = fresh[0].digest
    out = []
    for c in commands:
        parts = list(c)
        if "--digest" in parts:
            parts[parts.index("--digest") + 1] = new
        out.append(tuple(parts))
    payload["commands"] = [list(c) for c in out]
    said = info(
        "vm.enable.snapshot",
        f"VM {vmid}: snapshot {safety.name} taken first.",
        rollback_hint(vmid, safety.name),
    )
    return [said], out
