"""Predict the QEMU `-cpu` value qemu-server builds for a VM config (reference §2-§3).

`predict_cpu` is pure: the config mapping (`VmConfig.current()` or `.with_pending()`) and a
`CpuEnv` go in, a `CpuPrediction` comes out with the unquoted value or the error Proxmox would die
with, Proxmox's warning texts, the `-machine type=` value and any `-cpu` in `args:` that replaces
Proxmox's own. It follows config_to_command's order, so the first error is the one Proxmox gives.

Long on purpose: it is read against qemu-server's CPUConfig.pm (get_cpu_options and its helpers)
top to bottom, and one file in upstream's order is what makes that comparison possible.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from nestctl.parse import is_ascii_digits
from nestctl.vm.cpumodels import (
    AARCH64_MODELS,
    BUILTIN_MODELS,
    CPUTYPES_32BIT,
    DEPRECATED_ALIASES,
    reported_model_enum,
    x86_vendors,
)
from nestctl.vm.machine_type import (
    Machine,
    VersionGuard,
    assert_valid_machine_property,
    min_version,
    pve_revisions,
    resolve_machine,
    windows_version,
)
from nestctl.vm.model import CpuEnv, CpuPrediction
from nestctl.vm.propstring import (
    CPU_FLAG_ANY,
    HOSTPCI_FORMAT,
    Prop,
    ProxmoxDie,
    cpu_format,
    parse_boolean,
    parse_property_string,
    try_parse,
)

# -- VM-specific flag whitelist, per qemu-server version ----------------------------------------

_WHITELIST_9 = [
    "aes",
    "amd-no-ssb",
    "amd-ssbd",
    "hv-evmcs",
    "hv-tlbflush",
    "ibpb",
    "md-clear",
    "nested-virt",
    "pcid",
    "pdpe1gb",
    "spec-ctrl",
    "ssbd",
    "virt-ssbd",
]
_WHITELIST_9_0 = [f for f in _WHITELIST_9 if f != "nested-virt"]
# 8.x joined the list in its definition order (c2287c17 CPUConfig.pm l.162-175).
_WHITELIST_8 = [
    "pcid",
    "spec-ctrl",
    "ibpb",
    "ssbd",
    "virt-ssbd",
    "amd-ssbd",
    "amd-no-ssb",
    "pdpe1gb",
    "md-clear",
    "hv-tlbflush",
    "hv-evmcs",
    "aes",
]


@dataclass(frozen=True)
class _Whitelist:
    names: tuple[str, ...]
    regex: re.Pattern[str]
    message: str


def _whitelist(names: list[str]) -> _Whitelist:
    # Longest first so that an alternation never stops at a prefix (ssbd vs amd-ssbd is fine,
    # but be safe); Proxmox's own regex is anchored and backtracks to the same answer.
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    one = rf"[+-](?:{alt})"
    return _Whitelist(
        tuple(names),
        re.compile(rf"{one}(?:;{one})*", re.ASCII),
        "VM-specific CPU flags must be a subset of: " + ", ".join(names),
    )


_WL_9 = _whitelist(_WHITELIST_9)
_WL_9_0 = _whitelist(_WHITELIST_9_0)
_WL_8 = _whitelist(_WHITELIST_8)

_FLAG_ANY = re.compile(r"([+-])([a-zA-Z0-9\-_\.]+)", re.ASCII)
_HOSTPCI_KEY = re.compile(r"hostpci\d+", re.ASCII)
_NET_KEY = re.compile(r"net\d+", re.ASCII)
_SCSI_KEY = re.compile(r"scsi(\d+)", re.ASCII)
_DISK_KEY = re.compile(r"(?:ide|sata|scsi|virtio|unused)\d+|efidisk0|tpmstate0", re.ASCII)
_SAFE_ARG = re.compile(r"[A-Za-z0-9_!%+,\-./:@^]+", re.ASCII)
_NEWEST: tuple[int, ...] = (9, 2, 6)


class _Versions:
    """Which qemu-server behaviours apply (reference §2.7); None means the newest we know."""

    def __init__(self, qs: tuple[int, ...] | None) -> None:
        v = qs if qs is not None else _NEWEST
        self.qs = qs
        self.v8 = v < (9,)
        self.whitelist = _WL_8 if self.v8 else (_WL_9 if v >= (9, 0, 27) else _WL_9_0)
        self.guest_phys_bits = v >= (9, 0, 18)
        self.level = v >= (9, 1, 14)
        self.cet = v >= (9, 1, 12)
        self.evmcs_mbec = v >= (9, 2, 0)
        self.aarch64_host_default = v >= (9, 2, 3)
        self.phys_bits_warning = v >= (9, 1, 7)
        self.kvm_off_x86_only = not self.v8
        self.vendors = x86_vendors(qs)
        self.cpu_fmt: Mapping[str, Prop] = cpu_format(
            guest_phys_bits=self.guest_phys_bits,
            level=self.level,
            reported_models=reported_model_enum(qs),
        )


_VERSIONS: dict[tuple[int, ...] | None, _Versions] = {}


def _versions(qs: tuple[int, ...] | None) -> _Versions:
    cached = _VERSIONS.get(qs)
    if cached is None:
        cached = _VERSIONS[qs] = _Versions(qs)
    return cached


# -- flags and their merge (resolve_cpu_flags) ---------------------------------------------------


@dataclass
class _Flag:
    op: str = ""
    reason: str = "unknown origin"
    value: str | None = None


FlagHash = dict[str, _Flag]

_PVE = "set by PVE;"
_HV = "automatic Hyper-V enlightenment for Windows"
_HV7 = _HV + " 7 and higher"


def _show(name: str, flag: _Flag) -> str:
    text = f"'{flag.op}{name}" + (f"={flag.value}" if flag.value is not None else "") + "'"
    return f"{text} ({flag.reason})"


def _truthy(value: str | None) -> bool:
    """Perl truthiness of a scalar string."""
    return bool(value) and value != "0"


class _Nested:
    """Lazy, once-per-call resolution of `nested-virt` from the host's cpuinfo flags."""

    def __init__(self, env: CpuEnv, warnings: list[str]) -> None:
        self.env = env
        self.warnings = warnings
        self.done = False
        self.flag: str | None = None

    def resolve(self) -> str | None:
        if not self.done:
            self.done = True
            flags = self.env.host_flags
            if flags is None or (
                "vmx" in flags and "svm" in flags
            ):  # unknown host flags: assume the vendor's flag (documented)
                self.flag = "svm" if self.env.host_vendor == "AuthenticAMD" else "vmx"
            elif "vmx" in flags or "svm" in flags:
                self.flag = "vmx" if "vmx" in flags else "svm"
            else:
                self.warnings.append(
                    "WARN: ignoring 'nested-virt' CPU flag - unable to resolve from host CPU flags"
                )
        return self.flag


