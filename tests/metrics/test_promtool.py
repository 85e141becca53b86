"""Prometheus's own linter and rule tester on what nestctl writes and ships."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.metrics.catalogue import CATALOGUE
from nestctl.metrics.exporter import render_page
from nestctl.metrics.report import report_families
from nestctl.metrics.run import run_families
from tests.metrics.tools import CONTRIB, cluster_body, lab_node, linux_guest, promtool, vm_obj
from tests.skips import give_up

RULES = CONTRIB / "prometheus" / "nestctl-alerts.yml"
RULES_TEST = CONTRIB / "prometheus" / "nestctl-alerts.test.yml"
DASHBOARD = CONTRIB / "grafana" / "nestctl.json"
#: Families of other exporters the shipped files may join with.
FOREIGN = {"pve_guest_info"}


def test_textfile_output_passes_promtool(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(
        cli,
        ["metrics", "--textfile", str(out), "--root", str(lab_node(tmp_path / "r")), "--no-qemu"],
    )
    assert result.exit_code == 0, result.output
    text = (out / "nestctl.prom").read_text()
    assert "nestctl_vm_nested_exposed" in text
    assert promtool("check", "metrics", stdin=text).strip() == ""


def test_exporter_output_passes_promtool() -> None:
    body = cluster_body()
    body["vms"].append(vm_obj(300, "pve1", guest=linux_guest()))
    fam = report_families(body, guests=True)
    run_families(fam, ok=True, duration=0.5, last_success=1.7e9)
    page, _ = render_page(fam)
    text = page.decode()
    assert "nestctl_guest_kvm_usable" in text
    assert promtool("check", "metrics", stdin=text).strip() == ""


def test_rules_pass_promtool_and_each_alert_fires() -> None:
    assert "SUCCESS: 4 rules found" in promtool("check", "rules", str(RULES))
    promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    alerts = set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.M))
    assert alerts == {
        "NestctlVmCannotNest",
        "NestctlHostNestedChangesAtReboot",
        "NestctlRestartPending",
        "NestctlMetricsStale",
    }
    # Each alert has a test case in which it fires (a non-empty exp_alerts list).
    firing = set(
        re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", RULES_TEST.read_text())
    )
    assert firing == alerts


def _metric_names(text: str) -> set[str]:
    return set(re.findall(r"\b(nestctl_[a-z_]+|pve_[a-z_]+)\b", text))


def test_rules_and_dashboard_use_only_real_families() -> None:
    for path in (RULES, RULES_TEST, DASHBOARD):
        used = _metric_names(path.read_text()) - FOREIGN
        assert used, path
        unknown = used - set(CATALOGUE)
        assert not unknown, f"{path.name}: {sorted(unknown)}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every panel query, as a recording rule, through promtool's PromQL parser."""
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    queries = [json.dumps(e.replace("$instance", ".*")) for e in exprs]
    rules = "groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard:query{i}\n        expr: {q}\n" for i, q in enumerate(queries)
    )
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(rules)
    assert f"SUCCESS: {len(exprs)} rules found" in promtool("check", "rules", str(path))


def test_dashboard_has_one_row_per_layer() -> None:
    dash = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert [r.split(" ")[0] for r in rows] == ["Run", "Host", "VM", "Guest", "Nesting"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            assert target["expr"].strip()


def test_systemd_units_run_nestctl() -> None:
    units = {p.name: p.read_text() for p in (CONTRIB / "systemd").iterdir()}
    assert set(units) == {
        "nestctl-metrics.service",
        "nestctl-metrics.timer",
        "nestctl-exporter.service",
        "nestctl-watch.service",
    }
    assert "ExecStart=/usr/bin/nestctl metrics --textfile " in units["nestctl-metrics.service"]
    assert "Type=oneshot" in units["nestctl-metrics.service"]
    assert "OnUnitActiveSec=" in units["nestctl-metrics.timer"]
    assert "ExecStart=/usr/bin/nestctl exporter" in units["nestctl-exporter.service"]
    assert "ExecStart=/usr/bin/nestctl watch " in units["nestctl-watch.service"]
    assert "StateDirectory=nestctl" in units["nestctl-watch.service"]
    # Alerting says stale after 15 minutes: the timer must run far more often.
    every = re.search(r"OnUnitActiveSec=(\d+)min", units["nestctl-metrics.timer"])
    assert every is not None
    assert int(every.group(1)) <= 5


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` (Debian package systemd; scripts/install-debian-deps)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        give_up("systemd-analyze not installed (Debian package systemd)")
    units = []
    for path in sorted((CONTRIB / "systemd").iterdir()):
        copy = tmp_path / path.name  # verify wants ExecStart= to exist: point it at true(1)
        copy.write_text(path.read_text().replace("/usr/bin/nestctl", "/bin/true"))
        units.append(str(copy))
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unknown" not in done.stderr, done.stderr
