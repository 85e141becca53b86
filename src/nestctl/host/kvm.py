"""The KVM modules as sysfs shows them: which one provides /dev/kvm, refcount, parameters.

A loadable module has ``/sys/module/<name>/initstate`` and ``refcnt`` and is listed in
/proc/modules; a built-in one has only ``parameters`` and is listed in the kernel's
``modules.builtin``. "Built in" is decided from all of these, and is unknown when they disagree or
too few can be read (a collected snapshot often lacks ``initstate``): a wrong "built in" sends the
admin to the kernel command line. The vendor module is whatever ``/sys/module/kvm_*`` exists besides
the core ``kvm`` (kvm_intel, kvm_amd, or others such as kvm_pvm); it is reported as found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from nestctl.host.values import sysfs_bool, sysfs_int
from nestctl.machine import ReadStatus

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
    builtin: bool | None  # compiled into the kernel (cannot be reloaded); None: evidence disagrees
    initstate: str | None  # "live", "coming", "going"
    refcount: int | None
    holders: tuple[str, ...]
    nested: ParamValue | None  # None: the module has no `nested` parameter at all
    performance: dict[str, ParamValue]
    builtin_evidence: str = ""  # what decided `builtin` (or how the evidence disagrees)


def read_param(host: Host, module: str, param: str) -> ParamValue:
    read = host.read(f"/sys/module/{module}/parameters/{param}")
    if read.text is None:
        status = "missing" if read.status.value == "missing" else "unreadable"
        return ParamValue(None, None, status)
    raw = read.text.strip()
    value = sysfs_bool(raw)
    return ParamValue(raw, value, "ok" if value is not None else "garbage")


def vendor_module_names(host: Host) -> list[str] | None:
    """Names of loaded (or built-in) kvm_* modules other than the core `kvm`; None: unknown."""
    listing = host.listdir("/sys/module")
    if listing.status is ReadStatus.MISSING:
        return []
    if not listing.ok:
        return None
    return [n for n in listing.names if n.startswith("kvm_") and host.is_dir(f"/sys/module/{n}")]


def loaded_modules(host: Host) -> frozenset[str] | None:
    """Module names /proc/modules lists (loadable modules now loaded); None when unreadable."""
    read = host.read("/proc/modules")
    if read.status is ReadStatus.MISSING and host.live:
        return frozenset()  # a running kernel without module support: nothing is loadable
    if not read.ok or read.text is None:
        return None
    return frozenset(line.split(" ", 1)[0] for line in read.text.splitlines() if line)


def decide_builtin(
    initstate: ReadStatus,
    refcnt: ReadStatus,
    in_proc_modules: bool | None,
    in_builtin_list: bool | None,
) -> tuple[bool | None, str]:
    """Whether a module sysfs shows is built in, from every sign; None when they disagree.

    Signs of a loadable module: `initstate`, `refcnt`, a /proc/modules line. Signs of a built-in
    one: a modules.builtin line, and neither file nor line. A missing file alone decides nothing.
    """
    loadable = [
        what
        for what, sign in (
            ("initstate exists", initstate is ReadStatus.OK),
            ("refcnt exists", refcnt is ReadStatus.OK),
            ("/proc/modules lists it", in_proc_modules is True),
        )
        if sign
    ]
    no_files = initstate is ReadStatus.MISSING and refcnt is ReadStatus.MISSING
    if loadable:
        if in_builtin_list:
            return None, f"evidence disagrees: {', '.join(loadable)}, but modules.builtin lists it"
        return False, ", ".join(loadable)
    if no_files and in_proc_modules is False:
        if in_builtin_list is False:
            return None, (
                "evidence disagrees: no initstate/refcnt and not in /proc/modules, but "
                "modules.builtin does not list it"
            )
        return True, "no initstate/refcnt and not in /proc/modules"
    if no_files and in_builtin_list:
        return True, "no initstate/refcnt and modules.builtin lists it"
    return None, "too little evidence: " + ", ".join(
        [
            f"initstate {initstate.value}",
            f"refcnt {refcnt.value}",
            "/proc/modules "
            + {None: "not read", False: "does not list it"}.get(in_proc_modules, "lists it"),
            "modules.builtin "
            + {None: "not read", False: "does not list it"}.get(in_builtin_list, "lists it"),
        ]
    )


def read_module(
    host: Host,
    name: str,
    *,
    release: str | None = None,
    proc_modules: frozenset[str] | None = None,
) -> KvmModule:
    base = f"/sys/module/{name}"
    initstate_read = host.read(f"{base}/initstate")
    initstate = initstate_read.text.strip() if initstate_read.ok and initstate_read.text else None
    refcnt_read = host.read(f"{base}/refcnt")
    refcount = sysfs_int(refcnt_read.text) if refcnt_read.ok else None
    in_proc = None if proc_modules is None else name in proc_modules
    listed = listed_builtin(host, release, name)
    builtin, evidence = decide_builtin(initstate_read.status, refcnt_read.status, in_proc, listed)
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
    return KvmModule(name, builtin, initstate, refcount, holders, nested_or_none, perf, evidence)


def listed_builtin(host: Host, release: str | None, name: str) -> bool | None:
    """Whether modules.builtin of the running kernel lists `name`; None when it cannot be read."""
    if not release:
        return None
    read = host.read(f"/lib/modules/{release}/modules.builtin")
    if not read.ok or read.text is None:
        return None
    wanted = name.replace("_", "-") + ".ko"
    wanted_us = name + ".ko"
    for line in read.text.splitlines():
        base = line.strip().rsplit("/", 1)[-1]
        if base in (wanted, wanted_us):
            return True
    return False