def _resolve_flags(
    hashes: list[FlagHash], nested: _Nested, warnings: list[str], stdout: list[str]
) -> dict[str, _Flag]:
    flags: dict[str, _Flag] = {}
    for table in hashes:
        for key in sorted(table):
            name = key
            if name == "nested-virt":
                target = nested.resolve()
                if target is None:
                    continue
                if target in table:
                    warnings.append(f"warning: CPU flag '{name}' overrides '{target}'")
                else:
                    stdout.append(f"CPU flag '{name}' resolved to '{target}'")
                table[target] = table.pop(name)
                name = target
            flag = table.get(name)
            if flag is None:
                continue
            old = flags.get(name)
            if old is not None:
                if old.op == flag.op and old.value == flag.value:
                    old.reason += f" & {flag.reason}"
                    continue
                warnings.append(
                    f"warning: CPU flag/setting {_show(name, flag)} overwrites {_show(name, old)}"
                )
            flags[name] = flag
    return flags


def _flag_list(text: str | None, reason: str, regex: re.Pattern[str] | None = None) -> FlagHash:
    """parse_cpuflag_list: entries that do not match are silently ignored."""
    out: FlagHash = {}
    if not text:
        return out
    pattern = regex or _FLAG_ANY
    for item in text.split(";"):
        m = pattern.fullmatch(item)
        if m:
            op, name = item[0], item[1:]
            out[name] = _Flag(op, reason)
    return out


# -- the cpu property, validated as a VM-level pve-vm-cpu-conf ------------------------------------


