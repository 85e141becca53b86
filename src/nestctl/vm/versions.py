"""Installed Proxmox package versions (dpkg status database) and the CpuEnv built from them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nestctl.parse import cpuid_vendor, parse_uint
from nestctl.vm.model import CpuEnv

if TYPE_CHECKING:
    from collections.abc import Mapping

    from nestctl.host.cpuinfo import CpuInfo
    from nestctl.machine import Host

DPKG_STATUS = "/var/lib/dpkg/status"
PACKAGES = ("qemu-server", "pve-manager", "pve-qemu-kvm")

_NUMBERS = re.compile(r"\d+", re.ASCII)
_DIGITS = re.compile(r"\d*", re.ASCII)
_NON_DIGITS = re.compile(r"\D*", re.ASCII)


@dataclass(frozen=True)
class PackageVersions:
    """Parsed upstream version numbers (e.g. (9, 2, 6)) and the raw Debian version strings."""

    qemu_server: tuple[int, ...] | None = None
    pve_manager: tuple[int, ...] | None = None
    pve_qemu_kvm: tuple[int, ...] | None = None
    raw: dict[str, str] = field(default_factory=dict)  # package -> Debian version
    problems: tuple[str, ...] = ()

    @property
    def qemu_server_raw(self) -> str | None:
        return self.raw.get("qemu-server")

    @property
    def pve_manager_raw(self) -> str | None:
        return self.raw.get("pve-manager")

    @property
    def pve_qemu_kvm_raw(self) -> str | None:
        return self.raw.get("pve-qemu-kvm")


def upstream_tuple(version: str) -> tuple[int, ...] | None:
    """ "1:9.2.0-5" -> (9, 2, 0): numbers of the upstream part (no epoch, no revision)."""
    upstream = version.split(":", 1)[-1]
    if "-" in upstream:
        upstream = upstream.rsplit("-", 1)[0]
    m = re.match(r"\d+(?:\.\d+)*", upstream, re.ASCII)
    if not m:
        return None
    return tuple(int(p) for p in m.group(0).split("."))


def _order(ch: str) -> int:
    if ch == "~":
        return -1
    if ch.isalpha():
        return ord(ch)
    return ord(ch) + 256


def _cmp_part(a: str, b: str) -> int:
    """dpkg's verrevcmp for one upstream or revision part."""
    while a or b:
        na = _NON_DIGITS.match(a).group(0)  # type: ignore[union-attr]
        nb = _NON_DIGITS.match(b).group(0)  # type: ignore[union-attr]
        for i in range(max(len(na), len(nb))):
            oa = _order(na[i]) if i < len(na) else 0
            ob = _order(nb[i]) if i < len(nb) else 0
            if oa != ob:
                return -1 if oa < ob else 1
        a, b = a[len(na) :], b[len(nb) :]
        da = _DIGITS.match(a).group(0)  # type: ignore[union-attr]
        db = _DIGITS.match(b).group(0)  # type: ignore[union-attr]
        ia, ib = int(da or 0), int(db or 0)
        if ia != ib:
            return -1 if ia < ib else 1
        a, b = a[len(da) :], b[len(db) :]
    return 0


def compare_versions(a: str, b: str) -> int:
    """Debian version comparison (epoch:upstream-revision): -1, 0 or 1."""

    def split(v: str) -> tuple[int, str, str]:
        epoch = 0
        if ":" in v:
            e, v = v.split(":", 1)
            epoch = parse_uint(e) or 0
        up, _, rev = v.rpartition("-") if "-" in v else (v, "", "")
        return epoch, up, rev

    ea, ua, ra = split(a.strip())
    eb, ub, rb = split(b.strip())
    if ea != eb:
        return -1 if ea < eb else 1
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)


def parse_dpkg_status(text: str) -> dict[str, str]:
    """{package: version} of installed packages; tolerant of garbage and continuation lines."""
    out: dict[str, str] = {}
    fields: dict[str, str] = {}

    def flush() -> None:
        pkg, ver, status = fields.get("package"), fields.get("version"), fields.get("status", "")
        if pkg and ver and status.split()[-1:] == ["installed"]:
            out[pkg] = ver
        fields.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        if line[0].isspace():
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    flush()
    return out


def read_versions(host: Host) -> PackageVersions:
    """Installed qemu-server, pve-manager and pve-qemu-kvm from the dpkg status database."""
    read = host.read(DPKG_STATUS)
    if read.text is None:
        problem = () if read.status.value == "missing" else (f"{DPKG_STATUS}: {read.error}",)
        return PackageVersions(problems=problem)
    return package_versions(parse_dpkg_status(read.text))


