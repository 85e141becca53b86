"""Read Proxmox VM configs exactly as qemu-server's parse_vm_config does (reference §1).

Never raises on bad content: what Proxmox warns about (garbage lines, unknown sections, `delete`
outside [PENDING]) and what it silently resolves (duplicate keys: the last one wins, as in a Perl
hash) become plain messages in `VmConfig.problems`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from nestctl.vm.model import VmConfig

if TYPE_CHECKING:
    from nestctl.machine import Host

QEMU_SERVER_DIR = "/etc/pve/qemu-server"
NODES_DIR = "/etc/pve/nodes"

_PENDING = re.compile(r"\[PENDING\]\s*", re.ASCII | re.IGNORECASE)
_SPECIAL = re.compile(r"\[special:(cloudinit|fleecing)\]\s*", re.ASCII | re.IGNORECASE)
_SNAPSHOT = re.compile(r"\[([a-z][a-z0-9_\-]+)\]\s*", re.ASCII | re.IGNORECASE)
_ANY_SECTION = re.compile(r"\s*\[.*\]\s*", re.ASCII)
_KEY_VALUE = re.compile(r"([a-z][a-z_-]*\d*):\s*(.+?)\s*", re.ASCII)
_BLANK = re.compile(r"\s*", re.ASCII)
_CONF_NAME = re.compile(r"(\d+)\.conf", re.ASCII)
_DELETE_SPLIT = re.compile(r"[,;\s]+", re.ASCII)


def decode_text(text: str) -> str:
    """PVE::Tools::decode_text: URI-unescape, then UTF-8 decode."""
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", errors="replace")


def parse_pending_delete(text: str) -> list[tuple[str, bool]]:
    """AbstractConfig::parse_pending_delete: `,` `;` or whitespace separated, `!` = force."""
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for item in _DELETE_SPLIT.split(text.strip()):
        if not item:
            continue
        force = item.startswith("!")
        key = item[1:] if force else item
        if key and key not in seen:
            seen.add(key)
            out.append((key, force))
    return out


class _Section:
    """One section being read: its values, description lines and where each key came from."""

    def __init__(
        self, kind: str, name: str, values: dict[str, str], lines: dict[str, int] | None = None
    ) -> None:
        self.kind = kind  # main | pending | special | snapshot | skip
        self.name = name
        self.values = values
        self.descr: list[str] = []
        self.lines: dict[str, int] = {} if lines is None else lines  # shared when re-opened


def parse_vm_config(text: str, vmid: int, path: str) -> VmConfig:
    """Parse a VM config's text; `path` is only used in messages."""
    conf = VmConfig(vmid=vmid, path=path)
    conf.digest = hashlib.sha1(  # noqa: S324 - Proxmox's own digest
        text.encode("utf-8", errors="surrogateescape")
    ).hexdigest()
    section = _Section("main", "", conf.main)
    finished: list[_Section] = []
    seen_sections: dict[str, dict[str, int]] = {}
    prefix = f"vm {vmid} -"
    for lineno, line in enumerate(text.split("\n"), start=1):
        if _BLANK.fullmatch(line):
            continue
        header = _header(line, conf) if line.startswith("[") else None
        if header is not None:
            finished.append(section)
            kind, name, values = header
            key = f"{kind}:{name}"
            if key in seen_sections:
                conf.problems.append(f"{prefix} duplicate section '{line.strip()}' (line {lineno})")
            section = _Section(kind, name, values, seen_sections.setdefault(key, {}))
        elif _ANY_SECTION.fullmatch(line):
            conf.problems.append(
                f"{prefix} skipping unknown section '{line.strip()}' (line {lineno})"
            )
            finished.append(section)
            section = _Section("skip", "", {})
        elif section.kind != "skip":
            _line(section, line, lineno, conf, prefix)
    finished.append(section)
    for sec in finished:
        if not sec.descr:
            continue
        descr = "".join(f"{d}\n" for d in sec.descr).rstrip()
        if sec.kind == "main":
            conf.description = descr
        elif sec.kind in ("pending", "snapshot"):
            sec.values["description"] = descr
    return conf