def parse_vm_cpu(text: str, env: CpuEnv) -> dict[str, str]:
    """parse_property_string('pve-vm-cpu-conf') + validate_vm_cpu_conf; raises ProxmoxDie."""
    ver = _versions(env.qemu_server_version)
    cpu = parse_property_string(text, ver.cpu_fmt)
    cputype = cpu.get("cputype")
    if not cputype:
        raise ProxmoxDie("CPU is missing cputype")
    if cputype.startswith("custom-"):
        name = cputype.removeprefix("custom-")
        if name not in env.custom_models:
            raise ProxmoxDie(f"Custom cputype '{name}' not found")
    elif not (
        cputype in ver.vendors
        or cputype in BUILTIN_MODELS
        or (not ver.v8 and cputype in AARCH64_MODELS)
    ):
        raise ProxmoxDie(f"Built-in cputype '{cputype}' is not defined (missing 'custom-' prefix?)")
    flags = cpu.get("flags")
    if flags and not ver.whitelist.regex.fullmatch(flags):
        raise ProxmoxDie(ver.whitelist.message)
    if "reported-model" in cpu:
        raise ProxmoxDie("Property 'reported-model' not allowed in VM-specific CPU config.")
    return cpu


def _custom_model(cputype: str, env: CpuEnv) -> dict[str, str]:
    """get_custom_model: only properties with a true value are copied."""
    entry = env.custom_models.get(cputype.removeprefix("custom-"), {})
    return {k: v for k, v in entry.items() if _truthy(v)}


def _default_cputype(arch: str, kvm: bool, ver: _Versions) -> str:
    if arch == "aarch64":
        if not ver.aarch64_host_default:
            return "cortex-a57"
        return "host" if kvm else "max"
    return "kvm64" if kvm else "qemu64"


def _cpu_bitness(conf: Mapping[str, str], arch: str, env: CpuEnv) -> int:
    cputype = "qemu64"
    if conf.get("cpu"):
        cputype = parse_vm_cpu(conf["cpu"], env)["cputype"]
        if cputype in BUILTIN_MODELS:
            cputype = BUILTIN_MODELS[cputype][0]
        elif cputype.startswith("custom-"):
            cputype = _custom_model(cputype, env).get("reported-model", "kvm64")
    if arch == "x86_64":
        return 32 if cputype in CPUTYPES_32BIT else 64
    if arch == "aarch64":
        return 64
    raise ProxmoxDie(f"unsupported architecture '{arch}'")


# -- building the value --------------------------------------------------------------------------


@dataclass
class _Inputs:
    conf: Mapping[str, str]
    env: CpuEnv
    ver: _Versions
    arch: str
    kvm: bool
    kvm_off: bool
    gpu_passthrough: bool
    winversion: int
    machine: Machine
    guard: VersionGuard


def _pve_flags(cputype: str, i: _Inputs) -> FlagHash:
    x86 = i.arch == "x86_64"
    flags: FlagHash = {}
    if cputype == "kvm64" and x86:
        flags["lahf_lm"] = _Flag("+", f"{_PVE} to support Windows 8.1+")
    if i.conf.get("ostype") == "solaris":
        flags["x2apic"] = _Flag("-", f"{_PVE} incompatible with Solaris")
    if cputype in ("kvm64", "kvm32"):
        flags["sep"] = _Flag("+", f"{_PVE} to support Windows 8+ and improve Windows XP+")
    if cputype.startswith("Opteron"):
        flags["rdtscp"] = _Flag("-", f"{_PVE} broken on AMD Opteron")
    if min_version(i.machine.version, 2, 3) and i.kvm and x86:
        flags["kvm_pv_unhalt"] = _Flag("+", f"{_PVE} to improve Linux guest spinlock performance")
        flags["kvm_pv_eoi"] = _Flag("+", f"{_PVE} to improve Linux guest interrupt performance")
    new_qemu = tuple(i.env.qemu_version[:2]) >= (11, 0)
    if x86 and new_qemu and i.ver.cet and i.winversion >= 11:
        flags["cet-ibt"] = _Flag("-", f"{_PVE} CET is not supported by Windows 11 guests")
        flags["cet-ss"] = _Flag("-", f"{_PVE} CET is not supported by Windows 11 guests")
    if (
        x86
        and new_qemu
        and i.ver.evmcs_mbec
        and cputype == "host"
        and not min_version(i.machine.version, 11, 0)
    ):
        flags["vmx-mbec"] = _Flag(
            "-", f"{_PVE} for backwards compatibility with older kernel and QEMU"
        )
    return flags


