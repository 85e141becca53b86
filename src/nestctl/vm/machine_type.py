"""QEMU machine type and machine version, as qemu-server resolves them (Machine.pm).

The machine version gates most -cpu flags (reference §3.1): it is the version pinned in `machine:`,
or for plain `pc`/`q35` the installed QEMU version, except that Windows guests are pinned (to 5.1,
or to `meta: creation-qemu` when that is >= 9.1). `VersionGuard` is config_to_command's
`$version_guard`: a check that also raises the `+pveN` printed in `-machine type=`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from nestctl.vm.propstring import META_FORMAT, ProxmoxDie, machine_format, try_parse

#: (major, minor, pve)
MachineVersion = tuple[int, int, int]

_MACHINE_FMT_9 = machine_format()
_MACHINE_FMT_8 = machine_format(aw_bits=False)

# $PVE_MACHINE_VERSION: highest +pveN per QEMU machine major.minor, by qemu-server generation.
_PVE_REVS_8 = {(4, 1): 2, (9, 2): 1}
_PVE_REVS_9_0 = {**_PVE_REVS_8, (10, 0): 1}
_PVE_REVS_9_2 = {**_PVE_REVS_9_0, (11, 0): 2}

_VERSIONED = re.compile(
    r"(?:pc(?:-i440fx|-q35)?|virt)-(\d+)\.(\d+)(?:\.(\d+))?(?:\+pve(\d+))?(?:\.pxe)?", re.ASCII
)
_HAS_PVE = re.compile(r"\+pve\d+?(?:\.pxe)?$", re.ASCII)
_VERSION_PREFIX = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:\+pve(\d+))?", re.ASCII)
_WIN_N = re.compile(r"win(\d+)", re.ASCII)
_WINVERSIONS = {"wxp": 5, "w2k": 5, "w2k3": 5, "w2k8": 6, "wvista": 6}
_DEFAULT_MACHINE = {"x86_64": "pc", "aarch64": "virt"}


def pve_revisions(qemu_server: tuple[int, ...] | None) -> dict[tuple[int, int], int]:
    if qemu_server is None or qemu_server >= (9, 2):
        return _PVE_REVS_9_2
    return _PVE_REVS_9_0 if qemu_server >= (9,) else _PVE_REVS_8


def machine_fmt(qemu_server: tuple[int, ...] | None) -> Mapping[str, object]:
    return _MACHINE_FMT_8 if qemu_server is not None and qemu_server < (9,) else _MACHINE_FMT_9


def windows_version(ostype: str | None) -> int:
    """Helpers.pm windows_version: 5, 6, N for winN, else 0."""
    if not ostype:
        return 0
    if ostype in _WINVERSIONS:
        return _WINVERSIONS[ostype]
    m = _WIN_N.fullmatch(ostype)
    return int(m.group(1)) if m else 0


def parse_version(text: str | None) -> MachineVersion | None:
    """ "10.0.2", "9.1+pve1" -> (major, minor, pve); None when there is no major.minor prefix."""
    if not text:
        return None
    m = _VERSION_PREFIX.match(text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(4) or 0)


def min_version(have: MachineVersion, major: int, minor: int, pve: int = 0) -> bool:
    return have >= (major, minor, pve)


def fmt_version(ver: MachineVersion) -> str:
    return f"{ver[0]}.{ver[1]}" + (f"+pve{ver[2]}" if ver[2] else "")


@dataclass
class VersionGuard:
    """config_to_command's `$version_guard`: true if the machine is at least major.minor+pve.

    When it fires on exactly that major.minor with a `pve` below the next revision, it raises the
    `+pveN` that `-machine type=` carries (the minimum the features in use need).
    """

    machine_version: MachineVersion
    revisions: Mapping[tuple[int, int], int]
    required_pve: int = 0

    def __call__(self, major: int, minor: int, pve: int = 0) -> bool:
        if not min_version(self.machine_version, major, minor, pve):
            return False
        highest = self.revisions.get((major, minor), 0)
        if min_version(self.machine_version, major, minor, highest + 1):
            return True
        self.required_pve = max(self.required_pve, pve)
        return True


@dataclass
class Machine:
    """A resolved machine: the type string with +pveN, its version, and the parsed option."""

    type: str  # e.g. "pc+pve2", "pc-i440fx-5.1+pve0", ".pxe" stripped
    version: MachineVersion
    conf: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def printed(self, required_pve: int) -> str:
        """The `-machine type=` value: the +pveN replaced by what the features need."""
        return re.sub(r"\+pve\d+$", "", self.type, flags=re.ASCII) + f"+pve{required_pve}"


def _pve_for(revisions: Mapping[tuple[int, int], int], ver: MachineVersion) -> int:
    return revisions.get((ver[0], ver[1]), 0)


def _can_run(
    machine: MachineVersion, kvm: MachineVersion, revs: Mapping[tuple[int, int], int]
) -> bool:
    if (kvm[0], kvm[1]) < (machine[0], machine[1]):
        return False
    return not machine[2] or _pve_for(revs, machine) >= machine[2]


def _windows_pinned(
    machine: str | None, base: str, kvm: MachineVersion, revs: Mapping[tuple[int, int], int]
) -> str:
    pin = base
    base_ver = parse_version(base)
    if base_ver is None or not _can_run(base_ver, kvm, revs):
        pin = f"{kvm[0]}.{kvm[1]}"
        pve = _pve_for(revs, kvm)
        if pve > 0:
            pin += f"+pve{pve}"
    if not machine or machine == "pc":
        return f"pc-i440fx-{pin}"
    if machine == "q35":
        return f"pc-q35-{pin}"
    return f"virt-{pin}"


def _creation_qemu(meta: str | None) -> str | None:
    if not meta:
        return None
    parsed, _err = try_parse(meta, META_FORMAT)
    return parsed.get("creation-qemu") if parsed else None


def _base_machine(
    conf: Mapping[str, str],
    machine: str | None,
    arch: str,
    kvm: MachineVersion,
    revs: Mapping[tuple[int, int], int],
) -> str:
    """get_vm_machine's choice for plain `pc`/`q35`/`virt` or no machine at all."""
    if machine and machine not in ("pc", "q35", "virt"):
        return machine
    if windows_version(conf.get("ostype")):
        base = "5.1"
        creation = _creation_qemu(conf.get("meta"))
        cver = parse_version(creation)
        if creation and cver and min_version(cver, 9, 1):
            m = re.match(r"(\d+.\d+)", creation, re.ASCII)
            base = m.group(1) if m else base
        return _windows_pinned(machine, base, kvm, revs)
    if not machine:
        if arch not in _DEFAULT_MACHINE:
            raise ProxmoxDie(f"unsupported architecture '{arch}'")
        machine = _DEFAULT_MACHINE[arch]
    return machine + f"+pve{_pve_for(revs, kvm)}"


