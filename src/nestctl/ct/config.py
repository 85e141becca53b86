"""Read container configs (`/etc/pve/lxc/<vmid>.conf`) as pve-container does.

The reference is pve-container src/PVE/LXC/Config.pm at commit 94f558522ef6 (2026-06-16):
- `parse_pct_config` (line 1126): blank lines skipped; `[pve:pending]` and `[snapname]` headers;
  `#` lines are the description (decode_text); raw keys `lxc.*` matched by
  `^(lxc\\.[a-z0-9_\\-\\.]+)(:|\\s*=)\\s*(.*?)\\s*$` and kept *in order, repeats included* (a list
  of pairs), `lxc.environment.runtime` folded into `env`; `delete:` only in [pve:pending];
  `snapstate:`; everything else `^([a-z][a-z_]*\\d*):\\s*(.+?)\\s*$` (no `-`, unlike qemu-server).
- `is_valid_lxc_conf_key` (line 830) with `$valid_lxc_conf_keys` (line 725): unknown raw keys are
  warned about and dropped; `lxc.cgroup2.*`, `lxc.prlimit.*`, `lxc.net.*` allowed by prefix;
  `lxc.cgroup.*` and renamed old keys kept with a warning; `lxc.rootfs.path` / `.options` refused.
- `$features_desc` (line 453) and `$dev_desc` (line 1080): the `features` and `dev<N>` property
  strings.

Never raises on content: what Proxmox warns about becomes a plain message in `problems`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nestctl.vm.config import decode_text, key_value, parse_pending_delete
from nestctl.vm.propstring import Prop, try_parse

if TYPE_CHECKING:
    from nestctl.machine import Host

LXC_DIR = "/etc/pve/lxc"
NODES_DIR = "/etc/pve/nodes"
MAX_DEVICES = 256  # Config.pm $MAX_DEVICES (dev0 .. dev255)

_PENDING = re.compile(r"\[pve:pending\]\s*", re.ASCII | re.IGNORECASE)
_SNAPSHOT = re.compile(r"\[([a-z][a-z0-9_\-]+)\]\s*", re.ASCII | re.IGNORECASE)
_RAW_KEY = re.compile(r"(lxc\.[a-z0-9_\-.]+)(?::|[ \t\n\r\f\v]*=)", re.ASCII)
_SNAPSTATE = re.compile(r"snapstate:\s*(prepare|delete)\s*$", re.ASCII)
_DESCRIPTION = re.compile(r"description:\s*", re.ASCII)
_PERL_SPACE = " \t\n\r\f\v"
_CONF_NAME = re.compile(r"(\d{3,9})\.conf", re.ASCII)

# Config.pm $valid_lxc_conf_keys: 1 = allowed, a string = Proxmox's refusal.
_VALID_RAW: dict[str, str | None] = dict.fromkeys(
    [
        "lxc.apparmor.profile",
        "lxc.apparmor.allow_incomplete",
        "lxc.apparmor.allow_nesting",
        "lxc.apparmor.raw",
        "lxc.selinux.context",
        "lxc.include",
        "lxc.arch",
        "lxc.uts.name",
        "lxc.signal.halt",
        "lxc.signal.reboot",
        "lxc.signal.stop",
        "lxc.init.cmd",
        "lxc.init.cwd",
        "lxc.init.uid",
        "lxc.init.gid",
        "lxc.init.groups",
        "lxc.pty.max",
        "lxc.console.logfile",
        "lxc.console.path",
        "lxc.tty.max",
        "lxc.devtty.dir",
        "lxc.hook.autodev",
        "lxc.autodev",
        "lxc.kmsg",
        "lxc.mount.fstab",
        "lxc.mount.entry",
        "lxc.mount.auto",
        "lxc.rootfs.mount",
        "lxc.cap.drop",
        "lxc.cap.keep",
        "lxc.seccomp.profile",
        "lxc.seccomp.notify.proxy",
        "lxc.seccomp.notify.cookie",
        "lxc.idmap",
        "lxc.hook.pre-start",
        "lxc.hook.pre-mount",
        "lxc.hook.mount",
        "lxc.hook.start",
        "lxc.hook.stop",
        "lxc.hook.post-stop",
        "lxc.hook.clone",
        "lxc.hook.destroy",
        "lxc.hook.version",
        "lxc.log.level",
        "lxc.log.file",
        "lxc.start.auto",
        "lxc.start.delay",
        "lxc.start.order",
        "lxc.group",
        "lxc.environment",
        "lxc.environment.runtime",
        "lxc.environment.hooks",
        "lxc.sysctl.fs.mqueue",
        "lxc.sysctl.kernel.msgmax",
        "lxc.sysctl.kernel.msgmnb",
        "lxc.sysctl.kernel.msgmni",
        "lxc.sysctl.kernel.sem",
        "lxc.sysctl.kernel.shmall",
        "lxc.sysctl.kernel.shmmax",
        "lxc.sysctl.kernel.shmmni",
        "lxc.sysctl.kernel.shm_rmid_forced",
    ]
) | {
    "lxc.rootfs.path": "lxc.rootfs.path is auto generated from rootfs",
    "lxc.rootfs.options": "lxc.rootfs.options is not supported, please use mount point options "
    'in the "rootfs" key',
}
# Config.pm $deprecated_lxc_conf_keys (removed with lxc 3.0): accepted with a warning.
_DEPRECATED_RAW = {
    "lxc.aa_profile": "lxc.apparmor.profile",
    "lxc.aa_allow_incomplete": "lxc.apparmor.allow_incomplete",
    "lxc.console": "lxc.console.path",
    "lxc.devttydir": "lxc.tty.dir",
    "lxc.haltsignal": "lxc.signal.halt",
    "lxc.rebootsignal": "lxc.signal.reboot",
    "lxc.stopsignal": "lxc.signal.stop",
    "lxc.id_map": "lxc.idmap",
    "lxc.init_cmd": "lxc.init.cmd",
    "lxc.loglevel": "lxc.log.level",
    "lxc.logfile": "lxc.log.file",
    "lxc.mount": "lxc.mount.fstab",
    "lxc.pts": "lxc.pty.max",
    "lxc.se_context": "lxc.selinux.context",
    "lxc.seccomp": "lxc.seccomp.profile",
    "lxc.tty": "lxc.tty.max",
    "lxc.utsname": "lxc.uts.name",
}

#: Config.pm $features_desc.
FEATURES_FORMAT: dict[str, Prop] = {
    "mount": Prop(pattern=re.compile(r"[a-zA-Z0-9_; ]+", re.ASCII)),
    "nesting": Prop(type="boolean"),
    "keyctl": Prop(type="boolean"),
    "fuse": Prop(type="boolean"),
    "mknod": Prop(type="boolean"),
    "force_rw_sys": Prop(type="boolean"),
}
#: Config.pm $dev_desc (`path` is the default key).
DEV_FORMAT: dict[str, Prop] = {
    "path": Prop(default_key=True),
    "mode": Prop(pattern=re.compile(r"0[0-7]{3}", re.ASCII)),
    "uid": Prop(type="integer", minimum=0),
    "gid": Prop(type="integer", minimum=0),
    "deny-write": Prop(type="boolean"),
}


@dataclass
class CtSection:
    """A snapshot section: its values and raw lines."""

    values: dict[str, str] = field(default_factory=dict)
    lxc: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class CtConfig:
    """One container config as pve-container reads it."""

    vmid: int
    path: str = ""
    node: str | None = None
    readable: bool = True
    unreachable: bool = False  # its node could not be reached (API): not judged, not counted
    digest: str = ""
    main: dict[str, str] = field(default_factory=dict)
    lxc: list[tuple[str, str]] = field(default_factory=list)  # raw lxc.* lines, in order
    pending: dict[str, str] = field(default_factory=dict)
    pending_lxc: list[tuple[str, str]] = field(default_factory=list)
    pending_delete: list[tuple[str, bool]] = field(default_factory=list)
    snapshots: dict[str, CtSection] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def description(self) -> str | None:
        return self.main.get("description")


def _raw_line(line: str) -> tuple[str, str] | None:
    """A raw `lxc.key: value` / `lxc.key = value` line, split in linear time."""
    m = _RAW_KEY.match(line)
    if m is None:
        return None
    return m.group(1), line[m.end() :].strip(_PERL_SPACE)


def raw_key_problem(vmid: int, key: str) -> tuple[bool, str | None]:
    """is_valid_lxc_conf_key: (kept, Proxmox's warning or None)."""
    prefix = f"vm {vmid} - {key}"
    if key.startswith("lxc.limit."):
        return True, f"{prefix}: lxc.limit.* was renamed to lxc.prlimit.*"
    if key in _DEPRECATED_RAW:
        return True, f"{prefix} is deprecated and was renamed to {_DEPRECATED_RAW[key]}"
    if key in _VALID_RAW:
        refusal = _VALID_RAW[key]
        return (refusal is None), (None if refusal is None else f"{prefix}: {refusal}")
    if key.startswith("lxc.cgroup."):
        return True, f"{prefix} is deprecated, this will be a hard error in the future!"
    if key.startswith(("lxc.cgroup2.", "lxc.prlimit.", "lxc.net.")):
        return True, None
    return False, None


class _Reader:
    """One pass over a config: the section being filled and what spans sections."""

    def __init__(self, conf: CtConfig) -> None:
        self.conf = conf
        self.values, self.raw, self.section = conf.main, conf.lxc, "main"
        self.descr = ""
        self.pending_delete: str | None = None  # like `$conf->{delete}`: the last line wins
        self.prefix = f"vm {conf.vmid} -"

    def open(self, header: str) -> None:
        self.flush()
        if header == "":
            self.conf.pending.clear()
            self.values, self.raw, self.section = (
                self.conf.pending,
                self.conf.pending_lxc,
                "pending",
            )
        else:
            snap = self.conf.snapshots[header] = CtSection()
            self.values, self.raw, self.section = snap.values, snap.lxc, "snapshot"

    def flush(self) -> None:
        if self.descr:
            self.values["description"] = self.descr
        self.descr = ""

    def raw_line(self, key: str, value: str, line: str) -> None:
        kept, warning = raw_key_problem(self.conf.vmid, key)
        if key == "lxc.environment.runtime":
            env = self.values.get("env")
            self.values["env"] = value if env is None else env + "\0" + value
        elif kept:
            self.raw.append((key, value))
            if warning:
                self.conf.problems.append(warning)
        else:
            self.conf.problems.append(warning or f"{self.prefix} unable to parse config: {line}")

    def line(self, line: str) -> None:
        if line.startswith("#"):
            self.descr += decode_text(line[1:]) + "\n"
            return
        got = _raw_line(line)
        if got is not None:
            self.raw_line(got[0], got[1], line)
            return
        m = _DESCRIPTION.match(line)
        if m and line[m.end() :].strip(_PERL_SPACE):
            self.descr += decode_text(line[m.end() :].strip(_PERL_SPACE))
            return
        if "snapstate" in line and _SNAPSTATE.search(line):
            return  # parse_pct_config drops it again
        kv = key_value(line)
        if kv is None or "-" in kv[0]:
            self.conf.problems.append(f"{self.prefix} unable to parse config: {line}")
            return
        key, value = kv
        if key != "delete":
            self.values[key] = value
        elif self.section == "pending":
            self.pending_delete = value
        else:
            self.conf.problems.append(
                f"{self.prefix} property 'delete' is only allowed in [pve:pending]"
            )


def parse_ct_config(text: str, vmid: int, path: str = "") -> CtConfig:
    """Parse a container config's text like parse_pct_config (non-strict: warn and go on)."""
    conf = CtConfig(vmid=vmid, path=path)
    conf.digest = hashlib.sha1(  # noqa: S324 - Proxmox's own digest
        text.encode("utf-8", errors="surrogateescape")
    ).hexdigest()
    reader = _Reader(conf)
    for line in text.split("\n"):
        if not line.strip(_PERL_SPACE):
            continue
        header = _header(line) if line.startswith("[") else None
        if header is not None:
            reader.open(header)
        else:
            reader.line(line)
    reader.flush()
    if "description" in conf.main:
        conf.main["description"] = conf.main["description"].rstrip("\n")
    if reader.pending_delete is not None:
        conf.pending_delete = parse_pending_delete(reader.pending_delete)
    return conf


def _header(line: str) -> str | None:
    """ "" for [pve:pending], the name for a snapshot section, None when no header."""
    if _PENDING.fullmatch(line):
        return ""
    m = _SNAPSHOT.fullmatch(line)
    return m.group(1) if m else None


def parse_features(text: str | None) -> tuple[dict[str, str], str | None]:
    """The `features` property string: (values, Proxmox's error or None). Booleans are "1"/"0"."""
    if not text:
        return {}, None
    values, problem = try_parse(text, FEATURES_FORMAT)
    return (values or {}), problem


def parse_device(text: str) -> tuple[dict[str, str], str | None]:
    """A `dev<N>` property string (path, mode, uid, gid, deny-write)."""
    values, problem = try_parse(text, DEV_FORMAT)
    return (values or {}), problem


# -- reading them from a host ---------------------------------------------------------------------


def ct_config_paths(host: Host, node: str | None, *, all_nodes: bool = False) -> list[str]:
    """The container configs of this node (`/etc/pve/lxc` is pmxcfs' link to its node's
    directory), or of every node with `all_nodes`."""
    out: dict[int, str] = {}
    dirs = [LXC_DIR]
    if all_nodes:
        dirs += [f"{NODES_DIR}/{n}/lxc" for n in sorted(host.listdir(NODES_DIR).names)]
    elif node:
        dirs.append(f"{NODES_DIR}/{node}/lxc")
    for hostdir in dirs:
        for name in host.listdir(hostdir).names:
            m = _CONF_NAME.fullmatch(name)
            if m:
                out.setdefault(int(m.group(1)), f"{hostdir}/{name}")
    return [out[k] for k in sorted(out)]


def read_ct_config(host: Host, hostpath: str, node: str | None) -> CtConfig:
    """One config through the Host door; an unreadable one is a config with its problem."""
    m = re.search(r"/(\d{3,9})\.conf$", hostpath, re.ASCII)
    vmid = int(m.group(1)) if m else 0
    read = host.read(hostpath)
    if not read.ok or read.text is None:
        conf = CtConfig(vmid=vmid, path=hostpath, node=node, readable=False)
        conf.problems.append(f"{hostpath}: {read.describe()}")
        return conf
    conf = parse_ct_config(read.text, vmid, hostpath)
    conf.node = node
    if m is not None and "/nodes/" in hostpath:
        conf.node = hostpath.split("/nodes/", 1)[1].split("/", 1)[0]
    return conf


def active_containers(host: Host) -> set[int] | None:
    """Running containers, as PVE::LXC::list_active_containers finds them: their lxc command
    sockets (`@/var/lib/lxc/<vmid>/command`) in /proc/net/unix. None: could not read it."""
    read = host.read("/proc/net/unix")
    if not read.ok or read.text is None:
        return None
    return {
        int(m.group(1))
        for m in re.finditer(r" @/var/lib/lxc/(\d{3,9})/command$", read.text, re.M | re.ASCII)
    }