def _hyperv_flags(hv_vendor_id: str | None, i: _Inputs) -> FlagHash:
    flags: FlagHash = {}
    win = i.winversion
    if win < 6 or (i.conf.get("bios") == "ovmf" and win < 8):
        return flags
    mv = i.machine.version
    if i.gpu_passthrough or hv_vendor_id is not None:
        reason = (
            "custom hv_vendor_id set"
            if hv_vendor_id is not None
            else "NVIDIA workaround for GPU passthrough"
        )
        flags["hv_vendor_id"] = _Flag("", reason, hv_vendor_id or "proxmox")
    if min_version(mv, 2, 3):
        flags["hv_spinlocks"] = _Flag("", _HV, "0x1fff")
        flags["hv_vapic"] = _Flag("", _HV)
        flags["hv_time"] = _Flag("", _HV)
    else:
        flags["hv_spinlocks"] = _Flag("", _HV, "0xffff")
    if min_version(mv, 2, 6):
        for name in ("hv_reset", "hv_vpindex", "hv_runtime"):
            flags[name] = _Flag("", _HV)
    if win >= 7:
        flags["hv_relaxed"] = _Flag("", _HV7)
        if min_version(mv, 2, 12):
            flags["hv_synic"] = _Flag("", _HV7)
            flags["hv_stimer"] = _Flag("", _HV7)
        if min_version(mv, 3, 1):
            flags["hv_ipi"] = _Flag("", _HV7)
    if i.ver.evmcs_mbec and i.env.host_vendor == "GenuineIntel" and win >= 11 and i.guard(11, 0, 2):
        flags["hv_evmcs"] = _Flag("", _HV + " 11 on Intel")
    return flags


@dataclass
class _Model:
    """The CPU model part of get_cpu_options: what `cpu:` and a custom model resolve to."""

    cputype: str
    cpu: dict[str, str]
    custom: dict[str, str] | None
    builtin_flags: str | None
    hv_vendor_id: str | None
    kvm_off: bool


def _model(i: _Inputs) -> _Model:
    res = _Model(_default_cputype(i.arch, i.kvm, i.ver), {}, None, None, None, i.kvm_off)
    if i.conf.get("cpu"):
        res.cpu = cpu = parse_vm_cpu(i.conf["cpu"], i.env)
        cputype = cpu["cputype"]
        if cputype in BUILTIN_MODELS:
            cputype, res.builtin_flags = BUILTIN_MODELS[cputype]
        elif cputype.startswith("custom-"):
            res.custom = custom = _custom_model(cputype, i.env)
            cputype = custom.get("reported-model", "kvm64")
            if "hidden" in custom:
                res.kvm_off = custom["hidden"] == "1"
            res.hv_vendor_id = custom.get("hv-vendor-id")
        res.cputype = DEPRECATED_ALIASES.get(cputype, cputype)
        if "hidden" in cpu:
            res.kvm_off = cpu["hidden"] == "1"
        if "hv-vendor-id" in cpu:
            res.hv_vendor_id = cpu["hv-vendor-id"]
    if not i.ver.v8:
        known = AARCH64_MODELS if i.arch == "aarch64" else i.ver.vendors.keys()
        if res.cputype not in known or (res.cputype == "host" and i.arch != i.env.host_arch):
            raise ProxmoxDie(
                f"CPU model '{res.cputype}' does not exist for configured vCPU architecture "
                f"'{i.arch}'"
            )
    return res


def _forced_flags(model: _Model, i: _Inputs) -> FlagHash:
    x86 = i.arch == "x86_64"
    forced: FlagHash = {}
    if model.cputype != "host" and i.kvm and x86:
        forced["enforce"] = _Flag("", "error if requested CPU settings not available")
    if model.kvm_off and (x86 or not i.ver.kvm_off_x86_only):
        forced["kvm"] = _Flag("", "hide KVM virtualization from guest", "off")
    vendor = i.ver.vendors.get(model.cputype) if x86 else None
    if vendor and vendor != "default":
        forced["vendor"] = _Flag(value=vendor)
    return forced


