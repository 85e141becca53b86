"""Named API targets from `~/.config/nestctl/config.toml` (or `$XDG_CONFIG_HOME`, or --config).

    [targets.outer]
    url = "https://192.0.2.10:8006"
    token_file = "/root/.config/nestctl/outer.token"   # or: user = "root@pam" + password_file
    fingerprint = "AA:BB:...:FF"
    [targets.inner]
    url = "https://192.0.2.50:8006"
    token_file = "/root/.config/nestctl/inner.token"
    parent = "outer/101"        # this Proxmox runs inside VM 101 of target "outer"

An invalid file is one error listing every problem with its file and line. Secrets never live
in this file: it names the files that hold them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Keys a target table may have, and their meaning (for the "unknown key" message).
KEYS = {
    "url": "the API URL, https://HOST:8006",
    "token_file": "file holding USER@REALM!ID=SECRET",
    "user": "USER@REALM for a ticket login",
    "password_file": "file holding the password (with user)",
    "fingerprint": "SHA-256 of the node's certificate (pvenode cert info)",
    "ca_file": "CA bundle to verify the certificate with",
    "parent": "TARGET/VMID: the VM this Proxmox runs in",
    "ssh": "true: read what the API cannot (the nested module parameter) over SSH as root",
    "prometheus": "a Prometheus URL whose nestctl_host_nested_enabled series give each node's "
    "nested value",
    "intent_tag": "the Proxmox tag that marks VMs meant to nest (default: nested)",
}
_TAG = re.compile(r"[a-z0-9_][a-z0-9_+.-]*", re.ASCII | re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
_HEADER = re.compile(r"\[([^\[\]]*)\][ \t]*(?:#.*)?", re.ASCII)
_KEY = re.compile(r"([A-Za-z0-9_\-\"'.]+)[ \t]*=", re.ASCII)
_PARENT = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*)/([1-9][0-9]{2,8})", re.ASCII)


class TargetConfigError(ValueError):
    """The config file cannot be used: `problems` lists each, as `FILE:LINE: text`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid config file:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    token_file: str | None = None
    user: str | None = None
    password_file: str | None = None
    fingerprint: str | None = None
    ca_file: str | None = None
    parent: tuple[str, int] | None = None
    ssh: bool = False
    prometheus: str | None = None
    intent_tag: str | None = None


#: Tables other commands read from the same file (each checks its own): `nestctl watch`'s.
OTHER_TABLES = frozenset({"watch"})

#: Far more than any list of clusters; a larger file is not a config someone wrote.
MAX_CONFIG_BYTES = 1024 * 1024


def config_path(environ: Mapping[str, str], override: str | None = None) -> Path:
    if override:
        return Path(override)
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME") or "~", ".config")
    return Path(os.path.expanduser(base)) / "nestctl" / "config.toml"


