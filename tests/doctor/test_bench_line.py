"""`nestctl doctor` and saved benchmark results (issue 12 point 4): a line for a recent result
that shows a pathological ratio or software emulation, read under --root; no cost without them."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

from nestctl.bench import RESULTS_DIR
from tests.bench.recorded import GUEST_TCG, saved_lab
from tests.doctor.test_doctor import codes, doctor_json, node
from tests.helpers import write_tree
from tests.host.scenarios import build

BENCH_CODES = ("bench-pathological", "bench-emulation")


def test_a_recent_pathological_result_is_a_line_in_doctor(tmp_path: Path) -> None:
    node(tmp_path)
    rc_before, before = doctor_json(tmp_path)
    saved_lab(tmp_path)
    rc, data = doctor_json(tmp_path)
    bench = [f for f in data["findings"] if f["code"] == "bench-pathological"]
    assert len(bench) == 1, data["findings"]
    assert bench[0]["severity"] == "warning"
    assert "pve1/101" in bench[0]["message"]
    assert "page_touch_cold 2.50x" in bench[0]["message"]
    assert "EPT/NPT off" in bench[0]["message"]
    assert bench[0]["fix"]
    # A slow nested guest is worth a line, not a different readiness verdict.
    assert (rc, data["verdict"]) == (rc_before, before["verdict"])
    assert sorted(codes(data)) == sorted([*codes(before), "bench-pathological"])


def test_the_host_layer_alone_also_gets_the_line(tmp_path: Path) -> None:
    build(tmp_path, "intel-nested-on")  # not a Proxmox node
    saved_lab(tmp_path)
    _, data = doctor_json(tmp_path)
    assert "doctor.not-proxmox" in codes(data)
    assert "bench-pathological" in codes(data)


def test_emulation_is_named(tmp_path: Path) -> None:
    node(tmp_path)
    saved_lab(tmp_path)
    tcg = {**json.loads(GUEST_TCG.read_text()), "started": "2000-01-01T00:00:00+00:00"}
    write_tree(tmp_path, {f"{RESULTS_DIR}/tcg.json": json.dumps(tcg)})
    # An old run is not doctor's business.
    assert "bench-emulation" not in codes(doctor_json(tmp_path)[1])
    tcg["started"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    write_tree(tmp_path, {f"{RESULTS_DIR}/tcg.json": json.dumps(tcg)})
    _, data = doctor_json(tmp_path)
    emulation = [f["message"] for f in data["findings"] if f["code"] == "bench-emulation"]
    assert len(emulation) == 1
    assert "software emulation (TCG)" in emulation[0]


def test_old_or_unusable_results_give_no_line(tmp_path: Path) -> None:
    node(tmp_path)
    saved_lab(tmp_path, days_ago=90)
    write_tree(tmp_path, {f"{RESULTS_DIR}/junk.json": "{not json", f"{RESULTS_DIR}/x.json": "[]"})
    _, data = doctor_json(tmp_path)
    assert not set(codes(data)) & set(BENCH_CODES)


IMPORTS = """
import sys
from nestctl.cli import main
try:
    main(["doctor", "--root", sys.argv[1], "--json", "--no-qemu"])
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.startswith("nestctl.bench.")), file=sys.stderr)
"""


def bench_modules_loaded(root: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"'))
    return loaded


def test_without_result_files_doctor_never_imports_the_bench_modules(tmp_path: Path) -> None:
    node(tmp_path)
    assert bench_modules_loaded(tmp_path) == []
    saved_lab(tmp_path)
    assert "nestctl.bench.feed" in bench_modules_loaded(tmp_path)