def _line(section: _Section, line: str, lineno: int, conf: VmConfig, prefix: str) -> None:
    """One line inside a section: description, `delete:`, or `key: value`."""
    if line.startswith("#"):
        section.descr.append(decode_text(line[1:]))
        return
    m = _KEY_VALUE.fullmatch(line)
    if not m:
        conf.problems.append(f"{prefix} unable to parse config: {line} (line {lineno})")
        return
    if m.group(1) == "description":
        section.descr.append(decode_text(m.group(2)))
        return
    if m.group(1) == "delete":
        if section.kind == "pending":
            conf.pending_delete.extend(parse_pending_delete(m.group(2)))
        else:
            conf.problems.append(
                f"{prefix} property 'delete' is only allowed in [PENDING] (line {lineno})"
            )
        return
    key, value = m.group(1), m.group(2)
    if key == "cdrom":
        key = "ide2"
    if key in section.values:
        where = "" if section.kind == "main" else f" in [{section.name}]"
        conf.problems.append(
            f"{prefix} duplicate key '{key}'{where} (lines {section.lines[key]} and {lineno}); "
            "the last value wins"
        )
    section.values[key] = value
    section.lines[key] = lineno


def _header(line: str, conf: VmConfig) -> tuple[str, str, dict[str, str]] | None:
    if _PENDING.fullmatch(line):
        return "pending", "PENDING", conf.pending
    m = _SPECIAL.fullmatch(line)
    if m:
        name = m.group(1).lower()
        return "special", name, conf.special.setdefault(name, {})
    m = _SNAPSHOT.fullmatch(line)
    if m:
        return "snapshot", m.group(1), conf.snapshots.setdefault(m.group(1), {})
    return None


# -- reading them from a host ---------------------------------------------------------------------


def local_node(host: Host) -> str | None:
    """The local node's name from pmxcfs' `local` / `qemu-server` symlinks, or /etc/hostname."""
    for link in ("/etc/pve/local", QEMU_SERVER_DIR):
        target = host.readlink(link)
        if target:
            m = re.search(r"nodes/([^/]+)", target)
            if m:
                return m.group(1)
    name = host.read_text("/etc/hostname")
    return name.strip().split(".")[0] or None if name else None


def _read_one(host: Host, hostpath: str, vmid: int, node: str | None) -> VmConfig:
    read = host.read(hostpath)
    if read.text is None:
        conf = VmConfig(vmid=vmid, path=hostpath, node=node, readable=False)
        if read.status.value == "missing":
            conf.problems.append(f"Configuration file '{hostpath}' does not exist")
        else:
            conf.problems.append(f"{hostpath}: {read.error or read.status.value}")
        return conf
    conf = parse_vm_config(read.text, vmid, hostpath)
    conf.node = node
    return conf


def _dir_vmids(host: Host, hostdir: str) -> list[int]:
    out = []
    for name in host.listdir(hostdir) or []:
        m = _CONF_NAME.fullmatch(name)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def load_vm_configs(
    host: Host, *, all_nodes: bool = False, vmids: Sequence[int] | None = None
) -> list[VmConfig]:
    """VM configs of the local node (or every node), sorted by vmid, each read once.

    On a real node /etc/pve/qemu-server is a symlink to nodes/<local>/qemu-server; fake trees may
    have only one of the two. With `vmids`, a missing file gives a VmConfig with readable=False.
    """
    local = local_node(host)
    dirs: list[tuple[str, str | None]] = []
    if all_nodes:
        for name in host.listdir(NODES_DIR) or []:
            if host.is_dir(f"{NODES_DIR}/{name}/qemu-server"):
                dirs.append((f"{NODES_DIR}/{name}/qemu-server", name))
        link = host.readlink(QEMU_SERVER_DIR)
        if not (link and "nodes/" in link) and host.is_dir(QEMU_SERVER_DIR):
            dirs.append((QEMU_SERVER_DIR, local))
    elif host.is_dir(QEMU_SERVER_DIR):
        dirs.append((QEMU_SERVER_DIR, local))
    elif local and host.is_dir(f"{NODES_DIR}/{local}/qemu-server"):
        dirs.append((f"{NODES_DIR}/{local}/qemu-server", local))

    found: dict[int, tuple[str, str | None]] = {}
    for hostdir, node in dirs:
        for vmid in _dir_vmids(host, hostdir):
            found.setdefault(vmid, (f"{hostdir}/{vmid}.conf", node))
    wanted = sorted(found) if vmids is None else list(dict.fromkeys(vmids))
    out = []
    for vmid in wanted:
        hostpath, where = found.get(vmid, (f"{QEMU_SERVER_DIR}/{vmid}.conf", local))
        out.append(_read_one(host, hostpath, vmid, where))
    return out
