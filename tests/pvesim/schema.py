"""Proxmox's API schema (../shared/reference/pve-api-schema.json), read at run time.

Routes a request to its method description (or to 501), and checks parameters the way
PVE::JSONSchema::validate does: an undefined parameter, a wrong type, a value outside its enum,
range, length or pattern, or a bad format each give one entry in the per-parameter `errors` object.
Texts follow pve-common; only format errors end in a newline (pve-api-facts.md).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import SHARED

SCHEMA_PATH = SHARED / "reference" / "pve-api-schema.json"

#: How many of each `name[n]` key qemu-server allows (QemuServer.pm MAX_* constants).
INDEXED_MAX = {
    "net": 32,
    "ide": 4,
    "sata": 6,
    "scsi": 31,
    "virtio": 16,
    "hostpci": 16,
    "usb": 14,
    "serial": 4,
    "parallel": 3,
    "numa": 8,
    "unused": 256,
    "ipconfig": 32,
    "virtiofs": 10,
}

#: Parameters the reference copy lost when its descriptions were stripped (every key named
#: `description` went, the snapshot's `description` *parameter* with them). Restored from the
#: sources: qemu-server src/PVE/API2/Qemu.pm (e6352be) `snapshot`, `update_snapshot_config`;
#: pve-container src/PVE/API2/LXC/Snapshot.pm (94f5585) the same two.
RESTORED: dict[tuple[str, str], dict[str, Any]] = {
    (method, f"/nodes/{{node}}/{kind}/{{vmid}}/snapshot{tail}"): {
        "description": {"type": "string", "optional": 1}
    }
    for kind in ("qemu", "lxc")
    for method, tail in (("POST", ""), ("PUT", "/{snapname}/config"))
}

Param = str | list[str]
_UNDEFINED = "property is not defined in schema and the schema does not allow additional properties"


@dataclass(frozen=True)
class Route:
    """One method of one schema path, with the values its `{placeholders}` took."""

    template: str  # "/nodes/{node}/qemu/{vmid}/config"
    method: str
    spec: Mapping[str, Any]
    uri_params: Mapping[str, str]

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.spec.get("parameters", {}).get("properties", {}) or {}

    @property
    def permissions(self) -> Mapping[str, Any]:
        return self.spec.get("permissions", {}) or {}

    @property
    def proxyto(self) -> str | None:
        value = self.spec.get("proxyto")
        return value if isinstance(value, str) else None


class Schema:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.paths: Mapping[str, Mapping[str, Any]] = data["paths"]
        for (method, template), props in RESTORED.items():
            spec = self.paths.get(template, {}).get(method)
            if spec is not None:
                spec.setdefault("parameters", {}).setdefault("properties", {}).update(props)
        self._routes: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = []
        for template in self.paths:
            names = tuple(re.findall(r"\{([^}]+)\}", template))
            regex = re.escape(template)
            for name in names:
                regex = regex.replace(re.escape("{" + name + "}"), "([^/]+)")
            self._routes.append((re.compile(regex), template, names))
        # Literal paths win over placeholders (`/cluster/firewall/rules` vs `{group}`).
        self._routes.sort(key=lambda r: (r[1].count("{"), r[1]))

    @classmethod
    def load(cls, path: Path = SCHEMA_PATH) -> Schema:
        if not path.is_file():
            raise FileNotFoundError(
                f"pvesim reads Proxmox's API schema from {path}: not found (the shared/ "
                "directory beside the clone holds it)"
            )
        return cls(json.loads(path.read_text()))

    def route(self, method: str, path: str) -> Route | None:
        """The schema method serving `method path`, or None (Proxmox answers 501)."""
        for regex, template, names in self._routes:
            m = regex.fullmatch(path)
            if m and method in self.paths[template]:
                return Route(
                    template,
                    method,
                    self.paths[template][method],
                    dict(zip(names, m.groups(), strict=True)),
                )
        return None

    def returns(self, template: str, method: str = "GET") -> Mapping[str, Any]:
        return self.paths[template][method].get("returns", {}) or {}


def property_for(properties: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The schema entry for `name`, resolving `net0` to `net[n]` within qemu-server's limits."""
    if name in properties:
        return properties[name]  # type: ignore[no-any-return]
    m = re.fullmatch(r"([a-z]+)(\d+)", name)
    if m and f"{m.group(1)}[n]" in properties:
        limit = INDEXED_MAX.get(m.group(1))
        if limit is None or int(m.group(2)) < limit:
            return properties[f"{m.group(1)}[n]"]  # type: ignore[no-any-return]
    return None


