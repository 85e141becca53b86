"""Linux guest probes: what this guest sees, read only through the `Machine` protocol.

The same code runs inside a guest (`Host("/")`), against a fake tree (`Host(tmp_path)`) and from the
host through the QEMU guest agent (`AgentMachine`), so nothing here opens a file or runs a process
itself. Pure helpers (`kvm_access_from_mode`, `detect_accel`, ...) hold the judgement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nestctl.guest.facts import (
    Accel,
    Blocker,
    Evidence,
    GuestFacts,
    KvmAccess,
    LabFacts,
    LinuxFacts,
)
from nestctl.guest.role import probe_role
from nestctl.host.cpuinfo import CpuInfo, parse_cpuinfo
from nestctl.host.values import sysfs_bool
from nestctl.host.virt import dmi_hypervisor
from nestctl.machine import CommandStatus, Listing, Machine, Presence, ReadStatus
from nestctl.parse import parse_uint

#: Platforms (as `dmi_hypervisor` names them) that are QEMU, with KVM or with TCG underneath.
QEMU_FAMILY = frozenset({"QEMU", "KVM", "Bochs"})
#: Clock sources a paravirtual guest is offered; each names its hypervisor for certain.
_PV_CLOCKS = {"kvm-clock": "kvm", "hyperv_clocksource_tsc_page": "other", "xen": "other"}


def _text(machine: Machine, path: str) -> str | None:
    result = machine.read(path, max_bytes=1024 * 1024)
    return result.text if result.ok else None


def _line(machine: Machine, path: str) -> str | None:
    text = _text(machine, path)
    if text is None:
        return None
    value = text.strip().replace("\x00", "")
    return value or None


# -- /dev/kvm access -------------------------------------------------------------------------


def parse_proc_status(text: str) -> tuple[int | None, frozenset[int]]:
    """(real uid, all group ids) of the process whose /proc/<pid>/status this is."""
    uid: int | None = None
    gids: set[int] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields = value.split()
        ids = [parse_uint(f) for f in fields]
        if key == "Uid" and ids and ids[0] is not None:
            uid = ids[1] if len(ids) > 1 and ids[1] is not None else ids[0]
        elif key == "Gid" and ids and ids[0] is not None:
            gids.add(ids[1] if len(ids) > 1 and ids[1] is not None else ids[0])
        elif key == "Groups":
            gids.update(i for i in ids if i is not None)
    return uid, frozenset(gids)


def parse_group_file(text: str) -> dict[str, tuple[int, tuple[str, ...]]]:
    """/etc/group as {name: (gid, members)}; malformed lines are skipped."""
    groups: dict[str, tuple[int, tuple[str, ...]]] = {}
    for line in text.splitlines():
        parts = line.split(":")
        gid = parse_uint(parts[2]) if len(parts) >= 4 else None
        if gid is None:
            continue
        members = tuple(m for m in parts[3].strip().split(",") if m)
        groups.setdefault(parts[0], (gid, members))
    return groups


def user_name(passwd: str | None, uid: int) -> str | None:
    for line in (passwd or "").splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[2] == str(uid):
            return parts[0]
    return None


def kvm_access_from_mode(
    mode: int,
    dev_uid: int,
    dev_gid: int,
    *,
    uid: int,
    gids: Iterable[int],
    group: str | None = None,
) -> KvmAccess:
    """Whether `uid` (with `gids`) may open a device of this mode read-write (ACLs not seen)."""
    gname = group or str(dev_gid)
    if uid == 0:
        return KvmAccess(True, "running as root", gname)
    if uid == dev_uid:
        ok = mode & 0o600 == 0o600
        return KvmAccess(ok, f"owner of /dev/kvm, mode {mode & 0o777:04o}", gname)
    if dev_gid in set(gids):
        ok = mode & 0o060 == 0o060
        return KvmAccess(ok, f"member of group {gname}, mode {mode & 0o777:04o}", gname)
    ok = mode & 0o006 == 0o006
    why = "world read-write" if ok else f"not in group {gname}, mode {mode & 0o777:04o}"
    return KvmAccess(ok, why, gname)


def _dev_kvm_stat(machine: Machine) -> tuple[int, int, int] | None:
    """(mode, uid, gid) of /dev/kvm: from `Host.stat` when the machine has it, else `stat -c`."""
    stat = getattr(machine, "stat", None)
    if callable(stat):
        st: Any = stat("/dev/kvm")
        if st is not None:
            return int(st.st_mode), int(st.st_uid), int(st.st_gid)
        return None
    result = machine.run(["stat", "-L", "-c", "%f %u %g", "/dev/kvm"], timeout=10.0)
    fields = result.stdout.split() if result.ok else []
    try:
        return int(fields[0], 16), int(fields[1]), int(fields[2])
    except (IndexError, ValueError):
        return None


def probe_kvm_access(machine: Machine, dev_kvm: bool | None) -> KvmAccess:
    if dev_kvm is None:
        return KvmAccess(None, "could not check whether /dev/kvm exists")
    if not dev_kvm:
        return KvmAccess(False, "/dev/kvm does not exist")
    status = _text(machine, "/proc/self/status")
    uid, gids = parse_proc_status(status or "")
    groups = parse_group_file(_text(machine, "/etc/group") or "")
    by_gid = {gid: name for name, (gid, _members) in groups.items()}
    user = user_name(_text(machine, "/etc/passwd"), uid) if uid is not None else None
    st = _dev_kvm_stat(machine)
    group = by_gid.get(st[2]) if st else None
    # The kernel's own answer counts ACLs (systemd's uaccess) too; ask it when commands run.
    test = machine.run(["sh", "-c", "test -r /dev/kvm && test -w /dev/kvm"], ok_codes=(0, 1))
    if test.status is CommandStatus.OK and test.rc in (0, 1):
        ok = test.rc == 0
        why = "opened read-write by this user" if ok else "this user may not open it read-write"
        if st is not None and uid is not None:
            mode = kvm_access_from_mode(st[0], st[1], st[2], uid=uid, gids=gids, group=group)
            why += f"; {mode.reason}"
        return KvmAccess(ok, why, group, user)
    if st is None or uid is None:
        return KvmAccess(None, "could not read /dev/kvm's owner or this user's groups", group, user)
    access = kvm_access_from_mode(st[0], st[1], st[2], uid=uid, gids=gids, group=group)
    return KvmAccess(access.usable, access.reason, group, user)


# -- what we run under -----------------------------------------------------------------------


def classify_platform(vendor: str | None, product: str | None, sys_hv: str | None) -> str | None:
    """The virtual platform DMI (or /sys/hypervisor) names, or None for bare metal / unknown."""
    name = dmi_hypervisor(vendor, product)
    if name is None and (sys_hv or "").strip().lower() == "xen":
        return "Xen"
    return name


def detect_accel(
    cpu: CpuInfo | None, platform: str | None, clocksources: tuple[str, ...] | None
) -> tuple[Accel, tuple[Evidence, ...]]:
    """KVM, TCG, another hypervisor or none, and how sure each signal is."""
    ev: list[Evidence] = []
    pv = [c for c in (clocksources or ()) if c in _PV_CLOCKS]
    if pv:
        ev.append(Evidence(f"clock source {pv[0]} offered (paravirtual clock)", "strong"))
        return ("kvm" if _PV_CLOCKS[pv[0]] == "kvm" else "other"), tuple(ev)
    hv_flag = cpu is not None and cpu.hypervisor
    if hv_flag:
        ev.append(Evidence("CPU hypervisor flag set: this is a virtual CPU", "strong"))
    if platform is not None:
        ev.append(Evidence(f"DMI names the platform {platform}", "medium"))
    model = (cpu.model_name or "") if cpu else ""
    if "QEMU Virtual CPU" in model or "QEMU TCG CPU" in model:
        ev.append(
            Evidence(f"CPU model name {model!r} (also seen under KVM with -cpu qemu64)", "weak")
        )
    qemu = platform in QEMU_FAMILY
    if qemu or (hv_flag and platform is None):
        if clocksources is None:
            ev.append(Evidence("clock sources unreadable: KVM and TCG not told apart", "weak"))
            return "unknown", tuple(ev)
        ev.append(Evidence("no kvm-clock: TCG emulation (or KVM with kvmclock disabled)", "medium"))
        return ("tcg" if qemu else "unknown"), tuple(ev)
    if platform is not None:
        return "other", tuple(ev)
    if cpu is None:
        return "unknown", tuple(ev)
    ev.append(Evidence("no hypervisor flag and no virtual DMI vendor: bare metal", "medium"))
    return "none", tuple(ev)


def nesting_level(
    accel: Accel, platform: str | None, hypervisor_flag: bool
) -> tuple[int | None, tuple[Evidence, ...]]:
    """This guest's level as far as the inside can tell: 1 when virtual (deeper is invisible)."""
    if accel == "none":
        return None, (Evidence("not a virtual machine", "medium"),)
    if accel == "unknown" and platform is None and not hypervisor_flag:
        return None, (Evidence("could not tell whether this is a virtual machine", "weak"),)
    return 1, (
        Evidence(
            "runs under a hypervisor; whether that hypervisor is itself a guest cannot be seen "
            "from inside (the host side can tell)",
            "weak",
        ),
    )


