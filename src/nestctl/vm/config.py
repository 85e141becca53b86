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

from nestctl.machine import ReadStatus
from nestctl.vm.model import VmConfig

if TYPE_CHECKING:
    from nestctl.machine import Host

PVE_DIR = "/etc/pve"
QEMU_SERVER_DIR = "/etc/pve/qemu-server"
NODES_DIR = "/etc/pve/nodes"

_PENDING = re.compile(r"\[PENDING\]\s*", re.ASCII | re.IGNORECASE)
_SPECIAL = re.compile(r"\[special:(cloudinit|fleecing)\]\s*", re.ASCII | re.IGNORECASE)
_SNAPSHOT = re.compile(r"\[([a-z][a-z0-9_\-]+)\]\s*", re.ASCII | re.IGNORECASE)
_ANY_SECTION = re.compile(r"\[([^\]]*)\]\s*", re.ASCII)
_SNAPSTATE = re.compile(r"snapstate:\s*(prepare|delete)\s*$", re.ASCII)
_KEY = re.compile(r"([a-z][a-z_\-]*\d*):", re.ASCII)
_PERL_SPACE = " \t\n\r\f\v"  # Perl's \s
_ASCII_SPACE = " \t\n\r\f\v"  # Perl's \s on bytes
_CONF_NAME = re.compile(r"(\d+)\.conf", re.ASCII)
_DELETE_SPLIT = re.compile(r"[,;\s]+", re.ASCII)


def decode_text(text: str) -> str:
    """PVE::Tools::decode_text: URI-unescape, then UTF-8 decode."""
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", errors="replace")


def parse_pending_delete(text: str) -> list[tuple[str, bool]]:
    """AbstractConfig::parse_pending_delete: `,` `;` or whitespace separated, `!` = force.

    A key listed twice keeps its first place and the last force flag (a Perl hash).
    """
    found: dict[str, bool] = {}
    for item in _DELETE_SPLIT.split(text.strip()):
        if not item:
            continue
        force = item.startswith("!")
        key = item[1:] if force else item
        if key:
            found[key] = force
    return list(found.items())


class _Section:
    """One section being read: its values, description and where each key came from."""

    def __init__(self, kind: str, name: str, values: dict[str, str]) -> None:
        self.kind = kind  # main | pending | special | snapshot
        self.name = name
        self.values = values
        self.descr: str | None = None
        self.lines: dict[str, int] = {}

    def finish_description(self, conf: VmConfig) -> None:
        if self.descr is None:
            return
        descr = self.descr.rstrip()
        if self.kind == "main":
            conf.description = descr
        else:
            self.values["description"] = descr
        self.descr = None


def parse_vm_config(text: str, vmid: int, path: str) -> VmConfig:
    """Parse a VM config's text like qemu-server's parse_vm_config (non-strict mode).

    Problems use Proxmox's warning texts. Values are kept as written (not schema-checked), so
    nestctl can report what Proxmox would refuse; duplicate keys keep the last value.
    """
    conf = VmConfig(vmid=vmid, path=path)
    conf.digest = hashlib.sha1(  # noqa: S324 - Proxmox's own digest
        text.encode("utf-8", errors="surrogateescape")
    ).hexdigest()
    current = _Section("main", "", conf.main)
    section: _Section | None = current
    state = _State(conf)
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip(_ASCII_SPACE):
            continue
        if line.startswith("["):
            is_header, opened = _open_section(line, state, current)
            if is_header:
                section = opened
                current = opened or current
                continue
        if section is not None:
            _line(section, line, lineno, state)
    current.finish_description(conf)
    if state.pending_delete is not None:
        conf.pending_delete = parse_pending_delete(state.pending_delete)
    return conf


class _State:
    """What spans sections: the config, seen sections and the raw pending `delete:`."""

    def __init__(self, conf: VmConfig) -> None:
        self.conf = conf
        self.prefix = f"vm {conf.vmid} -"
        self.pending_seen = False
        self.pending_delete: str | None = None  # like `$conf->{delete}`: the last line wins