def package_versions(installed: Mapping[str, str]) -> PackageVersions:
    """The versions that matter from package -> Debian version (dpkg, or the API's apt list)."""
    raw = {p: installed[p] for p in PACKAGES if p in installed}

    def ver(pkg: str) -> tuple[int, ...] | None:
        return upstream_tuple(raw[pkg]) if pkg in raw else None

    return PackageVersions(ver("qemu-server"), ver("pve-manager"), ver("pve-qemu-kvm"), raw)


def parse_version_arg(text: str) -> tuple[int, ...] | None:
    """A user-given version like "9.2" or "11.0.2" (for --qemu-version / --pve-version)."""
    nums = _NUMBERS.findall(text)
    if not nums or not re.fullmatch(r"\d+(\.\d+)*", text.strip(), re.ASCII):
        return None
    return tuple(int(n) for n in nums)


def qemu_server_for_pve(pve: tuple[int, ...]) -> tuple[int, ...] | None:
    """The qemu-server behaviour a PVE release line ships (approximate, reference §2.7).

    PVE 8.x -> 8.3.13 (last 8.x); 9.0 -> 9.0.26 (guest-phys-bits, no nested-virt); 9.1 -> 9.1.15;
    9.2 and later -> None (the newest modelled, 9.2.6).
    """
    if pve < (9,):
        return (8, 3, 13)
    if pve < (9, 1):
        return (9, 0, 26)
    if pve < (9, 2):
        return (9, 1, 15)
    return None


def cpu_env_for(
    *,
    versions: PackageVersions | None = None,
    cpuinfo: CpuInfo | None = None,
    custom_models: Mapping[str, dict[str, str]] | None = None,
    qemu_version: tuple[int, ...] | None = None,
    pve_version: tuple[int, ...] | None = None,
    host_arch: str = "x86_64",
    nodename: str = "localhost",
) -> CpuEnv:
    """CpuEnv from installed versions and the host's cpuinfo; explicit versions override.

    `qemu_version` overrides pve-qemu-kvm; `pve_version` overrides qemu-server through
    `qemu_server_for_pve`. Without any version the newest modelled behaviour applies.
    """
    qv = qemu_version or (versions.pve_qemu_kvm if versions else None) or (11, 0, 0)
    qemu3 = (*qv, 0, 0, 0)[:3]
    if pve_version is not None:
        qs = qemu_server_for_pve(pve_version)
    else:
        qs = versions.qemu_server if versions else None
    vendor = "GenuineIntel"
    flags: frozenset[str] | None = None
    if cpuinfo is not None:
        vendor = cpuid_vendor(cpuinfo.vendor) or cpuinfo.vendor_id or vendor
        flags = cpuinfo.flags
    return CpuEnv(
        host_vendor=vendor,
        host_flags=flags,
        host_arch=host_arch,
        qemu_version=(qemu3[0], qemu3[1], qemu3[2]),
        qemu_server_version=qs,
        custom_models=dict(custom_models or {}),
        nodename=nodename,
    )


def cpu_env_from_host(
    host: Host,
    *,
    qemu_version: tuple[int, ...] | None = None,
    pve_version: tuple[int, ...] | None = None,
) -> tuple[CpuEnv, PackageVersions, list[str]]:
    """Everything -cpu prediction needs from one host: versions, cpuinfo, custom models, node.

    Returns the env, the versions read and problems (unreadable files, bad custom models).
    """
    from nestctl.host.cpuinfo import parse_cpuinfo  # noqa: PLC0415 - keep start-up lean
    from nestctl.vm.config import local_node  # noqa: PLC0415
    from nestctl.vm.cpumodels import load_custom_models  # noqa: PLC0415

    versions = read_versions(host)
    problems = list(versions.problems)
    text = host.read_text("/proc/cpuinfo")
    info = parse_cpuinfo(text) if text else None
    if info is None:
        problems.append("/proc/cpuinfo: unreadable; nested-virt is resolved from the CPU vendor")
    arch = "aarch64" if text and "CPU implementer" in text and "vendor_id" not in text else "x86_64"
    models, model_problems = load_custom_models(host)
    problems.extend(model_problems)
    env = cpu_env_for(
        versions=versions,
        cpuinfo=info,
        custom_models=models,
        qemu_version=qemu_version,
        pve_version=pve_version,
        host_arch=arch,
        nodename=local_node(host) or "localhost",
    )
    return env, versions, problems