# -- KVM module and lab ----------------------------------------------------------------------

_VENDOR_MODULES = ("kvm_intel", "kvm_amd")


class Gaps:
    """The facts a probe could not check, and the first reason why (for one finding)."""

    def __init__(self) -> None:
        self.what: list[str] = []
        self.first: Presence | Listing | None = None

    def note(self, what: str, record: Presence | Listing | None) -> None:
        if record is None:
            return
        if what not in self.what:
            self.what.append(what)
        if self.first is None:
            self.first = record


def _presence(machine: Machine, path: str, listing: Listing) -> Presence:
    """Whether `path` exists: from a listing of its directory when that worked, else asked."""
    parent, _, name = path.rpartition("/")
    if listing.ok and listing.path.rstrip("/") == parent:
        return Presence(path, ReadStatus.OK if name in listing.names else ReadStatus.MISSING)
    return machine.exists(path)


def _kvm_module(
    machine: Machine, modules: Listing
) -> tuple[str | None, bool | None, Presence | Listing | None]:
    """The loaded KVM vendor module, its `nested` value, and what stopped the check (if it was).

    kvm_intel/kvm_amd first (their `nested` parameter, read as a file, proves them loaded even
    where no command runs); another such as kvm_pvm is reported as found, it has no `nested`.
    """
    for module in _VENDOR_MODULES:
        nested = machine.read(f"/sys/module/{module}/parameters/nested", max_bytes=4096)
        if nested.ok:
            return module, sysfs_bool(nested.text), None
    gap: Presence | Listing | None = None
    for module in _VENDOR_MODULES:
        presence = _presence(machine, f"/sys/module/{module}", modules)
        if presence.present:
            return module, None, None
        if presence.present is None:
            gap = presence
    if modules.ok:
        others = [n for n in modules.names if n.startswith("kvm_")]
        return (others[0] if others else None), None, None
    # Both vendor modules checked absent: an unlistable /sys/module hides only exotic ones.
    return None, None, gap