def _cpu_options(i: _Inputs, warnings: list[str], stdout: list[str]) -> str:
    """get_cpu_options: the unquoted -cpu value."""
    x86 = i.arch == "x86_64"
    model = _model(i)
    hashes: list[FlagHash] = [
        _pve_flags(model.cputype, i),
        _hyperv_flags(model.hv_vendor_id, i) if i.kvm and x86 else {},
        _flag_list(model.builtin_flags, "set by builtin CPU model"),
        _flag_list(model.custom.get("flags") if model.custom else None, "set by custom CPU model"),
        _flag_list(model.cpu.get("flags"), "manually set for VM"),
        _forced_flags(model, i),
    ]
    flags = _resolve_flags(hashes, _Nested(i.env, warnings), warnings, stdout)
    out = [model.cputype]
    sources = [c for c in (model.custom, model.cpu) if c is not None]
    level = _last_set(sources, "level")
    if level is not None and x86:
        out.append(f"level={level}")
    for name in sorted(flags):
        flag = flags[name]
        out.append(f"{flag.op}{name}" + (f"={flag.value}" if _truthy(flag.value) else ""))
    gpb = _last_set(sources, "guest-phys-bits")
    if gpb is not None:
        out.append(f"guest-phys-bits={gpb}")
    phys = _last_set(sources, "phys-bits")
    if phys is not None:
        out.append("host-phys-bits=true" if phys == "host" else f"phys-bits={phys}")
        if _ovmf_phys_bits_limited(phys, model.cputype, flags, i):
            warnings.append(
                "WARN: OVMF firmware might limit CPU 'phys-bits' to 40 - enable the 'pdpe1gb' "
                "CPU flag to avoid this"
            )
    return ",".join(out)


def _ovmf_phys_bits_limited(phys: str, cputype: str, flags: dict[str, _Flag], i: _Inputs) -> bool:
    pdpe1gb = flags.get("pdpe1gb")
    return (
        i.ver.phys_bits_warning
        and is_ascii_digits(phys)
        and int(phys) > 40
        and i.conf.get("bios") == "ovmf"
        and cputype in ("qemu64", "kvm64")
        and not (pdpe1gb is not None and pdpe1gb.op == "+")
    )


def _last_set(sources: list[dict[str, str]], key: str) -> str | None:
    """The VM value overrides the custom model's; empty and "0" count as unset."""
    value = None
    for src in sources:
        if _truthy(src.get(key)):
            value = src[key]
    return value


def _template_conf(conf: Mapping[str, str]) -> dict[str, str]:
    """config_to_command's reduced config for templates (they only start for backups)."""
    out = {"template": "1", "kvm": "0", "vga": "none"}
    for key in ("scsihw", "bios", "name"):
        if key in conf:
            out[key] = conf[key]
    out.update({k: v for k, v in conf.items() if _DISK_KEY.fullmatch(k)})
    return out


def _gpu_passthrough(conf: Mapping[str, str]) -> bool:
    for key, value in conf.items():
        if _HOSTPCI_KEY.fullmatch(key):
            parsed, _err = try_parse(value, HOSTPCI_FORMAT)
            if parsed and parsed.get("x-vga") == "1":
                return True
    return False


