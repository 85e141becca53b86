"""Which containers want nested workloads: the VMs' one intent function, extended by what a
container's config can ask for.

`decide_ct_intent` asks `nestctl.vm.intent.decide_intent` first (the same `nested` tag, the same
`Intent` record and words), then the container's own explicit asks: `keyctl=1` (only Docker
needs it), or `/dev/kvm` passed in (a `dev<N>` entry or raw lxc lines). `nesting=1` alone is no
ask: Proxmox's wizard turns it on for every new unprivileged container (systemd needs it).
Anything else is "not nested" (neutral), as for VMs.
"""

from __future__ import annotations

from nestctl.ct.facts import CtFacts
from nestctl.vm.intent import DEFAULT_TAG, UNREAD, Intent, decide_intent

NONE = Intent(False, "none", "nothing asks for it (no tag, no keyctl, no /dev/kvm)")


def config_asks(facts: CtFacts) -> str | None:
    """What in the container's config asks for nested workloads, in words, or None."""
    if facts.features.get("keyctl") is True:
        return "its features turn keyctl on (for Docker)"
    if facts.kvm.configured:
        how = facts.kvm.device.key if facts.kvm.device else "raw lxc lines"
        return f"it passes /dev/kvm in ({how})"
    return None


def decide_ct_intent(facts: CtFacts, main: dict[str, str], *, tag: str = DEFAULT_TAG) -> Intent:
    """Does this container want nested workloads, and which signal says so."""
    if not facts.readable:
        return UNREAD
    by_tag = decide_intent(main, tag=tag)
    if by_tag.intent == "tag":
        return by_tag
    asked = config_asks(facts)
    if asked is not None:
        return Intent(True, "config", asked)
    return NONE
