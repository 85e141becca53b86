"""Which layer a console belongs to, and which console shows where a VM's chain breaks.

Layers count from the physical Proxmox: a target without a parent is L0, and its VMs are L1. A
target whose Proxmox runs inside VM `outer/vmid` (`parent` in the config) is one layer deeper, so
its VMs are L2, and so on. Each target's consoles go through that target's own API: an L2 VM's
screen is opened by the L1 Proxmox that hosts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from nestctl.parse import is_ascii_digits
from nestctl.web.settings import TargetSpec


def depth(targets: list[TargetSpec], name: str) -> int | None:
    """0 for a top target, 1 for a Proxmox inside one of its VMs...; None when unknown."""
    by_name = {t.name: t for t in targets}
    seen: set[str] = set()
    level = 0
    current = by_name.get(name)
    if current is None:
        return None
    while current.parent:
        outer = current.parent.partition("/")[0]
        if outer in seen or outer not in by_name:
            return None if outer in seen else level + 1  # a loop; or an outer we do not show
        seen.add(current.name)
        current = by_name[outer]
        level += 1
    return level


def layer_label(
    targets: list[TargetSpec], target: str, kind: str, node: str, vmid: int | None
) -> str:
    """`L2 VM 101 on pve1 (target inner, inside outer VM 100)`; plain words for the page."""
    level = depth(targets, target)
    spec = next((t for t in targets if t.name == target), None)
    where = f"target {target}"
    if spec is not None and spec.parent:
        outer, _, pvmid = spec.parent.partition("/")
        where += f", inside {outer} VM {pvmid}"
    if kind == "shell":
        prefix = f"L{level} " if level is not None else ""
        return f"{prefix}node {node} shell ({where})"
    prefix = f"L{level + 1} " if level is not None else ""
    noun = "container" if kind == "lxc" else "VM"
    suffix = " serial port" if kind == "serial" else ""
    return f"{prefix}{noun} {vmid}{suffix} on {node} ({where})"


@dataclass(frozen=True)
class ConsoleLink:
    label: str
    url: str


def vm_console_url(target: str, node: str, vmid: int) -> str:
    return f"/t/{quote(target, safe='')}/vm/{quote(node, safe='')}/{vmid}/console"


def node_shell_url(target: str, node: str) -> str:
    return f"/t/{quote(target, safe='')}/node/{quote(node, safe='')}/shell"


def for_broken_link(
    targets: list[TargetSpec], target: str, node: str, vmid: int, link: str | None
) -> list[ConsoleLink]:
    """The consoles of the layer where the chain (host -> config -> process -> guest) breaks.

    guest: this VM's own screen. config or process: the shell of the node that holds the config
    and runs QEMU. host: that node's shell, and, when this Proxmox itself runs in a VM of an
    outer target, that VM's screen one layer out (the virtual host's own console).
    """
    if not link:
        return []
    if link == "guest":
        return [ConsoleLink(f"Open the screen of VM {vmid}", vm_console_url(target, node, vmid))]
    links = [ConsoleLink(f"Open a shell on node {node}", node_shell_url(target, node))]
    spec = next((t for t in targets if t.name == target), None)
    if link == "host" and spec is not None and spec.parent:
        outer, _, pvmid = spec.parent.partition("/")
        if is_ascii_digits(pvmid) and any(t.name == outer for t in targets):
            links.append(
                ConsoleLink(
                    f"Open the screen of {outer} VM {pvmid} (this Proxmox)",
                    f"/t/{quote(outer, safe='')}/vmid/{pvmid}/console",
                )
            )
    return links


def console_globals() -> dict[str, Any]:
    """What the templates call (console_links.html): the layer's words, the broken-link links."""

    def console_layer(settings: Any, target: str, kind: str, node: str, vmid: int | None) -> str:
        return "Layer: " + layer_label(list(settings.targets), target, kind, node, vmid)

    def broken_link_consoles(
        settings: Any, target: str, node: str, vmid: int, link: str | None
    ) -> list[ConsoleLink]:
        return for_broken_link(list(settings.targets), target, node, vmid, link)

    return {"console_layer": console_layer, "broken_link_consoles": broken_link_consoles}
