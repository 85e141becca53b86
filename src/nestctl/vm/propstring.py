"""Proxmox property strings (`k=v,k=v` with a default key), parsed as pve-common's JSONSchema does.

`parse_property_string` mirrors `PVE::JSONSchema::parse_property_string` + `check_object`: split on
`,`, a bare value goes to the default key, duplicate and unknown keys die, booleans normalise to
"1"/"0", then every value is checked against its schema. Errors carry Proxmox's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nestctl.parse import proxmox_bool

_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_KEY_VALUE = re.compile(r"([^=]+)=(.+)", re.DOTALL)


class ProxmoxDie(Exception):  # noqa: N818 - named for what Proxmox does: `die "..."`
    """Proxmox would die here; `str(err)` is Proxmox's message (without the newline)."""


class PropertyStringError(ProxmoxDie, ValueError):
    """Proxmox would die parsing this property string."""


@dataclass(frozen=True, slots=True)
class Prop:
    """One key of a property-string format (the subset of JSON schema Proxmox uses here)."""

    type: str = "string"  # string | boolean | integer | number
    default_key: bool = False
    pattern: re.Pattern[str] | None = None  # matched against the whole value
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    check: Callable[[str], str | None] | None = None  # a registered format: error text or None
    optional: bool = True


Format = Mapping[str, Prop]


def parse_boolean(value: str) -> str | None:
    """ "1"/"0" as Proxmox's parse_boolean reads it, or None when it is no boolean."""
    truth = proxmox_bool(value)
    return None if truth is None else "1" if truth else "0"


def _num(text: str) -> float:
    return float(text)


def _check_value(prop: Prop, value: str) -> str | None:
    """Proxmox's check_type/check_prop error text for one value, or None."""
    if prop.type == "boolean":
        return None if value in ("0", "1") else "type check ('boolean') failed"
    if prop.type == "integer" and not _INTEGER.fullmatch(value):
        return "type check ('integer') failed"
    if prop.type == "number" and not _NUMBER.fullmatch(value):
        return "type check ('number') failed"
    if prop.type in ("integer", "number"):
        if prop.minimum is not None and _num(value) < prop.minimum:
            return f"value must have a minimum value of {prop.minimum:g}"
        if prop.maximum is not None and _num(value) > prop.maximum:
            return f"value must have a maximum value of {prop.maximum:g}"
        return None
    if prop.max_length is not None and len(value) > prop.max_length:
        return f"value may only be {prop.max_length} characters long"
    if prop.pattern is not None and not prop.pattern.fullmatch(value):
        return "value does not match the regex pattern"
    if prop.enum is not None and value not in prop.enum:
        return f"value '{value}' does not have a value in the enumeration '{', '.join(prop.enum)}'"
    if prop.check is not None:
        return prop.check(value)
    return None


def parse_property_string(text: str, fmt: Format) -> dict[str, str]:
    """Parse `text` against `fmt`; raises PropertyStringError with Proxmox's message."""
    res: dict[str, str] = {}
    default_key = next((k for k, p in fmt.items() if p.default_key), None)
    default_used = False
    for part in text.split(","):
        if not part.strip():
            continue
        m = _KEY_VALUE.fullmatch(part)
        if m:
            key, value = m.group(1), m.group(2)
            if key in res:
                raise PropertyStringError(f"duplicate key in comma-separated list property: {key}")
            prop = fmt.get(key)
            if prop is None:
                raise PropertyStringError(f"invalid key in comma-separated list property: {key}")
            if prop.type == "boolean":
                value = parse_boolean(value) or value
            res[key] = value
        elif "=" not in part:
            if default_key is None:
                raise PropertyStringError(
                    "value without key, but schema does not define a default key"
                )
            if default_used or default_key in res:
                raise PropertyStringError(
                    f"duplicate key in comma-separated list property: {default_key}"
                )
            default_used = True
            res[default_key] = part
        else:
            raise PropertyStringError("missing key in comma-separated list property")
    _check_all(res, fmt)
    return res


def _check_all(res: Mapping[str, str], fmt: Format) -> None:
    """check_object: every problem, then one "format error" naming them."""
    errors: list[str] = []
    for key, prop in fmt.items():
        if key not in res:
            if not prop.optional:
                errors.append(f"{key}: property is missing and it is not optional")
            continue
        problem = _check_value(prop, res[key])
        if problem:
            errors.append(f"{key}: {problem}")
    if errors:
        raise PropertyStringError("format error\n" + "\n".join(errors))


