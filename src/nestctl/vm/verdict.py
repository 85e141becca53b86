"""One VM's verdict from its chain, findings and intent: the one function every view calls.

`judge_vm(vm)` takes a VM object as `nestctl vm --json` prints it (``chain``, ``findings``,
``wants_nested``; ``guest`` when read) and answers the same for `doctor`, `vm`, `tree`, the
metrics and every dashboard page, so no two views can disagree about a VM:

* ``not-nested``: the VM does not want nesting (see `nestctl.vm.intent`). Neutral: never red,
  never counted as not ready, the exit code is left alone. Only a problem that stops the VM
  itself (Proxmox refuses its config, QEMU would not start) still makes it not ready.
* ``not-ready``: it wants nesting and cannot have it: the first broken link and its fix.
* ``unknown``: it wants nesting and a link could not be checked (what would check it is said).
* ``ready``: it wants nesting and nothing is wrong. A guest whose own view (through its agent)
  shows vmx/svm usable now is ready even where a link before it could not be read: what the
  guest sees outranks our prediction. Having nothing to host yet is not a fault ("could host an
  L3" is the separate `can_host`).

`all_vms=True` (``--all-vms``) judges every VM as if it wanted nesting ("which of my VMs could
nest?").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

from nestctl.findings import Finding, Severity

VmVerdictWord = Literal["ready", "not-ready", "unknown", "not-nested"]

#: The chain's links, in order (vm/analyse.py `_chain`).
LINKS = ("host", "config", "process", "guest")

#: Finding codes that answer "can this VM nest?": for a VM that does not want nesting they are
#: notes (info), never errors or unknowns. Everything else (the VM cannot start, its config is
#: refused) concerns every VM.
NESTING_PREFIXES = (
    "vm.nested.",
    "vm.host.",
    "vm.guest.",
    "guest.",
    "host.nested.",
    "vm.cpu.host-mixed-cluster",
    "vm.cpu.vendor-mismatch",
    "vm.cpu.nested-virt-abstract-windows",
    # containers (nestctl.ct.rules): what a nested workload needs, not what the CT itself needs
    "ct.docker.",
    "ct.systemd.",
    "ct.kvm.",
    "ct.fuse.",
)
#: Codes that explain each broken link, best first.
LINK_CODES: dict[str, tuple[str, ...]] = {
    "host": ("vm.host.", "host.", "ct.kvm.node-missing"),
    "config": (
        "vm.nested.not-exposed",
        "vm.cpu.",
        "vm.args.",
        "ct.docker.",
        "ct.systemd.",
        "ct.kvm.",
        "ct.fuse.",
    ),
    "process": ("vm.restart-required",),
    "guest": ("vm.nested.not-exposed", "guest.", "vm.guest."),
}
_DEFAULT_WHY = {
    "host": (
        "its node's KVM gives VMs no vmx/svm (nested is off, or the CPU has no hardware "
        "virtualization)",
        "nestctl host enable",
    ),
    "config": ("its config does not give the guest vmx/svm", None),
    "process": ("the running QEMU still has an older -cpu: restart it from Proxmox", None),
    "guest": ("its guest does not see vmx/svm", None),
}
_UNKNOWN_WHY = {
    "host": "whether its node's KVM has nested on could not be read (the node's finding says "
    "what would tell it)",
    "config": "what its config gives the guest could not be told",
    "process": "whether it runs could not be told",
    "guest": "whether its guest sees vmx/svm could not be told",
}


class VmVerdict(NamedTuple):
    """One VM's verdict, in the words every view shows."""

    verdict: VmVerdictWord
    wants_nested: bool | None
    intent: str
    broken_link: str | None  # the first broken link, only when not ready because of it
    message: str | None  # one plain sentence: why not ready / unknown
    fix: str | None
    can_host: bool | None  # could host an L3 now; None when unknown or nesting is not wanted

    @property
    def exit_word(self) -> str:
        """The verdict as the exit code counts it: not-nested counts as ready."""
        return "ready" if self.verdict == "not-nested" else self.verdict


def is_nesting_code(code: str) -> bool:
    return code.startswith(NESTING_PREFIXES)


