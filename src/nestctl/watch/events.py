"""An event: one cause, with a stable key, that is either active or not at a poll."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nestctl.findings import Severity

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


def rank(severity: Severity) -> int:
    return _RANK[severity]


@dataclass(frozen=True)
class Event:
    """One active condition. `key` is stable across polls (one event per cause, not per poll)."""

    key: str  # e.g. "node.offline:outer:pve3"
    code: str  # e.g. "node.offline" (documented in docs/watch.md)
    severity: Severity
    target: str
    path: str  # the layer path (paths.py)
    what: str  # one plain sentence
    fix: str | None = None
    details: tuple[str, ...] = ()  # e.g. a failed task's last log lines
    security: bool = False  # fires at once, never held down, never in quiet hours
    page: str | None = None  # the dashboard page, relative ("/node/pve1?target=outer")
    node: str | None = None
    vmid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "code": self.code,
            "severity": self.severity.value,
            "target": self.target,
            "path": self.path,
            "what": self.what,
            "fix": self.fix,
            "details": list(self.details),
            "security": self.security,
            "page": self.page,
            "node": self.node,
            "vmid": self.vmid,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Event:
        return cls(
            key=str(body["key"]),
            code=str(body["code"]),
            severity=Severity(body["severity"]),
            target=str(body["target"]),
            path=str(body["path"]),
            what=str(body["what"]),
            fix=body.get("fix") if isinstance(body.get("fix"), str) else None,
            details=tuple(str(d) for d in body.get("details") or ()),
            security=bool(body.get("security")),
            page=body.get("page") if isinstance(body.get("page"), str) else None,
            node=body.get("node") if isinstance(body.get("node"), str) else None,
            vmid=body.get("vmid") if isinstance(body.get("vmid"), int) else None,
        )


@dataclass
class Evaluation:
    """What the rules found at one poll: the active events, and the keys whose state could not
    be seen this time (kept as they were: unknown is never "resolved")."""

    events: list[Event] = field(default_factory=list)
    unseen: set[str] = field(default_factory=set)  # patterns, see `covered`

    def hides(self, key: str) -> bool:
        return any(covered(key, pattern) for pattern in self.unseen)


def covered(key: str, pattern: str) -> bool:
    """Whether `pattern` covers `key`: both are `code:target[:node[:...]]`; `*` matches any
    code, and a pattern covers every key that extends it ("*:outer:pve3" covers
    "vm.stopped:outer:pve3:301")."""
    parts = key.split(":")
    for i, want in enumerate(p for p in pattern.split(":") if p != ""):
        if i >= len(parts) or (want != "*" and want != parts[i]):
            return False
    return True
