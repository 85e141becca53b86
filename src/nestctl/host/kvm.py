"""The KVM modules as sysfs shows them: which one provides /dev/kvm, refcount, parameters.

A loadable module has ``/sys/module/<name>/initstate`` and ``refcnt``; a built-in one has only
``parameters``. The vendor module is whatever ``/sys/module/kvm_*`` exists besides the core ``kvm``
(kvm_intel, kvm_amd, or others such as kvm_pvm); it is reported as found, never guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from nestctl.host.values import sysfs_bool, sysfs_int

if TYPE_CHECKING:
    from nestctl.machine import Host

VENDOR_MODULES = {"intel": "kvm_intel", "amd": "kvm_amd"}

#: Parameters that make nested guests slow when off (report only).
PERFORMANCE_PARAMS: dict[str, tuple[str, ...]] = {
    "kvm_intel": ("ept", "enable_shadow_vmcs", "enable_apicv"),
    "kvm_amd": ("npt", "avic"),
}

#: kvm_amd declares `nested` as an int parameter (0/1); kvm_intel as a bool (Y/N).
INT_TYPED_NESTED = frozenset({"kvm_amd"})


class ParamValue(NamedTuple):
    raw: str | None  # the text sysfs shows (stripped), None when missing/unreadable
    value: bool | None  # normalised; None when missing, unreadable or garbage
    status: str  # "ok", "missing", "unreadable", "garbage"


class KvmModule(NamedTuple):
    name: str
    builtin: bool  # no initstate: compiled into the kernel, cannot be reloaded
    initstate: str | None  # "live", "coming", "going"
    refcount: int | None
    holders: tuple[str, ...]
    nested: ParamValue | None  # None: the module has no `nested` parameter at all
    performance: dict[str, ParamValue]


def read_param(host: Host, module: str, param: str) -> ParamValue:
    read = host.read(f"/sys/module/{module}/parameters/{param}")
    if read.text is None:
        status = "missing" if read.status.value == "missing" else "unreadable"
        return ParamValue(None, None, status)
    raw = read.text.strip()
    value = sysfs_bool(raw)
    return ParamValue(raw, value, "ok" if value is not None else "garbage")


def vendor_module_names(host: Host) -> list[str]:
    """Names of loaded (or built-in) kvm_* modules other than the core `kvm`."""
    names = host.listdir("/sys/module").names
    return [n for n in names if n.startswith("kvm_") and host.is_dir(f"/sys/module/{n}")]


def read_module(host: Host, name: str) -> KvmModule:
    base = f"/sys/module/{name}"
    initstate_read = host.read(f"{base}/initstate")
    builtin = initstate_read.status.value == "missing"
    initstate = initstate_read.text.strip() if initstate_read.text is not None else None
    refcount = sysfs_int(host.read_text(f"{base}/refcnt"))
    holders = host.listdir(f"{base}/holders").names
    nested = read_param(host, name, "nested")
    if nested.status == "missing":
        nested_or_none: ParamValue | None = None
    else:
        nested_or_none = nested
    perf: dict[str, ParamValue] = {}
    for param in PERFORMANCE_PARAMS.get(name, ()):
        pv = read_param(host, name, param)
        if pv.status != "missing":
            perf[param] = pv
    return KvmModule(name, builtin, initstate, refcount, holders, nested_or_none, perf)


def listed_builtin(host: Host, release: str | None, name: str) -> bool:
    """Whether modules.builtin of the running kernel lists `name` (a module not yet loaded)."""
    if not release:
        return False
    text = host.read_text(f"/lib/modules/{release}/modules.builtin")
    if text is None:
        return False
    wanted = name.replace("_", "-") + ".ko"
    wanted_us = name + ".ko"
    for line in text.splitlines():
        base = line.strip().rsplit("/", 1)[-1]
        if base in (wanted, wanted_us):
            return True
    return False