def validate(route: Route, params: Mapping[str, Param]) -> dict[str, str]:
    """Per-parameter errors, empty when Proxmox would accept the call."""
    errors: dict[str, str] = {}
    props = route.properties
    additional = route.spec.get("parameters", {}).get("additionalProperties", 0)
    for name, value in params.items():
        prop = property_for(props, name)
        if prop is None:
            if not additional:
                errors[name] = _UNDEFINED
            continue
        problem = check_value(prop, value)
        if problem:
            errors[name] = problem
    for name, prop in props.items():
        if "[n]" in name or prop.get("optional") or name in params:
            continue
        errors[name] = "property is missing and it is not optional"
    for name, prop in props.items():
        needed = prop.get("requires")
        if name in params and isinstance(needed, str) and needed not in params:
            errors[needed] = f"parameter '{needed}' is required by '{name}'"  # pve-common text
    return errors


def check_value(prop: Mapping[str, Any], value: Param) -> str | None:
    kind = prop.get("type", "string")
    if kind == "array":
        items = value if isinstance(value, list) else [value]
        for item in items:
            problem = check_value(prop.get("items", {}), item)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        if len(value) != 1:
            return f"type check ('{kind}') failed - got ARRAY"
        value = value[0]
    return _check_scalar(prop, kind, value)


def _check_scalar(prop: Mapping[str, Any], kind: str, value: str) -> str | None:
    if kind == "boolean":
        if not re.fullmatch(r"(?i)(1|0|true|false|yes|no|on|off)", value):
            return f"type check ('boolean') failed - got '{value}'"
        return None
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", value):
            return f"type check ('integer') failed - got '{value}'"
        return _check_range(prop, int(value))
    if kind == "number":
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", value):
            return f"type check ('number') failed - got '{value}'"
        return _check_range(prop, float(value))
    return _check_string(prop, value)


def _check_range(prop: Mapping[str, Any], number: float) -> str | None:
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and number < float(low):
        return f"value must have a minimum value of {low}"
    if high is not None and number > float(high):
        return f"value must have a maximum value of {high}"
    fmt = prop.get("format")
    if fmt == "pve-vmid" and not 100 <= number <= 999999999:
        return "invalid format - value does not look like a valid VM ID\n"
    return None


def _check_string(prop: Mapping[str, Any], value: str) -> str | None:
    if "maxLength" in prop and len(value) > int(prop["maxLength"]):
        return f"value may only be {prop['maxLength']} characters long"
    if "minLength" in prop and len(value) < int(prop["minLength"]):
        return f"value must be at least {prop['minLength']} characters long"
    enum = prop.get("enum")
    if enum is not None and value not in enum:
        return f"value '{value}' does not have a value in the enumeration '{', '.join(enum)}'"
    pattern = prop.get("pattern")
    if pattern is not None and not re.fullmatch(perl_regex(pattern), value):
        return "value does not match the regex pattern"
    fmt = prop.get("format")
    if isinstance(fmt, dict):
        return _check_property_string(fmt, value)
    if isinstance(fmt, str):
        problem = check_format(fmt, value)
        if problem:
            return f"invalid format - {problem}\n"
    return None


def perl_regex(pattern: str) -> str:
    """A Perl pattern from the schema as Python's re reads it: `(?^:...)` is a plain group."""
    return pattern.replace("(?^:", "(?:").replace("(?^i:", "(?i:")


