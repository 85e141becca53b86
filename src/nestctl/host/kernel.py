"""The running kernel's release and what it implies (nested KVM is on by default since 4.20)."""

from __future__ import annotations

import re

#: Linux 4.20 turned `nested` on by default for kvm_intel (kvm_amd had it on long before).
NESTED_DEFAULT_ON_SINCE = (4, 20)

_RELEASE = re.compile(r"(\d+)\.(\d+)", re.ASCII)


def parse_release(text: str | None) -> tuple[int, int] | None:
    """(major, minor) of a release string like ``6.8.12-4-pve``, or None."""
    if text is None:
        return None
    match = _RELEASE.match(text.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def nested_default(module: str, release: tuple[int, int] | None) -> bool | None:
    """The built-in default of `nested` for `module` on kernel `release` (None: unknown)."""
    if module == "kvm_amd":
        return True  # nested SVM has defaulted to on since 2.6.30 (2009)
    if release is None:
        return None
    return release >= NESTED_DEFAULT_ON_SINCE
