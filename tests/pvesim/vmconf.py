"""A VM config in qemu-server's on-disk format: read it, change it, write it back as Proxmox does.

The simulator keeps its own small reader rather than nestctl's parser, so a parsing bug in
nestctl cannot hide behind the same bug in the server it is tested against. The writer follows
PVE::QemuServer::write_vm_config (description as `#` lines, keys sorted, [PENDING], snapshots), and
the digest is the SHA-1 of the text, so a change made by anyone changes it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

_SECTION = re.compile(r"\[([^\]]+)\]\s*")
_KEY_VALUE = re.compile(r"([a-z][a-z_\-]*\d*):\s*(.+?)\s*")  # Perl: a value has a character


@dataclass
class VmConf:
    main: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    pending_delete: dict[str, bool] = field(default_factory=dict)  # key -> force
    sections: dict[str, dict[str, str]] = field(default_factory=dict)  # snapshots, special:*
    raw: str | None = None  # the file as read; None once changed (then written as Proxmox does)

    @property
    def text(self) -> str:
        if self.raw is None:
            self.raw = write_conf(self)
        return self.raw

    def touch(self) -> None:
        """Call after every change: the file is rewritten, so the digest changes."""
        self.raw = None

    @property
    def digest(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()

    def effective(self) -> dict[str, str]:
        """The config with pending values applied (what GET config shows without current=1)."""
        out = dict(self.main)
        out.update(self.pending)
        for key in self.pending_delete:
            out.pop(key, None)
        return out

    def apply_pending(self) -> None:
        """What a cold start does (vmconfig_apply_pending)."""
        self.main = self.effective()
        self.pending.clear()
        self.pending_delete.clear()
        self.touch()

    def enabled(self, key: str) -> bool:
        """A boolean-ish property string's first value (`agent: 1,fstrim...`)."""
        value = self.main.get(key, "")
        first = value.split(",")[0]
        if first.startswith("enabled="):
            first = first.split("=", 1)[1]
        return first in ("1", "on", "yes", "true")


def parse_conf(text: str) -> VmConf:
    conf = VmConf()
    target = conf.main
    descr: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        m = _SECTION.fullmatch(line)
        if m:
            name = m.group(1)
            if name.upper() == "PENDING":
                target = conf.pending
            else:
                target = conf.sections.setdefault(name, {})
            continue
        if line.startswith("#"):
            if target is conf.main:
                descr.append(unquote(line[1:]))
            continue
        kv = _KEY_VALUE.fullmatch(line)
        if kv is None:
            continue  # Proxmox warns and skips the line
        key, value = kv.group(1), kv.group(2)
        if key == "delete" and target is conf.pending:
            for item in re.split(r"[,;\s]+", value):
                if item:
                    conf.pending_delete[item.lstrip("!")] = item.startswith("!")
            continue
        target["ide2" if key == "cdrom" else key] = value
    if descr:
        conf.main["description"] = "\n".join(descr)
    conf.raw = text
    return conf


def encode_text(text: str) -> str:
    """PVE::Tools::encode_text: control, non-ASCII bytes and ':' as %XX."""
    return "".join(
        chr(b) if 0x20 <= b <= 0x7E and b != 0x3A else f"%{b:02X}" for b in text.encode()
    )


def _raw(values: dict[str, str], *, pending: bool = False) -> str:
    out = []
    descr = values.get("description")
    if descr is not None:
        if descr:
            out += ["#" + encode_text(line) for line in descr.split("\n")]
        elif pending:
            out.append("#")
    out += [f"{k}: {values[k]}" for k in sorted(values) if k != "description"]
    return "".join(line + "\n" for line in out)


def write_conf(conf: VmConf) -> str:
    raw = _raw(conf.main)
    if conf.pending or conf.pending_delete:
        pending = dict(conf.pending)
        if conf.pending_delete:
            pending["delete"] = ",".join(
                ("!" if force else "") + key for key, force in conf.pending_delete.items()
            )
        raw += "\n[PENDING]\n" + _raw(pending, pending=True)
    for name in sorted(conf.sections):
        raw += f"\n[{name}]\n" + _raw(conf.sections[name])
    return raw