def _open_section(line: str, state: _State, current: _Section) -> tuple[bool, _Section | None]:
    """(is a header, the new section or None for an unknown one)."""
    conf, prefix = state.conf, state.prefix
    if _PENDING.fullmatch(line):
        current.finish_description(conf)
        if state.pending_seen:
            conf.problems.append(f"{prefix} duplicate section: pending")
        state.pending_seen = True
        conf.pending.clear()
        state.pending_delete = None
        return True, _Section("pending", "pending", conf.pending)
    for kind, regex, store in (
        ("special", _SPECIAL, conf.special),
        ("snapshot", _SNAPSHOT, conf.snapshots),
    ):
        m = regex.fullmatch(line)
        if m:
            current.finish_description(conf)
            name = m.group(1).lower() if kind == "special" else m.group(1)
            if name in store:
                conf.problems.append(f"{prefix} duplicate {kind} section: {name}")
            values = store[name] = {}
            return True, _Section(kind, name, values)
    m = _ANY_SECTION.fullmatch(line)
    if m:
        current.finish_description(conf)
        conf.problems.append(f"{prefix} skipping unknown section: '{m.group(1)}'")
        return True, None
    return False, None


def key_value(line: str) -> tuple[str, str] | None:
    """`key: value` as Proxmox's ``/^([a-z][a-z_]*\\d*):\\s*(.+?)\\s*$/`` splits it, in linear time.

    (The regex itself backtracks quadratically over a long run of spaces.)
    """
    m = _KEY.match(line)
    if m is None:
        return None
    rest = line[m.end() :]
    value = rest.strip(_PERL_SPACE)
    if not value:
        # Only spaces: the lazy group still takes one (the last), as Perl's match does.
        return (m.group(1), rest[-1]) if rest else None
    return m.group(1), value


def _line(section: _Section, line: str, lineno: int, state: _State) -> None:
    """One line inside a section: description, snapstate, `delete:` or `key: value`."""
    conf, prefix = state.conf, state.prefix
    if line.startswith("#"):
        section.descr = (section.descr or "") + decode_text(line[1:]) + "\n"
        return
    m = key_value(line)
    key = m[0] if m else None
    if m and key == "description":
        section.descr = (section.descr or "") + decode_text(m[1])
        return
    snap = _SNAPSTATE.search(line) if "snapstate" in line else None
    if snap:
        if section.kind != "main":  # Proxmox drops it from the main section again
            section.values["snapstate"] = snap.group(1)
        return
    if m is None or key is None:
        conf.problems.append(f"{prefix} unable to parse config: {line}")
        return
    value = m[1]
    if key == "delete":
        if section.kind == "pending":
            state.pending_delete = value
        else:
            conf.problems.append(f"{prefix} property 'delete' is only allowed in [PENDING]")
        return
    if key == "cdrom" and section.kind != "special":
        key = "ide2"
    if key in section.values:
        where = "" if section.kind == "main" else f" in [{section.name}]"
        conf.problems.append(
            f"{prefix} duplicate key '{key}'{where} (lines {section.lines[key]} and {lineno}); "
            "the last value wins"
        )
    section.values[key] = value
    section.lines[key] = lineno


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
    if not read.ok or read.text is None:  # a truncated config is not parsed from half of it
        conf = VmConfig(vmid=vmid, path=hostpath, node=node, readable=False)
        if read.status.value == "missing":
            conf.problems.append(f"Configuration file '{hostpath}' does not exist")
        else:
            conf.problems.append(f"{hostpath}: {read.error or read.status.value}")
        return conf
    conf = parse_vm_config(read.text, vmid, hostpath)
    conf.node = node
    return conf


def config_access_problem(host: Host) -> str | None:
    """Why this node's VM configs cannot be listed at all, or None (also None when there is no
    /etc/pve: not a Proxmox node, a fact). An empty /etc/pve is pmxcfs not mounted, not "no VMs".
    """
    listing = host.listdir(PVE_DIR)
    if listing.status is ReadStatus.MISSING:
        return None
    if listing.status is ReadStatus.NOT_PERMITTED:
        return f"{PVE_DIR} cannot be read (not permitted): run as root"
    if not listing.ok:
        return f"{PVE_DIR} cannot be read: {listing.describe()}"
    if not listing.names:
        return f"{PVE_DIR} is empty: pmxcfs is not mounted (systemctl status pve-cluster)"
    for hostdir in (QEMU_SERVER_DIR, NODES_DIR):
        sub = host.listdir(hostdir)
        if not sub.ok and sub.status is not ReadStatus.MISSING:
            return f"{hostdir} cannot be read: {sub.describe()}"
    return None


def _dir_vmids(host: Host, hostdir: str) -> list[int]:
    out = []
    for name in host.listdir(hostdir).names:
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
        for name in host.listdir(NODES_DIR).names:
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
