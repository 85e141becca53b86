"""An unknown VMID, in the same words and with the same exit code (2) from every command.

A VMID that does not exist is not a VM that is "not ready": nothing was checked. `vm 1011`,
`vm enable 1011` and `vm disable 1011`, locally or over the API, all say "no VM 1011 on this
cluster" and suggest the VMIDs it may have meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from nestctl.findings import Finding, unknown

CODE = "vm.not-found"


def did_you_mean(vmid: int, known: Iterable[int]) -> list[int]:
    """Up to three listed VMIDs that look like `vmid` (a typo, a digit too many or too few)."""
    listed = sorted({int(k) for k in known})
    close = difflib.get_close_matches(str(vmid), [str(k) for k in listed], n=3, cutoff=0.6)
    return [int(c) for c in close]


def not_found(
    vmid: int, known: Iterable[int], *, where: str = "on this cluster", fix: str | None = None
) -> Finding:
    """The finding for an unknown VMID ("could not check": exit 2)."""
    guesses = did_you_mean(vmid, known)
    message = f"no VM {vmid} {where}"
    if guesses:
        message += f" (did you mean {' or '.join(str(g) for g in guesses)}?)"
    return unknown(CODE, message, fix)