def _any_present(machine: Machine, paths: Iterable[str]) -> tuple[bool | None, Presence | None]:
    """True when one exists, False when all are absent, None (and why) when that is not known."""
    gap: Presence | None = None
    for path in paths:
        presence = machine.exists(path)
        if presence.present:
            return True, None
        if presence.present is None:
            gap = presence if gap is None else gap
    return (None, gap) if gap is not None else (False, None)


def probe_lab(machine: Machine, gaps: Gaps | None = None) -> LabFacts:
    gaps = gaps if gaps is not None else Gaps()
    binaries: set[str] = set()
    unlisted: Listing | None = None
    for directory in ("/usr/bin", "/usr/local/bin"):
        listing = machine.listdir(directory)
        binaries.update(n for n in listing.names if n.startswith("qemu-system-"))
        if not listing.status.known:
            unlisted = listing if unlisted is None else unlisted
    qemu_kvm, qemu_kvm_gap = _any_present(machine, ("/usr/libexec/qemu-kvm",))
    if qemu_kvm:
        binaries.add("qemu-kvm")
    found: tuple[str, ...] | None = tuple(sorted(binaries))
    if not binaries and (unlisted is not None or qemu_kvm_gap is not None):
        found = None  # none seen, but not every place could be looked at
        gaps.note("QEMU binaries", unlisted if unlisted is not None else qemu_kvm_gap)
    daemons = ("/usr/sbin/libvirtd", "/usr/bin/libvirtd", "/usr/sbin/virtqemud")
    installed, gap = _any_present(machine, daemons)
    if installed is None:
        gaps.note("libvirt", gap)
        return LabFacts(found, None, None, "could not check whether libvirt is installed")
    if not installed:
        return LabFacts(found, False, None, "libvirt is not installed")
    result = machine.run(["systemctl", "is-active", "libvirtd"], timeout=10.0, ok_codes=(0, 3, 4))
    words = result.stdout.split()
    if result.status is CommandStatus.OK and words:
        return LabFacts(found, True, words[0], "systemctl is-active libvirtd")
    return LabFacts(found, True, None, f"could not check: {result.describe()}")