def check_value(key: str, value: str, fmt: Format) -> str | None:
    """One `key value` pair checked as check_object would: Proxmox's error text or None."""
    prop = fmt.get(key)
    if prop is None:
        return f"{key}: unexpected property"
    if prop.type == "boolean":
        value = parse_boolean(value) or value
    problem = _check_value(prop, value)
    return f"{key}: {problem}" if problem else None


def try_parse(text: str, fmt: Format) -> tuple[dict[str, str] | None, str | None]:
    """(values, None) or (None, Proxmox's message): for callers that collect problems."""
    try:
        return parse_property_string(text, fmt), None
    except PropertyStringError as exc:
        return None, str(exc)


# -- formats ---------------------------------------------------------------------------------


def _phys_bits(value: str) -> str | None:
    if value == "host" or (re.fullmatch(r"\d{1,2}", value, re.ASCII) and 8 <= int(value) <= 64):
        return None
    return "value must be an integer between 8 and 64 or 'host'"


CPU_FLAG_ANY = r"[+-][a-zA-Z0-9\-_\.]+"
_FLAGS_PATTERN = re.compile(rf"{CPU_FLAG_ANY}(?:;{CPU_FLAG_ANY})*", re.ASCII)


def cpu_format(
    *, guest_phys_bits: bool = True, level: bool = True, reported_models: tuple[str, ...] = ()
) -> dict[str, Prop]:
    """`$cpu_fmt` (CPUConfig.pm); keys added in later qemu-server versions are switchable."""
    fmt = {
        "cputype": Prop(default_key=True),
        "reported-model": Prop(enum=reported_models or None),
        "hidden": Prop(type="boolean"),
        "hv-vendor-id": Prop(pattern=re.compile(r"[a-zA-Z0-9]{1,12}", re.ASCII)),
        "flags": Prop(pattern=_FLAGS_PATTERN),
        "phys-bits": Prop(check=_phys_bits),
    }
    if guest_phys_bits:
        fmt["guest-phys-bits"] = Prop(type="integer", minimum=32, maximum=64)
    if level:
        fmt["level"] = Prop(type="integer", minimum=0, maximum=4294967295)
    return fmt


_MACHINE_TYPE = re.compile(
    r"(pc|pc(-i440fx)?-\d+(\.\d+)+(\+pve\d+)?(\.pxe)?|q35|pc-q35-\d+(\.\d+)+(\+pve\d+)?(\.pxe)?"
    r"|virt(?:-\d+(\.\d+)+)?(\+pve\d+)?)",
    re.ASCII,
)


def machine_format(*, aw_bits: bool = True) -> dict[str, Prop]:
    """`$machine_fmt` (Machine.pm); `aw-bits` is new in 9.x."""
    fmt = {
        "type": Prop(default_key=True, pattern=_MACHINE_TYPE, max_length=40),
        "viommu": Prop(enum=("intel", "virtio")),
        "enable-s3": Prop(type="boolean"),
        "enable-s4": Prop(type="boolean"),
    }
    if aw_bits:
        fmt["aw-bits"] = Prop(type="number", minimum=32, maximum=64)
    return fmt


MACHINE_FORMAT: Format = machine_format()
CPU_FORMAT: Format = cpu_format()

#: hostpciN (PCI.pm): only x-vga matters for -cpu; the other keys are known so they parse.
HOSTPCI_FORMAT: Format = {
    "host": Prop(default_key=True),
    "mapping": Prop(),
    "x-vga": Prop(type="boolean"),
    "pcie": Prop(type="boolean"),
    "rombar": Prop(type="boolean"),
    "romfile": Prop(),
    "mdev": Prop(),
    "legacy-igd": Prop(type="boolean"),
    "vendor-id": Prop(),
    "device-id": Prop(),
    "sub-vendor-id": Prop(),
    "sub-device-id": Prop(),
    "driver": Prop(enum=("keep", "vfio")),
}

AGENT_FORMAT: Format = {
    "enabled": Prop(type="boolean", default_key=True),
    "fstrim_cloned_disks": Prop(type="boolean"),
    "freeze-fs-on-backup": Prop(type="boolean"),
    "freeze-fs": Prop(type="boolean"),
    "guest-fsfreeze": Prop(type="boolean"),
    "type": Prop(enum=("virtio", "isa")),
}

META_FORMAT: Format = {
    "creation-qemu": Prop(),
    "ctime": Prop(type="integer"),
}
