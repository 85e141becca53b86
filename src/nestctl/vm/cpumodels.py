"""CPU model tables (qemu-server CPUConfig.pm) and the custom models in cpu-models.conf.

Tables are built once at import: per qemu-server generation (8.x, 9.x) the built-in x86_64 models
with their vendor, the abstract x86-64-vN models, the deprecated aliases and the 32-bit types.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nestctl.vm.propstring import check_value, cpu_format, parse_boolean

if TYPE_CHECKING:
    from nestctl.machine import Host

CPU_MODELS_PATH = "/etc/pve/virtual-guest/cpu-models.conf"

_INTEL_COMMON = [
    "486",
    "pentium",
    "pentium2",
    "pentium3",
    "coreduo",
    "core2duo",
    "Conroe",
    "Penryn",
    "Nehalem",
    "Nehalem-IBRS",
    "Westmere",
    "Westmere-IBRS",
    "SandyBridge",
    "SandyBridge-IBRS",
    "IvyBridge",
    "IvyBridge-IBRS",
    "Haswell",
    "Haswell-IBRS",
    "Haswell-noTSX",
    "Haswell-noTSX-IBRS",
    "Broadwell",
    "Broadwell-IBRS",
    "Broadwell-noTSX",
    "Broadwell-noTSX-IBRS",
    "Skylake-Client",
    "Skylake-Client-IBRS",
    "Skylake-Client-noTSX-IBRS",
    "Skylake-Client-v4",
    "Skylake-Server",
    "Skylake-Server-IBRS",
    "Skylake-Server-noTSX-IBRS",
    "Skylake-Server-v4",
    "Skylake-Server-v5",
    "Cascadelake-Server",
    "Cascadelake-Server-v2",
    "Cascadelake-Server-noTSX",
    "Cascadelake-Server-v4",
    "Cascadelake-Server-v5",
    "Cooperlake",
    "Cooperlake-v2",
    "KnightsMill",
    "Icelake-Client",
    "Icelake-Client-noTSX",
    "Icelake-Server",
    "Icelake-Server-noTSX",
    "Icelake-Server-v3",
    "Icelake-Server-v4",
    "Icelake-Server-v5",
    "Icelake-Server-v6",
    "SapphireRapids",
    "SapphireRapids-v2",
    "GraniteRapids",
]
_INTEL_9 = [
    "Icelake-Server-v7",
    "SapphireRapids-v3",
    "SapphireRapids-v4",
    "GraniteRapids-v2",
    "GraniteRapids-v3",
    "SierraForest",
    "SierraForest-v2",
    "SierraForest-v3",
    "ClearwaterForest",
]
_AMD_COMMON = [
    "athlon",
    "phenom",
    "Opteron_G1",
    "Opteron_G2",
    "Opteron_G3",
    "Opteron_G4",
    "Opteron_G5",
    "EPYC",
    "EPYC-IBPB",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-Rome",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Rome-v4",
    "EPYC-Milan",
    "EPYC-Milan-v2",
    "EPYC-Genoa",
]
_AMD_9 = ["EPYC-v5", "EPYC-Rome-v5", "EPYC-Milan-v3", "EPYC-Genoa-v2", "EPYC-Turin"]
#: vendor "default": the host's vendor is used and no `vendor=` is printed.
_GENERIC = ("host", "kvm32", "kvm64", "qemu32", "qemu64", "max")

AARCH64_MODELS = frozenset(
    [
        "a64fx",
        "cortex-a35",
        "cortex-a53",
        "cortex-a55",
        "cortex-a57",
        "cortex-a710",
        "cortex-a72",
        "cortex-a76",
        "neoverse-n1",
        "neoverse-n2",
        "neoverse-v1",
        "max",
        "host",
    ]
)


def _vendor_table(newest: bool) -> dict[str, str]:
    table = dict.fromkeys(_INTEL_COMMON + (_INTEL_9 if newest else []), "GenuineIntel")
    table.update(dict.fromkeys(_AMD_COMMON + (_AMD_9 if newest else []), "AuthenticAMD"))
    table.update(dict.fromkeys(_GENERIC, "default"))
    return table


#: model -> vendor for qemu-server 9.x (HEAD list) and 8.x (shorter list).
X86_VENDORS_9 = _vendor_table(newest=True)
X86_VENDORS_8 = _vendor_table(newest=False)

_V2 = "+popcnt;+pni;+sse4.1;+sse4.2;+ssse3"
_V2_AES = "+aes;" + _V2
_V3 = _V2_AES + ";+avx;+avx2;+bmi1;+bmi2;+f16c;+fma;+abm;+movbe;+xsave"
_V4 = _V3 + ";+avx512f;+avx512bw;+avx512cd;+avx512dq;+avx512vl"
#: abstract built-ins: name -> (reported model, flags)
BUILTIN_MODELS: dict[str, tuple[str, str]] = {
    "x86-64-v2": ("qemu64", _V2),
    "x86-64-v2-AES": ("qemu64", _V2_AES),
    "x86-64-v3": ("qemu64", _V3),
    "x86-64-v4": ("qemu64", _V4),
}

DEPRECATED_ALIASES = {
    "Icelake-Client": "Icelake-Server",
    "Icelake-Client-noTSX": "Icelake-Server-noTSX",
}

CPUTYPES_32BIT = frozenset(
    ("486", "pentium", "pentium2", "pentium3", "coreduo", "athlon", "kvm32", "qemu32")
)


def x86_vendors(qemu_server: tuple[int, ...] | None) -> dict[str, str]:
    return X86_VENDORS_8 if qemu_server is not None and qemu_server[0] < 9 else X86_VENDORS_9


def reported_model_enum(qemu_server: tuple[int, ...] | None) -> tuple[str, ...]:
    """The `reported-model` enum, sorted case-insensitively as CPUConfig.pm does."""
    return tuple(sorted(x86_vendors(qemu_server), key=str.lower))


# -- /etc/pve/virtual-guest/cpu-models.conf (SectionConfig) -----------------------------------

_HEADER = re.compile(r"(\S+):\s*(\S+)\s*", re.ASCII)
_PROPERTY = re.compile(r"\s+(\S+)(?:\s+(.*\S))?\s*", re.ASCII)
_CONFIG_ID = re.compile(r"[a-z][a-z0-9_-]+", re.ASCII | re.IGNORECASE)
_MODEL_FORMAT = dict(cpu_format(reported_models=reported_model_enum(None)))
_MODEL_FORMAT.pop("cputype")


def parse_custom_models(text: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Parse cpu-models.conf: {name (no custom- prefix): {key: value}} and problems.

    Like SectionConfig, a bad property is warned about and dropped, a bad section is skipped.
    """
    models: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    current: dict[str, str] | None = None
    name = ""
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            current = None
            continue
        if line.startswith("#"):
            continue
        if not line[0].isspace():
            current = None
            m = _HEADER.fullmatch(line)
            if not m:
                problems.append(f"cpu-models.conf line {lineno}: unable to parse section header")
                continue
            kind, name = m.group(1), m.group(2)
            if kind != "cpu-model":
                problems.append(f"cpu-models.conf line {lineno}: unknown section type '{kind}'")
                continue
            if not _CONFIG_ID.fullmatch(name):
                problems.append(f"cpu-models.conf line {lineno}: invalid configuration ID '{name}'")
                continue
            if name in models:
                problems.append(f"cpu-models.conf line {lineno}: duplicate model '{name}'")
                continue
            current = models[name] = {}
            continue
        if current is None:
            problems.append(f"cpu-models.conf line {lineno}: property outside a section")
            continue
        m = _PROPERTY.fullmatch(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2) or ""
        problem = _check_model_property(key, value, current)
        if problem:
            problems.append(f"cpu-models.conf model '{name}' line {lineno}: {problem}")
            continue
        current[key] = parse_boolean(value) or value if key == "hidden" else value
    return models, problems


def _check_model_property(key: str, value: str, seen: dict[str, str]) -> str | None:
    if key in seen:
        return f"{key}: duplicate attribute"
    return check_value(key, value, _MODEL_FORMAT)


def load_custom_models(host: Host) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Custom CPU models from the host (none when the file is missing) and problems."""
    read = host.read(CPU_MODELS_PATH)
    if read.text is None:
        if read.status.value == "missing":
            return {}, []
        return {}, [f"{CPU_MODELS_PATH}: {read.error or read.status.value}"]
    return parse_custom_models(read.text)
