"""Small parsers every layer shares, so that a fix reaches every caller.

Whatever we read is hostile: `str.isdigit()` is true for "¹" and "٣" (and `int()` then raises or
reads a non-ASCII digit), so numbers here are ASCII digits only. Proxmox booleans follow
qemu-server's `check_type` (the same words as pve-common's `parse_boolean`), and the CPU vendor
mapping is the one the JSON contracts spell.
"""

from __future__ import annotations

from typing import Any

#: Longest run of digits parsed as a number: enough for any pid, VMID, size in bytes or
#: refcount; a longer one is garbage (and `int()` on a huge string is quadratic).
MAX_DIGITS = 20

_TRUE_WORDS = frozenset({"on", "yes", "true"})
_FALSE_WORDS = frozenset({"off", "no", "false"})
#: QEMU's own booleans (qapi_bool_parse): exact words, case-sensitive; "1" is not one.
_QEMU_TRUE = frozenset({"on", "yes", "true", "y"})
_QEMU_FALSE = frozenset({"off", "no", "false", "n"})

#: CPUID vendor strings -> the contract's vendor names. Hygon builds AMD's design (svm, kvm_amd).
_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "amd"}
#: The way back, for a model of the host that only knows the name: AMD's own string for "amd".
_VENDOR_IDS = {"intel": "GenuineIntel", "amd": "AuthenticAMD"}


def is_ascii_digits(text: str) -> bool:
    """Non-empty and only the ASCII digits 0-9."""
    return text.isascii() and text.isdigit()


def parse_uint(text: str | None, *, max_digits: int = MAX_DIGITS) -> int | None:
    """A non-negative decimal integer (surrounding ASCII whitespace allowed), or None."""
    if text is None:
        return None
    value = text.strip(" \t\r\n\v\f")
    if not is_ascii_digits(value) or len(value) > max_digits:
        return None
    return int(value)


def proxmox_bool(value: str | None) -> bool | None:
    """A VM config boolean as qemu-server reads it: 1/on/yes/true, 0/off/no/false (any case).

    None for anything else (Proxmox refuses such a config line: "type check ('boolean') failed").
    """
    if value is None:
        return None
    if value == "1":
        return True
    if value == "0":
        return False
    if not value.isascii():
        return None
    word = value.lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


def qemu_bool(value: str) -> bool | None:
    """A QEMU property boolean (`vmx=on`, `enforce=yes`) as QEMU reads it, or None when QEMU
    refuses the value ("Parameter 'vmx' expects 'on' or 'off'")."""
    if value in _QEMU_TRUE:
        return True
    if value in _QEMU_FALSE:
        return False
    return None


def cpu_vendor(vendor_id: str | None) -> str | None:
    """ "intel", "amd" or "other" for a CPUID vendor string; None when there is none to judge."""
    if not vendor_id:
        return None
    return _VENDORS.get(vendor_id, "other")


def cpuid_vendor(vendor: str | None) -> str | None:
    """The CPUID vendor string QEMU's CPU models follow for a contract vendor name ("intel",
    "amd"); None for "other" or no name."""
    return _VENDOR_IDS.get(vendor or "")


def finite_or_none(value: Any) -> Any:
    """`value` with every NaN or infinity (in lists and dicts too) replaced by None (JSON null).

    JSON has no NaN: `json.dumps` would write a token other parsers reject.
    """
    if isinstance(value, float):
        import math  # noqa: PLC0415 - a C extension to load: only for output that needs it

        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value