def load_targets(path: Path, *, required: bool = False) -> dict[str, Target]:
    """The targets in `path` ({} when it does not exist, unless `required`)."""
    import tomllib  # noqa: PLC0415 - only when targets are used

    from nestctl.userfile import UserFileError, read_user_file  # noqa: PLC0415

    try:
        raw = read_user_file(path, MAX_CONFIG_BYTES, what="config file")
    except FileNotFoundError:
        if required:
            raise TargetConfigError([f"{path}: no such file"]) from None
        return {}
    except UserFileError as exc:
        raise TargetConfigError([str(exc)]) from None
    try:
        text = raw.decode("utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise TargetConfigError([f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends "(at line L, column C)": keep it, it is the location.
        raise TargetConfigError([f"{path}: {exc}"]) from None
    except RecursionError:  # tomllib recurses into nested inline arrays and tables
        raise TargetConfigError([f"{path}: nested too deeply to be a targets file"]) from None
    return _targets(doc, text, path)


def _targets(doc: dict[str, Any], text: str, path: Path) -> dict[str, Target]:
    lines = _Lines(text, path)
    problems: list[str] = []
    for key in doc:
        if key not in OTHER_TABLES and key != "targets":
            problems.append(f"{lines.at(key)}: unknown table or key {key!r} (only [targets.NAME])")
    tables = doc.get("targets", {})
    if not isinstance(tables, dict):
        problems.append(f"{lines.at('targets')}: 'targets' must be a table of [targets.NAME]")
        tables = {}
    out: dict[str, Target] = {}
    for name, table in tables.items():
        where = f"targets.{name}"
        if not _NAME.fullmatch(name):
            problems.append(f"{lines.at(where)}: target name {name!r}: use letters, digits, .-_")
        if not isinstance(table, dict):
            problems.append(f"{lines.at(where)}: [targets.{name}] must be a table")
            continue
        target = _target(name, table, lines, problems)
        if target is not None:
            out[name] = target
    for target in out.values():
        if target.parent and target.parent[0] not in out:
            problems.append(
                f"{lines.at(f'targets.{target.name}', 'parent')}: parent target "
                f"{target.parent[0]!r} is not defined in this file"
            )
    if problems:
        raise TargetConfigError(problems)
    return out


def _target(name: str, table: dict[str, Any], lines: _Lines, problems: list[str]) -> Target | None:
    where = f"targets.{name}"
    before = len(problems)
    for key, value in table.items():
        if key not in KEYS:
            known = ", ".join(sorted(KEYS))
            problems.append(f"{lines.at(where, key)}: unknown key {key!r} (known: {known})")
        elif key == "ssh":
            if not isinstance(value, bool):
                problems.append(f"{lines.at(where, key)}: 'ssh' must be true or false")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{lines.at(where, key)}: {key!r} must be a non-empty string")
    if "url" not in table:
        problems.append(f"{lines.at(where)}: [targets.{name}] has no 'url'")
    if "token_file" in table and ("user" in table or "password_file" in table):
        problems.append(
            f"{lines.at(where, 'token_file')}: use either token_file or user + password_file"
        )
    problems += _check_intent_and_prometheus(table, lines, where)
    if "password_file" in table and "user" not in table:
        problems.append(f"{lines.at(where, 'password_file')}: password_file needs 'user'")
    problems += _check_values(table, lines.at(where, "url"), lines.at(where, "fingerprint"))
    parent = None
    if isinstance(table.get("parent"), str):
        m = _PARENT.fullmatch(table["parent"])
        if m is None:
            problems.append(f"{lines.at(where, 'parent')}: parent must be TARGET/VMID")
        else:
            parent = (m.group(1), int(m.group(2)))
    if len(problems) > before:
        return None
    return Target(
        name=name,
        url=table["url"],
        token_file=table.get("token_file"),
        user=table.get("user"),
        password_file=table.get("password_file"),
        fingerprint=table.get("fingerprint"),
        ca_file=table.get("ca_file"),
        parent=parent,
        ssh=bool(table.get("ssh", False)),
        prometheus=table.get("prometheus"),
        intent_tag=table.get("intent_tag"),
    )


def _check_intent_and_prometheus(table: dict[str, Any], lines: _Lines, where: str) -> list[str]:
    problems = []
    tag = table.get("intent_tag")
    if isinstance(tag, str) and tag.strip() and not _TAG.fullmatch(tag):
        problems.append(f"{lines.at(where, 'intent_tag')}: {tag!r} is not a Proxmox tag name")
    prom = table.get("prometheus")
    if isinstance(prom, str) and not prom.startswith(("http://", "https://")):
        problems.append(f"{lines.at(where, 'prometheus')}: 'prometheus' must be an http(s) URL")
    return problems


def _check_values(table: dict[str, Any], url_at: str, fp_at: str) -> list[str]:
    from nestctl.api.client import base_url  # noqa: PLC0415
    from nestctl.api.tls import normalize_fingerprint  # noqa: PLC0415

    problems = []
    if isinstance(table.get("url"), str):
        try:
            base_url(table["url"])
        except ValueError as exc:
            problems.append(f"{url_at}: {exc}")
    if isinstance(table.get("fingerprint"), str):
        try:
            normalize_fingerprint(table["fingerprint"])
        except ValueError as exc:
            problems.append(f"{fp_at}: {exc}")
    return problems


class _Lines:
    """`FILE:LINE` of a table header or of a key inside it (tomllib keeps no positions)."""

    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        self.index: dict[tuple[str, str | None], int] = {}
        table = ""
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            header = _HEADER.fullmatch(stripped)
            if header:
                table = ".".join(p.strip().strip("\"'") for p in header.group(1).split("."))
                self.index.setdefault((table, None), number)
                continue
            key = _KEY.match(stripped)
            if key:
                name = key.group(1).strip("\"'")
                self.index.setdefault((table, name), number)
                if not table:
                    self.index.setdefault((name, None), number)

    def at(self, table: str, key: str | None = None) -> str:
        number = self.index.get((table, key)) or self.index.get((table, None))
        return f"{self.path}:{number}" if number else str(self.path)
