"""Findings, severities and verdicts: what every layer's rules produce and every renderer prints."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, NamedTuple


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Verdict(StrEnum):
    READY = "ready"
    NOT_READY = "not-ready"
    UNKNOWN = "unknown"


#: Documented exit codes: 0 ready, 1 problems found, 2 could not check (or usage error).
EXIT_CODES: dict[Verdict, int] = {Verdict.READY: 0, Verdict.NOT_READY: 1, Verdict.UNKNOWN: 2}


# Records are NamedTuples, not dataclasses: `nestctl host --json` must start in a few dozen
# milliseconds, and each dataclass costs about as much to create as a NamedTuple costs five times.


class Finding(NamedTuple):
    """One observation with a stable code, a plain message and the exact fix (if any).

    `undetermined` marks "could not check": such a finding makes the verdict unknown unless an
    error already makes it not-ready.
    """

    code: str
    severity: Severity
    message: str
    fix: str | None = None
    undetermined: bool = False

    def with_message(self, message: str) -> Finding:
        return self._replace(message=message)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
        }


def error(code: str, message: str, fix: str | None = None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix)


def warning(code: str, message: str, fix: str | None = None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix)


def info(code: str, message: str, fix: str | None = None) -> Finding:
    return Finding(code, Severity.INFO, message, fix)


def unknown(code: str, message: str, fix: str | None = None) -> Finding:
    """A "could not determine" finding: a warning that leaves the verdict unknown."""
    return Finding(code, Severity.WARNING, message, fix, undetermined=True)


def verdict_for(findings: Iterable[Finding]) -> Verdict:
    items = list(findings)
    if any(f.severity is Severity.ERROR for f in items):
        return Verdict.NOT_READY
    if any(f.undetermined for f in items):
        return Verdict.UNKNOWN
    return Verdict.READY


class Section(NamedTuple):
    """A titled block of facts for the human view: (label, value) rows."""

    title: str
    rows: tuple[tuple[str, str], ...]


class Report:
    """What a verb produces: the JSON body, findings, and the human view of the same facts.

    `payload` holds the verb's own keys (``{"host": {...}}``); the renderers add ``findings`` and
    ``verdict``. `verdict` may be set explicitly when a verb computes it itself. `summaries` words
    the verdict for people, e.g. ``{Verdict.READY: "nested virtualization is ready"}``.
    """

    def __init__(
        self,
        title: str,
        payload: dict[str, Any],
        findings: list[Finding] | None = None,
        sections: list[Section] | None = None,
        *,
        verdict: Verdict | None = None,
        summaries: dict[Verdict, str] | None = None,
    ) -> None:
        self.title = title
        self.payload = payload
        self.findings: list[Finding] = findings if findings is not None else []
        self.sections: list[Section] = sections if sections is not None else []
        self.verdict = verdict
        self.summaries: dict[Verdict, str] = summaries if summaries is not None else {}

    @property
    def final_verdict(self) -> Verdict:
        return self.verdict if self.verdict is not None else verdict_for(self.findings)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.final_verdict]

    def to_json(self) -> dict[str, Any]:
        body = dict(self.payload)
        body["findings"] = [f.to_json() for f in self.findings]
        body["verdict"] = self.final_verdict.value
        return body