def _findings(vm: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = vm.get("findings")
    return [f for f in items if isinstance(f, Mapping)] if isinstance(items, list) else []


def _explain(
    link: str | None, findings: list[Mapping[str, Any]], severities: tuple[str, ...]
) -> tuple[str | None, str | None]:
    wanted = LINK_CODES.get(link or "", ())
    pool = [f for f in findings if f.get("severity") in severities]
    ranked = sorted(
        pool,
        key=lambda f: (
            not str(f.get("code", "")).startswith(wanted) if wanted else False,
            f.get("severity") != "error",
            f.get("fix") is None,
        ),
    )
    if ranked and (not wanted or str(ranked[0].get("code", "")).startswith(wanted)):
        return str(ranked[0].get("message")), ranked[0].get("fix")
    if link in _DEFAULT_WHY:
        return _DEFAULT_WHY[link]
    return (str(ranked[0].get("message")), ranked[0].get("fix")) if ranked else (None, None)


def _guest_sees(vm: Mapping[str, Any], chain: Mapping[str, Any]) -> bool:
    """The guest's own view (agent) shows vmx/svm usable now."""
    guest = vm.get("guest")
    return (
        isinstance(guest, Mapping)
        and guest.get("via") == "agent"
        and guest.get("kvm_usable") is True
        and chain.get("guest") == "ok"
    )


def judge_vm(vm: Mapping[str, Any], *, all_vms: bool = False) -> VmVerdict:
    """The verdict of one VM object (see the module docstring). Pure; never raises on odd
    input (a missing key is "unknown")."""
    if "wants_nested" not in vm:
        # An object from a nestctl before intent (an older inner node's report): it judged
        # every VM as if it wanted nesting, so do the same rather than call it unknown.
        all_vms = True
    wants = vm.get("wants_nested")
    wants = wants if isinstance(wants, bool) else None
    intent = str(vm.get("intent") or "none")
    chain = vm.get("chain") if isinstance(vm.get("chain"), Mapping) else {}
    assert isinstance(chain, Mapping)
    findings = _findings(vm)
    codes = {str(f.get("code")) for f in findings}
    general = [
        f
        for f in findings
        if f.get("severity") == "error" and not is_nesting_code(str(f.get("code", "")))
    ]
    broken = next((k for k in LINKS if chain.get(k) == "broken"), None)
    strict = wants is True or all_vms
    unread = not any(isinstance(chain.get(k), str) for k in LINKS)
    if "vm.unreachable" in codes or unread or (wants is None and not all_vms):
        message, fix = _explain(None, findings, ("warning", "error"))
        return VmVerdict("unknown", wants, intent, None, message, fix, None)
    if not strict:
        if general:
            first = general[0]
            link = broken if broken == "config" else None
            return VmVerdict(
                "not-ready", wants, intent, link, str(first.get("message")), first.get("fix"), None
            )
        return VmVerdict("not-nested", wants, intent, None, None, None, None)
    can_host = {"ok": True, "broken": False}.get(str(chain.get("guest")))
    if broken is not None:
        message, fix = _explain(broken, findings, ("error", "warning", "info"))
        return VmVerdict("not-ready", wants, intent, broken, message, fix, False)
    errors = [f for f in findings if f.get("severity") == "error"]
    if errors:
        first = errors[0]
        return VmVerdict(
            "not-ready", wants, intent, None, str(first.get("message")), first.get("fix"), can_host
        )
    if _guest_sees(vm, chain):
        return VmVerdict("ready", wants, intent, None, None, None, True)
    unknown = next((k for k in LINKS if chain.get(k) == "unknown"), None)
    # The guest's own view was asked for and its agent did not answer: the one "could not
    # check" that leaves no mark on the chain (which keeps the prediction).
    failed = [f for f in findings if f.get("code") == "vm.guest.agent-failed"]
    if unknown is None and failed:
        return VmVerdict(
            "unknown", wants, intent, None, str(failed[0].get("message")), failed[0].get("fix"),
            can_host,
        )  # fmt: skip
    if unknown is not None:
        match = [
            f
            for f in findings
            if f.get("severity") == "warning"
            and str(f.get("code", "")).startswith(LINK_CODES[unknown])
        ]
        message = str(match[0].get("message")) if match else _UNKNOWN_WHY[unknown]
        fix = match[0].get("fix") if match else None
        return VmVerdict("unknown", wants, intent, None, message, fix, can_host)
    return VmVerdict("ready", wants, intent, None, None, None, can_host)


def settle(findings: Iterable[Finding], *, strict: bool) -> list[Finding]:
    """A VM's findings as its intent grades them: for a VM that does not want nesting (and
    without --all-vms), "cannot nest" errors and unknowns become notes; nothing else changes."""
    if strict:
        return list(findings)
    out = []
    for f in findings:
        graded = f
        if is_nesting_code(f.code) and (f.severity is not Severity.INFO or f.undetermined):
            graded = f._replace(severity=Severity.INFO, undetermined=False)
        elif f.code == "vm.restart-required" and f.severity is Severity.ERROR:
            # An error only because the restart changes vmx/svm, which this VM does not need.
            graded = f._replace(severity=Severity.WARNING)
        out.append(graded)
    return out


def overall(verdicts: Iterable[VmVerdict | str]) -> str:
    """The worst of several verdicts as the exit code counts them (not-nested is ready)."""
    order = {"ready": 0, "not-nested": 0, "unknown": 1, "not-ready": 2}
    words = [v.exit_word if isinstance(v, VmVerdict) else v for v in verdicts]
    worst = max(words, key=lambda w: order.get(w, 1), default="ready")
    return "ready" if worst == "not-nested" else worst