_CONFIGID = re.compile(r"[a-z][a-z0-9_\-]+", re.ASCII)
_NODE = re.compile(r"(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?", re.ASCII)
_CPU_MODEL = re.compile(r"[a-zA-Z0-9\-_.]+|custom-[a-zA-Z0-9\-_.]+", re.ASCII)
_CPU_FLAGS = re.compile(r"(?:[+-][a-zA-Z0-9\-_.]+)(?:;[+-][a-zA-Z0-9\-_.]+)*", re.ASCII)
_CPU_KEYS = {"cputype", "flags", "hidden", "hv-vendor-id", "phys-bits", "reported-model"}


def check_format(fmt: str, value: str) -> str | None:
    """The named formats nestctl's requests use; others are accepted (not a guess at a refusal)."""
    if fmt == "pve-node":
        return None if _NODE.fullmatch(value) else "value does not look like a valid node name"
    if fmt == "pve-vmid":
        return None if re.fullmatch(r"\d+", value) else "value does not look like a valid VM ID"
    if fmt == "pve-configid":
        return None if _CONFIGID.fullmatch(value) else f"invalid configuration ID '{value}'"
    if fmt == "pve-configid-list":
        for item in re.split(r"[,;\s]+", value.strip()):
            if item and not _CONFIGID.fullmatch(item.lstrip("!")):
                return f"invalid configuration ID '{item}'"
        return None
    if fmt == "pve-vm-cpu-conf":
        return _check_cpu(value)
    if fmt in ("IPorCIDR", "CIDR"):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return "value does not look like a valid IP address or CIDR network"
        return None
    return None


def _check_cpu(value: str) -> str | None:
    """`cpu:` is `[cputype=]MODEL[,flags=+a;-b][,hidden=1]...` (CPUConfig.pm $cpu_fmt)."""
    for i, part in enumerate(value.split(",")):
        key, sep, val = part.partition("=")
        if not sep:
            if i != 0:
                return f"format error\n{key}: missing key in comma-separated list property"
            key, val = "cputype", part
        if key not in _CPU_KEYS:
            return f"format error\n{key}: {_UNDEFINED}"
        if key == "cputype" and not _CPU_MODEL.fullmatch(val):
            return "format error\ncputype: value does not look like a valid CPU model"
        if key == "flags" and not _CPU_FLAGS.fullmatch(val):
            return "format error\nflags: value does not match the regex pattern"
    return None


def _check_property_string(fmt: Mapping[str, Any], value: str) -> str | None:
    """A `key=value,...` string against its sub-schema (PVE::JSONSchema::parse_property_string)."""
    for part in value.split(","):
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep:
            continue  # the default key's value; which key that is the schema copy does not say
        sub = fmt.get(key)
        if sub is None:
            return f"invalid format - format error\n{key}: {_UNDEFINED}\n"
        if not sub or "keyAlias" in sub or "alias" in sub:
            continue
        problem = check_value(sub, val)
        if problem:
            return f"invalid format - format error\n{key}: {problem.rstrip()}\n"
    return None


def return_problems(returns: Mapping[str, Any], value: Any, where: str = "data") -> list[str]:
    """Where a response strays from the schema's `returns` (types of the keys it defines).

    null counts as absent (real servers send `clipboard: null`); booleans may be 0/1, as Perl
    sends them.
    """
    if value is None or not returns:
        return []
    kind = returns.get("type")
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        items = returns.get("items", {})
        return [p for i, v in enumerate(value) for p in return_problems(items, v, f"{where}[{i}]")]
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        props = returns.get("properties", {}) or {}
        out = []
        for key, sub in props.items():
            if key in value:
                out += return_problems(sub, value[key], f"{where}.{key}")
            elif not sub.get("optional") and returns.get("additionalProperties", 1) == 0:
                out.append(f"{where}.{key}: missing")
        return out
    checks = {
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: v in (0, 1),
        "string": lambda v: isinstance(v, str),
    }
    check = checks.get(str(kind))
    if check is not None and not check(value):
        return [f"{where}: expected {kind}, got {value!r}"]
    enum = returns.get("enum")
    if enum is not None and value not in enum:
        return [f"{where}: {value!r} is not one of {enum}"]
    return []