def _build(
    conf: Mapping[str, str], env: CpuEnv, warnings: list[str], stdout: list[str]
) -> tuple[str, str]:
    ver = _versions(env.qemu_server_version)
    if parse_boolean(conf.get("template", "")) == "1":
        conf = _template_conf(conf)
    kvmver = env.qemu_version_text or ".".join(str(p) for p in env.qemu_version)
    if env.qemu_version[0] < 6:
        raise ProxmoxDie(f"Detected old QEMU binary ('{kvmver}', at least 6.0 is required)")
    arch = conf.get("arch") or env.host_arch
    machine = resolve_machine(
        conf,
        arch=arch,
        kvm_version=env.qemu_version,
        kvm_version_text=kvmver,
        qemu_server=env.qemu_server_version,
        nodename=env.nodename,
    )
    warnings.extend(machine.warnings)
    kvm_conf = parse_boolean(conf["kvm"]) if "kvm" in conf else None
    kvm = kvm_conf == "1" if kvm_conf is not None else arch == env.host_arch
    guard = VersionGuard(machine.version, pve_revisions(env.qemu_server_version))
    if conf.get("bios") == "ovmf" and _cpu_bitness(conf, arch, env) == 32:
        raise ProxmoxDie("OVMF (UEFI) BIOS is not supported on 32-bit CPU types")
    gpu = _gpu_passthrough(conf)
    inputs = _Inputs(
        conf, env, ver, arch, kvm, gpu, gpu, windows_version(conf.get("ostype")), machine, guard
    )
    value = _cpu_options(inputs, warnings, stdout)
    # Later guards of config_to_command that raise the printed +pveN (reference §3.1).
    big_scsi = sorted(int(k[4:]) for k in conf if _SCSI_KEY.fullmatch(k) and int(k[4:]) > 13)
    if big_scsi and not guard(4, 1, 2):
        raise ProxmoxDie(
            f"scsi{big_scsi[0]}: machine version 4.1~pve2 or higher is required to use more "
            "than 14 SCSI disks"
        )
    if any(k.startswith("net") and _NET_KEY.fullmatch(k) for k in conf):
        guard(10, 0, 1)
    mtype = machine.conf.get("type")
    if not ((mtype and mtype.startswith("virt")) or (not mtype and arch == "aarch64")):
        guard(9, 2, 1)  # S3/S4 power state defaults
    assert_valid_machine_property(machine.conf)
    return value, machine.printed(guard.required_pve)


def args_cpu(args: str | None) -> str | None:
    """The last `-cpu` in an `args:` line (QEMU uses the last one), split as shellwords."""
    if not args:
        return None
    try:
        words = shlex.split(args)
    except ValueError:  # Text::ParseWords gives nothing for unbalanced quotes
        return None
    found = None
    for idx, word in enumerate(words[:-1]):
        if word in ("-cpu", "--cpu"):
            found = words[idx + 1]
    return found


#: Keys the prediction reads; for net/scsi only the key matters, not the value.
_RELEVANT = re.compile(
    r"cpu|ostype|machine|meta|bios|arch|kvm|template|args|hostpci\d+|(net|scsi)\d+", re.ASCII
)
_CACHE_MAX = 4096
_cache: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[CpuEnv, CpuPrediction]] = {}


def predict_cpu(conf: Mapping[str, str], env: CpuEnv) -> CpuPrediction:
    """The -cpu value (unquoted) Proxmox builds for `conf` on the host `env` describes.

    Configs that agree on every key the prediction reads share one answer (clusters hold many
    near-identical VMs); the cache is keyed per CpuEnv object.
    """
    items = []
    for k, v in conf.items():
        m = _RELEVANT.fullmatch(k)
        if m:
            items.append((k, "" if m.group(1) else v))
    key = (id(env), tuple(sorted(items)))
    hit = _cache.get(key)
    if hit is not None and hit[0] is env:
        return hit[1]
    pred = _predict(conf, env)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[key] = (env, pred)
    return pred


def _predict(conf: Mapping[str, str], env: CpuEnv) -> CpuPrediction:
    warnings: list[str] = []
    stdout: list[str] = []
    template = parse_boolean(conf.get("template", "")) == "1"
    replaced = None if template else args_cpu(conf.get("args"))
    try:
        value, machine = _build(conf, env, warnings, stdout)
    except ProxmoxDie as exc:
        return CpuPrediction(
            None,
            error=str(exc),
            warnings=tuple(warnings),
            replaced_by_args=replaced,
            stdout=tuple(stdout),
        )
    return CpuPrediction(
        value,
        warnings=tuple(warnings),
        machine=machine,
        replaced_by_args=replaced,
        stdout=tuple(stdout),
    )


def quote_arg(value: str) -> str:
    """String::ShellQuote as in `qm showcmd` / .cmd files (reference §3.5)."""
    if value == "":
        return "''"
    if _SAFE_ARG.fullmatch(value):
        return value
    quoted = "'" + value.replace("'", "'\\''") + "'"
    return quoted.removeprefix("''").removesuffix("''") or "''"


__all__ = ["CPU_FLAG_ANY", "args_cpu", "parse_vm_cpu", "predict_cpu", "quote_arg"]