def resolve_machine(
    conf: Mapping[str, str],
    *,
    arch: str,
    kvm_version: tuple[int, int, int],
    kvm_version_text: str | None = None,
    qemu_server: tuple[int, ...] | None = None,
    nodename: str = "localhost",
) -> Machine:
    """get_vm_machine + the version checks of config_to_command; raises ProxmoxDie."""
    revs = pve_revisions(qemu_server)
    kvm: MachineVersion = (kvm_version[0], kvm_version[1], 0)
    kvmver = kvm_version_text or ".".join(str(p) for p in kvm_version)
    mconf: dict[str, str] = {}
    if conf.get("machine"):
        parsed, err = try_parse(conf["machine"], machine_fmt(qemu_server))  # type: ignore[arg-type]
        if err is not None:
            raise ProxmoxDie(err)
        mconf = parsed or {}
    machine = _base_machine(conf, mconf.get("type"), arch, kvm, revs)
    if not _HAS_PVE.search(machine):
        if machine.endswith(".pxe"):
            machine = machine[: -len(".pxe")] + "+pve0.pxe"
        else:
            machine += "+pve0"
    m = _VERSIONED.match(machine)
    if m:
        version: MachineVersion = (int(m.group(1)), int(m.group(2)), int(m.group(4) or 0))
    else:
        version = (kvm[0], kvm[1], _pve_for(revs, kvm))
    warnings: list[str] = []
    micro = re.match(r"\d+\.\d+\.(\d+)", kvmver, re.ASCII)
    if micro and int(micro.group(1)) >= 90:
        warnings.append(
            f"warning: Installed QEMU version ({kvmver}) is a release candidate, "
            "ignoring version checks"
        )
    elif not min_version(kvm, version[0], version[1]):
        raise ProxmoxDie(
            f"Installed QEMU version '{kvmver}' is too old to run machine type '{machine}',"
            f" please upgrade node '{nodename}'"
        )
    elif not _can_run(version, kvm, revs):
        raise ProxmoxDie(
            f"Installed qemu-server (max feature level for {version[0]}.{version[1]} is"
            f" pve{_pve_for(revs, version)}) is too old to run machine type '{machine}',"
            f" please upgrade node '{nodename}'"
        )
    return Machine(machine.removesuffix(".pxe"), version, mconf, warnings)


def assert_valid_machine_property(mconf: Mapping[str, str]) -> None:
    """Machine.pm assert_valid_machine_property (checked at the end of config_to_command)."""
    q35 = "q35" in mconf.get("type", "")
    if mconf.get("viommu") == "intel":
        if not q35:
            raise ProxmoxDie("to use Intel vIOMMU please set the machine type to q35")
        aw = mconf.get("aw-bits")
        if aw and float(aw) not in (39, 48):
            raise ProxmoxDie("Intel vIOMMU supports only 39 or 48 bits as address width")
    if mconf.get("aw-bits") and not mconf.get("viommu"):
        raise ProxmoxDie("cannot set aw-bits if no vIOMMU is configured")
