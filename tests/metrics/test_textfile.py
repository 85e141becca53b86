"""`nestctl metrics --textfile DIR`: atomic, fixed mode, nothing else left in DIR, failures as
failure series (never stale success)."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.cli import metrics as cli_metrics
from nestctl.cli.common import NestctlError
from nestctl.metrics import textfile
from nestctl.metrics.run import Check, Checked
from tests.metrics.tools import cluster_body, lab_node, parse, value


def run_metrics(*args: str) -> tuple[int, str]:
    """Exit code and output, as the error boundary (`main`) turns a NestctlError into them."""
    result = CliRunner().invoke(cli, ["metrics", *args])
    if isinstance(result.exception, NestctlError):
        return result.exception.exit_code, result.output + str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_writes_the_node_and_leaves_nothing_else(tmp_path: Path) -> None:
    root, out = lab_node(tmp_path / "root"), tmp_path / "out"
    out.mkdir()
    old = os.umask(0o077)  # a root cron/timer umask must not leak into the file's mode
    try:
        rc, _ = run_metrics("--textfile", str(out), "--root", str(root), "--no-qemu")
    finally:
        os.umask(old)
    assert rc == 0
    assert os.listdir(out) == ["nestctl.prom"]
    prom = out / "nestctl.prom"
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644
    s = parse(prom.read_text())
    assert value(s, "nestctl_run_success") == 1
    assert value(s, "nestctl_vm_nested_exposed", id="qemu/100") == 1
    assert value(s, "nestctl_host_nested_enabled", id="node/pve1") == 1


def test_stdout_without_textfile(tmp_path: Path) -> None:
    rc, text = run_metrics("--root", str(lab_node(tmp_path)), "--no-qemu")
    assert rc == 0
    assert value(parse(text), "nestctl_up", id="node/pve1", layer="host") == 1


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    victim.write_text("precious\n")
    (out / "nestctl.prom").symlink_to(victim)
    textfile.write_textfile(str(out), "nestctl_run_success 1\n")
    assert victim.read_text() == "precious\n"
    assert not (out / "nestctl.prom").is_symlink()


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(textfile.os, "replace", broken)
    with pytest.raises(textfile.TextfileError, match="No space left"):
        textfile.write_textfile(str(out), "x 1\n")
    assert os.listdir(out) == []


def test_a_missing_dir_is_exit_2(tmp_path: Path) -> None:
    rc, out = run_metrics("--textfile", str(tmp_path / "nope"), "--root", str(tmp_path))
    assert rc == 2
    assert "No such file" in out or "does not exist" in out


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".nestctl.prom.abc123.tmp").write_text("half")
    (out / "other.prom").write_text("not ours\n")
    rc, _ = run_metrics(
        "--textfile", str(out), "--root", str(lab_node(tmp_path / "r")), "--no-qemu"
    )
    assert rc == 0
    assert sorted(os.listdir(out)) == ["nestctl.prom", "other.prom"]


def failing_check(message: str) -> Check:
    def check() -> Checked:
        raise RuntimeError(message)

    return check


def test_a_failed_run_writes_failure_not_stale_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    root = lab_node(tmp_path / "root")
    rc, _ = run_metrics("--textfile", str(out), "--root", str(root), "--no-qemu")
    assert rc == 0
    first = parse((out / "nestctl.prom").read_text())
    success_at = value(first, "nestctl_last_success_timestamp_seconds")
    assert success_at is not None

    monkeypatch.setattr(cli_metrics, "make_check", lambda *a: failing_check("API down"))
    rc, output = run_metrics("--textfile", str(out), "--root", str(root))
    assert rc == 2
    assert "API down" in output
    assert os.listdir(out) == ["nestctl.prom"]
    s = parse((out / "nestctl.prom").read_text())
    assert value(s, "nestctl_run_success") == 0
    # The last success is carried over (so the stale alert can fire), and no target series
    # from the old run survive.
    assert value(s, "nestctl_last_success_timestamp_seconds") == pytest.approx(success_at, abs=0.01)
    assert not [k for k in s if ("id", "qemu/100") in k[1]]
    assert not [k for k in s if k[0].startswith(("nestctl_vm_", "nestctl_host_"))]


def test_a_check_that_hangs_times_out_as_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def hangs() -> Checked:
        release.wait(10)
        return Checked(cluster_body())

    monkeypatch.setattr(cli_metrics, "make_check", lambda *a: hangs)
    out = tmp_path / "out"
    out.mkdir()
    start = time.monotonic()
    rc, output = run_metrics("--textfile", str(out), "--check-timeout", "0.3")
    release.set()
    assert time.monotonic() - start < 5
    assert rc == 2
    assert "did not finish within 0.3 s" in output
    s = parse((out / "nestctl.prom").read_text())
    assert value(s, "nestctl_run_success") == 0
    assert value(s, "nestctl_run_duration_seconds") == pytest.approx(0.3, abs=0.25)


def test_a_reader_polling_during_repeated_writes_never_sees_a_partial_file(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # Big enough that a non-atomic write would be caught half-way (several write() calls).
    bodies = [
        "".join(f'nestctl_vm_running{{id="qemu/{100 + i}"}} {n % 2}\n' for i in range(20_000))
        + f"# end {n}\n"
        for n in range(2)
    ]
    complete = set(bodies)
    seen: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for name in os.listdir(out):
                if name.endswith(".prom"):  # what node_exporter reads
                    with contextlib.suppress(FileNotFoundError):
                        seen.append((out / name).read_text())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(40):
            textfile.write_textfile(str(out), bodies[n % 2])
    finally:
        stop.set()
        thread.join()
    assert seen, "the reader never ran"
    assert all(text in complete for text in seen), "a reader saw a partial file"
    assert os.listdir(out) == ["nestctl.prom"]