# -- the probe -------------------------------------------------------------------------------


def _blocker(machine: Machine, gaps: Gaps) -> Blocker | None:
    """One reason for every fact left unchecked, with what would let nestctl check them."""
    if gaps.first is None:
        return None
    # The agent machine knows when guest-exec is refused or a probe tool is missing.
    known = getattr(machine, "blocker", None)
    if isinstance(known, Blocker):
        return known
    first = gaps.first
    if first.status is ReadStatus.NOT_PERMITTED:
        return Blocker(first.describe(), "run nestctl guest as root")
    return Blocker(first.describe(), "run nestctl guest again; if it persists, see the reason")


def probe_linux(machine: Machine) -> GuestFacts:
    """Everything the Linux rules need, read through `machine`. Never raises on bad content."""
    gaps = Gaps()
    cpuinfo = machine.read("/proc/cpuinfo")
    cpu = parse_cpuinfo(cpuinfo.text) if cpuinfo.ok and cpuinfo.text is not None else None
    problem = None if cpu else f"/proc/cpuinfo: {cpuinfo.error or cpuinfo.status.value}"
    dev = machine.exists("/dev/kvm")
    gaps.note("/dev/kvm", None if dev.known else dev)
    modules = machine.listdir("/sys/module")
    module, nested, module_gap = _kvm_module(machine, modules)
    gaps.note("the KVM module", module_gap)
    core = _presence(machine, "/sys/module/kvm", modules)
    if module is None:  # kvm without a vendor module says the vendor module was refused
        gaps.note("the KVM module", None if core.known else core)
    vendor = _line(machine, "/sys/class/dmi/id/sys_vendor")
    product = _line(machine, "/sys/class/dmi/id/product_name")
    sys_hv = _line(machine, "/sys/hypervisor/type")
    clocks_text = _text(
        machine, "/sys/devices/system/clocksource/clocksource0/available_clocksource"
    )
    clocks = tuple(clocks_text.split()) if clocks_text is not None else None
    platform = classify_platform(vendor, product, sys_hv)
    accel, accel_ev = detect_accel(cpu, platform, clocks)
    level, level_ev = nesting_level(accel, platform, cpu is not None and cpu.hypervisor)
    lab = probe_lab(machine, gaps)
    linux = LinuxFacts(
        cpu=cpu,
        cpuinfo_problem=problem,
        dev_kvm=dev.present,
        access=probe_kvm_access(machine, dev.present),
        kvm_core_loaded=core.present,
        kvm_module=module,
        module_nested=nested,
        dmi_vendor=vendor,
        dmi_product=product,
        sys_hypervisor=sys_hv,
        clocksources=clocks,
        platform=platform,
        accel=accel,
        accel_evidence=accel_ev,
        level=level,
        level_evidence=level_ev,
        lab=lab,
        kvm_module_known=module_gap is None,
        unchecked=tuple(gaps.what),
        blocker=_blocker(machine, gaps),
        role=probe_role(machine),
    )
    return GuestFacts(os="linux", linux=linux)
