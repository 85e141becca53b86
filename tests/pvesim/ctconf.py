"""A container config in pve-container's on-disk format: read it, change it, write it back.

The simulator's own small reader (not nestctl's parser, so a parsing bug in nestctl cannot hide
behind the same bug here). It follows pve-container src/PVE/LXC/Config.pm (commit 94f5585):
`parse_pct_config` (`[pve:pending]`, snapshot sections, `lxc.*` raw keys kept in order as a list
of pairs, `lxc.environment.runtime` folded into `env`) and `write_pct_config` (description as `#`
lines, keys sorted, then the raw `lxc.*` lines, `[pve:pending]`, snapshots). The digest is the
SHA-1 of the text, as `parse_pct_config` computes it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from tests.pvesim.vmconf import encode_text

_PENDING = re.compile(r"\[pve:pending\]\s*", re.IGNORECASE)
_SECTION = re.compile(r"\[([a-z][a-z0-9_\-]+)\]\s*", re.IGNORECASE)
_RAW = re.compile(r"(lxc\.[a-z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*")
_KEY_VALUE = re.compile(r"([a-z][a-z_]*\d*):\s*(.+?)\s*")


@dataclass
class CtSection:
    values: dict[str, str] = field(default_factory=dict)
    lxc: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class CtConf:
    main: dict[str, str] = field(default_factory=dict)
    lxc: list[tuple[str, str]] = field(default_factory=list)  # raw lxc.* lines, in order
    pending: dict[str, str] = field(default_factory=dict)
    pending_delete: dict[str, bool] = field(default_factory=dict)
    sections: dict[str, CtSection] = field(default_factory=dict)  # snapshots
    raw: str | None = None

    @property
    def text(self) -> str:
        if self.raw is None:
            self.raw = write_ct_conf(self)
        return self.raw

    def touch(self) -> None:
        self.raw = None

    @property
    def digest(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()

    def effective(self) -> dict[str, str]:
        out = dict(self.main)
        out.update(self.pending)
        for key in self.pending_delete:
            out.pop(key, None)
        return out

    def apply_pending(self) -> None:
        """What a container start does (vmconfig_apply_pending)."""
        self.main = self.effective()
        self.pending.clear()
        self.pending_delete.clear()
        self.touch()


def parse_ct_conf(text: str) -> CtConf:
    conf = CtConf()
    values, raw_lines = conf.main, conf.lxc
    pending = False
    descr: list[str] = []

    def flush_description() -> None:
        if descr:
            values["description"] = "".join(descr)
            descr.clear()

    for line in text.split("\n"):
        if not line.strip():
            continue
        if _PENDING.fullmatch(line):
            flush_description()
            values, raw_lines, pending = conf.pending, [], True
            continue
        m = _SECTION.fullmatch(line)
        if m:
            flush_description()
            section = conf.sections.setdefault(m.group(1), CtSection())
            values, raw_lines, pending = section.values, section.lxc, False
            continue
        if line.startswith("#"):
            descr.append(unquote(line[1:]) + "\n")
            continue
        raw = _RAW.fullmatch(line)
        if raw:
            key, value = raw.group(1), raw.group(2)
            if key == "lxc.environment.runtime":
                values["env"] = values["env"] + "\0" + value if "env" in values else value
            else:
                raw_lines.append((key, value))
            continue
        kv = _KEY_VALUE.fullmatch(line)
        if kv is None:
            continue  # pve-container warns and skips the line
        key, value = kv.group(1), kv.group(2)
        if key == "delete":
            if pending:
                for item in re.split(r"[,;\s]+", value):
                    if item:
                        conf.pending_delete[item.lstrip("!")] = item.startswith("!")
            continue
        values[key] = value
    flush_description()
    if "description" in conf.main:
        conf.main["description"] = conf.main["description"].rstrip("\n")
    conf.raw = text
    return conf


def _raw(values: dict[str, str], lxc: list[tuple[str, str]]) -> str:
    out = ["#" + encode_text(line) for line in values.get("description", "").split("\n") if line]
    out += [f"{k}: {values[k]}" for k in sorted(values) if k not in ("description", "env", "lxc")]
    out += [f"lxc.environment.runtime: {v}" for v in values.get("env", "").split("\0") if v]
    out += [f"{k}: {v}" for k, v in lxc]
    return "".join(line + "\n" for line in out)


def write_ct_conf(conf: CtConf) -> str:
    raw = _raw(conf.main, conf.lxc)
    if conf.pending or conf.pending_delete:
        pending = dict(conf.pending)
        if conf.pending_delete:
            pending["delete"] = ",".join(
                ("!" if force else "") + key for key, force in conf.pending_delete.items()
            )
        raw += "\n[pve:pending]\n" + _raw(pending, [])
    for name in sorted(conf.sections):
        section = conf.sections[name]
        raw += f"\n[{name}]\n" + _raw(section.values, section.lxc)
    return raw
