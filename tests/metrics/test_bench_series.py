"""`nestctl_bench_ratio` end to end: saved `nestctl bench --save` results under --root reach the
textfile and the exporter through the real bench feed (no stand-in module)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.metrics.exporter import Exporter
from nestctl.metrics.sources import local_check
from tests.bench.recorded import saved_lab
from tests.metrics.tools import lab_node, names, parse, promtool, value


def bench_series(text: str) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["id"], dict(labels)["bench"]): v
        for (name, labels), v in parse(text).items()
        if name == "nestctl_bench_ratio"
    }


def textfile(root: Path, out: Path) -> str:
    out.mkdir(exist_ok=True)
    result = CliRunner().invoke(
        cli, ["metrics", "--textfile", str(out), "--root", str(root), "--no-qemu"]
    )
    assert result.exit_code == 0, result.output
    return (out / "nestctl.prom").read_text()


def test_saved_results_become_ratio_series_in_the_textfile(tmp_path: Path) -> None:
    root = lab_node(tmp_path / "root")
    assert bench_series(textfile(root, tmp_path / "out")) == {}
    saved_lab(root)
    text = textfile(root, tmp_path / "out")
    series = bench_series(text)
    # VM 101 measured from pve1, against the host (the reference, left out: always 1).
    assert {ident for ident, _ in series} == {"qemu/101"}
    assert series["qemu/101", "cpuid"] == pytest.approx(12.0)
    assert series["qemu/101", "page_touch_cold"] == pytest.approx(2.5)
    assert series["qemu/101", "cpu"] == pytest.approx(1.0)
    # Joins pve-exporter's VM series on the same id as the other per-VM families.
    assert value(parse(text), "nestctl_vm_nested_exposed", id="qemu/101") is not None
    assert promtool("check", "metrics", stdin=text).strip() == ""


def test_the_exporter_serves_them_too(tmp_path: Path) -> None:
    root = lab_node(tmp_path / "root")
    saved_lab(root)
    check = local_check(str(root), guests=False, all_nodes=False, use_qemu=False)
    body, _ = Exporter(check, guests=False, timeout=30, min_interval=0).page()
    series = bench_series(body.decode())
    assert series["qemu/101", "cpuid"] == pytest.approx(12.0)
    assert "nestctl_run_success" in names(parse(body.decode()))
