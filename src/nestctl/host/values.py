"""Parse the small values the kernel shows and takes: sysfs parameters and module options.

Two directions, two rule sets. What sysfs *shows* is normalised leniently (Y/N/1/0 and integers);
what a modprobe line or the kernel command line *gives* is judged the way the kernel parses it
(``kstrtobool`` for bool parameters, ``kstrtoint`` for int ones), because a value the kernel rejects
makes the module refuse to load.
"""

from __future__ import annotations

import re

from nestctl.parse import parse_uint

_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def sysfs_bool(text: str | None) -> bool | None:
    """A boolean sysfs parameter as shown (``Y``/``N`` for bool, ``1``/``0`` for int), or None."""
    if text is None:
        return None
    value = text.strip()
    if value in ("Y", "y"):
        return True
    if value in ("N", "n"):
        return False
    number = kernel_int(value)
    if number is None:
        return None
    return number != 0


def sysfs_int(text: str | None) -> int | None:
    """A decimal sysfs number (``refcnt``), or None for anything else."""
    if text is None:
        return None
    return parse_uint(text)


def kernel_bool(value: str | None) -> bool | None:
    """What the kernel's ``kstrtobool`` makes of a bool parameter's value; None if it rejects it.

    ``None`` as input is a bare ``nested`` without ``=``, which the kernel takes as true.
    """
    if value is None:
        return True
    value = value.removesuffix("\n")
    if not value:
        return None
    first = value[0]
    if first in "yYtT1":
        return True
    if first in "nNfF0":
        return False
    if first in "oO" and len(value) > 1:
        if value[1] in "nN":
            return True
        if value[1] in "fF":
            return False
    return None


def kernel_int(value: str | None) -> int | None:
    """What the kernel's ``kstrtoint`` (base 0) makes of a value; None if it rejects it."""
    if value is None:
        return None
    value = value.removesuffix("\n")
    if not _INT.fullmatch(value):
        return None
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("+-")
    if digits.lower().startswith("0x"):
        number = int(digits[2:], 16)
    elif digits.startswith("0") and len(digits) > 1:
        number = int(digits[1:], 8)
    else:
        number = int(digits)
    number *= sign
    if not -(2**31) <= number < 2**31:
        return None
    return number


def kernel_param_bool(value: str | None, *, int_typed: bool) -> bool | None:
    """The truth of a parameter value as the module would take it (kvm_amd's ``nested`` is int)."""
    if int_typed:
        if value is None:  # an int parameter without a value is rejected by the kernel
            return None
        number = kernel_int(value)
        return None if number is None else number != 0
    return kernel_bool(value)
