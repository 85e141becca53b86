"""Renderers: JSON is the same object whatever its layout; text names verdict, facts and fixes."""

from __future__ import annotations

import io
import json

from nestctl.findings import Report, Section, Verdict, error, info, unknown, warning
from nestctl.render.jsonout import dumps_report, render_json
from nestctl.render.text import render_text


def test_json_layout_is_the_same_object_one_item_per_line() -> None:
    body = {"vms": [{"name": "wïn", "n": [1, {"a": None}]}], "findings": [], "verdict": "ready"}
    text = dumps_report(body)
    assert json.loads(text) == body
    assert text.splitlines()[2].startswith('    {"name": "w\\u00efn"')


def test_report_json_adds_findings_and_verdict() -> None:
    report = Report("host", {"host": {"vendor": "intel"}}, [error("x.y", "broken", "fix it")])
    out = io.StringIO()
    render_json(report, out)
    data = json.loads(out.getvalue())
    assert data == {
        "host": {"vendor": "intel"},
        "findings": [{"code": "x.y", "severity": "error", "message": "broken", "fix": "fix it"}],
        "verdict": "not-ready",
    }


def test_verdict_rules() -> None:
    assert Report("t", {}, [info("a", "note"), warning("b", "meh")]).final_verdict is Verdict.READY
    assert Report("t", {}, [unknown("c", "?")]).exit_code == 2
    assert Report("t", {}, [unknown("c", "?"), error("d", "!")]).exit_code == 1
    assert Report("t", {}, [], verdict=Verdict.UNKNOWN).exit_code == 2


def test_text_puts_the_verdict_first_then_facts_then_errors_before_notes() -> None:
    report = Report(
        "host",
        {},
        [info("n.note", "a note"), error("e.err", "it is off", "nestctl host enable")],
        [Section("KVM", (("module", "kvm_intel"),))],
        summaries={Verdict.NOT_READY: "not ready"},
    )
    out = io.StringIO()
    render_text(report, out)
    text = out.getvalue()
    assert text.splitlines()[0] == "NOT READY  host: not ready"
    assert "module  kvm_intel" in text or "module kvm_intel" in text
    assert text.index("e.err") < text.index("n.note")
    assert "fix: nestctl host enable" in text
    assert "\x1b[" not in text  # no colour when not a terminal


def test_text_escapes_rich_markup_in_messages() -> None:
    report = Report("vm", {}, [warning("w", "args: [bold]-cpu host[/bold]")])
    out = io.StringIO()
    render_text(report, out)
    assert "[bold]-cpu host[/bold]" in out.getvalue()
