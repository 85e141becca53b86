"""Which VMs are meant to nest: the one function every view asks (`decide_intent`).

Most VMs of a real cluster are web servers and databases that will never host a VM; judging them
as if they should (vmx/svm for all) would paint them red and nudge admins to give up live
migration, security and speed for nothing. A VM wants nesting when any of these holds, checked in
this order (the first one names the intent):

* ``tag``: it carries the Proxmox tag ``nested`` (the name is configurable; `vm enable` adds it,
  `vm disable` removes it);
* ``inner-layer``: it hosts an inner layer: a tied inner target (`tree`), or a guest that is
  itself a hypervisor, seen through the agent: a Proxmox VE node (``linux.pve_node``), Linux
  running QEMU/KVM processes (``linux.running_vms``), Hyper-V VMs running;
* ``config``: its config asks explicitly: ``+vmx``/``+svm``/``+nested-virt`` in the `cpu`
  flags, a custom CPU model carrying ``+vmx``/``+svm``, or vmx/svm switched on in ``args``.
  ``cpu: host`` alone is *not* intent: it is widely used for speed;
* ``guest``: its guest has a hypervisor role, read through the agent (`--guest`): Linux with a
  KVM module loaded, Windows with Hyper-V, WSL2, VBS or Docker Desktop enabled.

``wants_nested`` is None only when the VM's config could not be read (nothing to decide from).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

#: The Proxmox tag that marks a VM meant to nest (config file: ``intent_tag = "..."``).
DEFAULT_TAG = "nested"

IntentKind = Literal["tag", "inner-layer", "config", "guest", "none"]

#: Proxmox's tag names (pve-common `pve-tag`), case-insensitive.
_TAG_NAME = re.compile(r"[a-z0-9_][a-z0-9_+.-]*", re.ASCII | re.IGNORECASE)
#: Proxmox separates tags with ';' (also accepts ',' and spaces when parsing).
_TAG_SPLIT = re.compile(r"[;,\s]+", re.ASCII)
#: vmx/svm switched on in `args: -cpu ...` (QEMU: `+vmx`, `vmx=on`; qapi booleans).
_ARGS_ON = re.compile(
    r"(?:^|[,\s])(?:\+(?:vmx|svm)|(?:vmx|svm)=(?:on|yes|true|y))(?=$|[,\s])", re.ASCII
)
_VIRT_FLAGS = frozenset({"+vmx", "+svm", "+nested-virt"})


class Intent(NamedTuple):
    """Whether a VM wants nesting, which signal said so, and that signal in words."""

    wants_nested: bool | None
    intent: IntentKind
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"wants_nested": self.wants_nested, "intent": self.intent}


UNREAD = Intent(None, "none", "its config could not be read")
NONE = Intent(False, "none", "nothing asks for nesting (no tag, no vmx/svm flag, no hypervisor)")


def valid_tag(name: str) -> bool:
    return _TAG_NAME.fullmatch(name) is not None


def vm_tags(conf: Mapping[str, str]) -> list[str]:
    """A config's `tags:` value as Proxmox reads it (lower-case, separators ; , or space)."""
    return [t for t in _TAG_SPLIT.split(conf.get("tags", "").strip().lower()) if t]


def _cpu_flags(cpu: str) -> tuple[str, list[str]]:
    """`cpu:` -> (model, flags): `[cputype=]<model>,flags=+a;-b,...`."""
    model, flags = "", []
    for i, part in enumerate(cpu.split(",")):
        key, eq, value = part.partition("=")
        if not eq and i == 0:
            model = key.strip()
        elif key.strip() == "cputype":
            model = value.strip()
        elif key.strip() == "flags":
            flags += [f.strip().lower() for f in value.split(";") if f.strip()]
    return model, flags


def config_asks(
    conf: Mapping[str, str], custom_models: Mapping[str, Mapping[str, str]] | None = None
) -> str | None:
    """What in the config asks for nesting explicitly, in words, or None."""
    model, flags = _cpu_flags(conf.get("cpu", ""))
    asked = [f for f in flags if f in _VIRT_FLAGS]
    if asked:
        return f"its cpu flags ask for it ({asked[0]})"
    if model.startswith("custom-") and custom_models is not None:
        custom = custom_models.get(model.removeprefix("custom-"), {})
        _m, model_flags = _cpu_flags("x,flags=" + custom.get("flags", ""))
        if any(f in _VIRT_FLAGS for f in model_flags):
            return f"its custom CPU model {model} carries vmx/svm"
    args = conf.get("args", "")
    if "-cpu" in args and _ARGS_ON.search(args.lower()):
        return "its args switch vmx/svm on"
    return None


def guest_role(guest: Mapping[str, Any] | None) -> tuple[IntentKind, str] | None:
    """A hypervisor role seen in the guest's own view (the `guest` object of `vm --guest`)."""
    if not isinstance(guest, Mapping):
        return None
    windows = guest.get("windows")
    if isinstance(windows, Mapping):
        running = windows.get("running_vms")
        if isinstance(running, list) and running:
            return "inner-layer", f"its guest runs {len(running)} Hyper-V VM(s)"
        verdicts = windows.get("verdicts")
        if isinstance(verdicts, Mapping):
            for key, label in (
                ("hyperv", "Hyper-V"),
                ("wsl2", "WSL2"),
                ("docker_desktop", "Docker Desktop"),
            ):
                v = verdicts.get(key)
                if isinstance(v, Mapping) and v.get("status") in ("ready", "not-ready"):
                    return "guest", f"its guest has {label} enabled"
        if str(windows.get("hypervisorlaunchtype") or "").lower() == "auto":
            return "guest", "its guest starts the Windows hypervisor (VBS / Hyper-V)"
    linux = guest.get("linux")
    if isinstance(linux, Mapping) and linux.get("pve_node") is True:
        return "inner-layer", "its guest is a Proxmox VE node"
    running_vms = linux.get("running_vms") if isinstance(linux, Mapping) else None
    if isinstance(running_vms, list) and running_vms:
        return "inner-layer", f"its guest runs {len(running_vms)} VM(s) of its own (QEMU/KVM)"
    if isinstance(linux, Mapping) and linux.get("kvm_module") in ("kvm_intel", "kvm_amd"):
        return "guest", f"its guest has {linux['kvm_module']} loaded (a KVM host)"
    return None


def decide_intent(
    conf: Mapping[str, str] | None,
    *,
    tag: str = DEFAULT_TAG,
    hosts_inner: bool = False,
    guest: Mapping[str, Any] | None = None,
    custom_models: Mapping[str, Mapping[str, str]] | None = None,
) -> Intent:
    """Does this VM want nesting, and which signal says so (see the module docstring).

    `conf`: the VM's config (pending changes applied), None when it could not be read;
    `hosts_inner`: a tied inner target runs in it; `guest`: its guest's own view, if read.
    """
    if conf is None:
        return UNREAD._replace(intent="inner-layer", wants_nested=True) if hosts_inner else UNREAD
    if tag.lower() in vm_tags(conf):
        return Intent(True, "tag", f"it carries the tag {tag.lower()}")
    if hosts_inner:
        return Intent(True, "inner-layer", "an inner layer of the lab runs in it")
    role = guest_role(guest)
    if role is not None and role[0] == "inner-layer":
        return Intent(True, "inner-layer", role[1])
    asked = config_asks(conf, custom_models)
    if asked is not None:
        return Intent(True, "config", asked)
    if role is not None:
        return Intent(True, role[0], role[1])
    return NONE
