"""A QEMU that fails for a reason other than the -cpu value could not be asked: the table answers,
`nested.source` says so, and nothing is cached. Only QEMU's own -cpu refusal is an answer.
Oracle QEMUs run in their own process group, die with nestctl and are always reaped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import IO

import pytest

from nestctl.qemu import cpuprobe
from nestctl.qemu.cache import CpuAnswerCache
from nestctl.qemu.cpuprobe import QemuCpuOracle, cpu_refusal
from nestctl.vm.exposure import decide

# -- telling a -cpu refusal from any other failure (QEMU 7.2's real texts) ---------------------

REFUSALS = [
    "qemu-system-x86_64: CPU model 'host' requires KVM or HVF",
    "qemu-system-x86_64: unable to find CPU model 'foo'",
    "qemu-system-x86_64: Property 'qemu64-x86_64-cpu.nonexist' not found",
    "qemu-system-x86_64: can't apply global kvm64-x86_64-cpu.nested-virt=on: Property "
    "'kvm64-x86_64-cpu.nested-virt' not found",
    "qemu-system-x86_64: kernel doesn't allow setting HyperV VP_INDEX",
    "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.vmx "
    "[bit 5]\nqemu-system-x86_64: TCG doesn't support requested features",
    "qemu-system-x86_64: can't apply global qemu64-x86_64-cpu.family=abc: Parameter 'family' "
    "expects int64",
]
OTHER_FAILURES = [
    "qemu-system-x86_64: -qmp unix:/tmp/x/q.sock,server=on,wait=off: Failed to bind socket to "
    "/tmp/x/q.sock: No such file or directory",
    "qemu-system-x86_64: cannot set up guest memory 'pc.ram': Cannot allocate memory",
    "qemu: could not load PC BIOS 'bios-256k.bin'",
    "qemu-system-x86_64: -qmp unix:/tmp/x/q.sock: Failed to bind socket: No space left on device",
    "",
]


@pytest.mark.parametrize("stderr", REFUSALS)
def test_cpu_refusals_are_answers(stderr: str) -> None:
    refusal = cpu_refusal(1, stderr)
    assert refusal is not None
    assert "warning" not in refusal


@pytest.mark.parametrize("stderr", OTHER_FAILURES)
def test_other_failures_are_not_refusals(stderr: str) -> None:
    assert cpu_refusal(1, stderr) is None


@pytest.mark.parametrize("rc", [-9, -15, 0, 2, 137, None])
def test_a_killed_or_oddly_ending_qemu_is_not_a_refusal(rc: int | None) -> None:
    assert cpu_refusal(rc, REFUSALS[0]) is None


# -- real QEMU failing for other reasons ------------------------------------------------------


def _spawn_with(extra: list[str] | None = None, *, kill: bool = False, bad_socket: bool = False):  # type: ignore[no-untyped-def]
    """A spawn_qemu that starts the real QEMU with one thing wrong that is not the -cpu."""
    real = cpuprobe.spawn_qemu

    def spawn(argv: list[str], errfile: IO[bytes]) -> subprocess.Popen[bytes]:
        argv = list(argv)
        if bad_socket:
            i = argv.index("-qmp") + 1
            argv[i] = argv[i].replace("qmp.sock", "no-such-dir/qmp.sock")
        proc = real([*argv, *(extra or [])], errfile)
        if kill:
            proc.send_signal(signal.SIGKILL)
        return proc

    return spawn


@pytest.mark.e2e
@pytest.mark.usefixtures("qemu_binary")
@pytest.mark.parametrize(
    ("how", "why"),
    [
        ({"bad_socket": True}, "Failed to bind socket"),
        ({"extra": ["-m", "100T"]}, "memory"),
        ({"kill": True}, "killed by SIGKILL"),
    ],
)
def test_a_qemu_failing_for_another_reason_is_not_cached_as_a_refusal(
    how: dict[str, object], why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.json"
    monkeypatch.setattr(cpuprobe, "spawn_qemu", _spawn_with(**how))  # type: ignore[arg-type]
    answer = QemuCpuOracle(cache=CpuAnswerCache(path)).ask("qemu64", vendor_hint="AuthenticAMD")
    assert answer.error is None  # not "QEMU refuses this -cpu"
    assert answer.unasked is not None
    assert why in answer.unasked
    assert answer.source == "table"
    exposure = decide("qemu64", "AuthenticAMD", True, kvm=True, oracle=answer)
    assert exposure.exposed is False  # the KVM table's answer, not a refusal
    assert exposure.qemu_error is None
    assert exposure.source.startswith("table (QEMU could not be asked: ")
    software = decide("qemu64", "AuthenticAMD", True, kvm=False, oracle=answer)  # a kvm: 0 VM
    assert software.source.startswith("table (QEMU could not be asked: ")
    assert not path.exists() or "qemu64" not in path.read_text()
    # The next run asks QEMU again, and gets QEMU's own answer.
    monkeypatch.undo()
    again = QemuCpuOracle(cache=CpuAnswerCache(path)).ask("qemu64")
    assert again.unasked is None
    assert again.source.startswith("qemu ")
    assert again.svm is True


@pytest.mark.e2e
@pytest.mark.usefixtures("qemu_binary")
def test_a_real_refusal_is_cached_with_qemus_words(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    answer = QemuCpuOracle(cache=CpuAnswerCache(path)).ask("qemu64,+nosuchflag")
    assert answer.error is not None
    assert "nosuchflag" in answer.error
    assert answer.unasked is None
    stored = json.loads(path.read_text())["builds"]
    assert any("tcg\nqemu64,+nosuchflag" in entries for entries in stored.values())


def test_a_full_tmp_is_could_not_ask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "qemu-system-x86_64"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
    answer = QemuCpuOracle(str(binary)).ask("kvm64", vendor_hint="GenuineIntel")
    assert answer.unasked is not None
    assert "work directory" in answer.unasked
    assert answer.error is None


# -- process group, parent-death signal, reaping ------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import signal, sys
    from nestctl.qemu.cpuprobe import QemuCpuOracle
    if sys.argv[2] == "handler":  # a program that turns SIGTERM into a clean exit of its own
        def on_term(signum, frame):
            raise SystemExit(143)
        signal.signal(signal.SIGTERM, on_term)
    # A "QEMU" that never opens its QMP socket: the oracle waits for it.
    QemuCpuOracle(sys.argv[1], timeout=60).ask("kvm64")
    """
)


def _fake_qemu(tmp_path: Path) -> tuple[Path, Path]:
    pidfile = tmp_path / "qemu.pid"
    binary = tmp_path / "qemu-system-x86_64"
    binary.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 120\n")
    binary.chmod(0o755)
    return binary, pidfile


def _wait_for(pidfile: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError("the fake QEMU never started")


def _gone(pid: int, within: float = 10.0) -> bool:
    """Dead: no such process, or a zombie waiting for init."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.runs_commands
@pytest.mark.parametrize(
    ("sig", "handler"),
    [(signal.SIGTERM, "default"), (signal.SIGTERM, "handler"), (signal.SIGKILL, "default")],
)
def test_oracle_qemu_never_outlives_nestctl(
    sig: signal.Signals, handler: str, tmp_path: Path
) -> None:
    binary, pidfile = _fake_qemu(tmp_path)
    tmp = tmp_path / "tmp"  # the oracle's work directories go here, and nowhere else
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(binary), handler], env=env)
    try:
        qemu = _wait_for(pidfile)
        assert os.getpgid(qemu) == qemu  # its own process group
        child.send_signal(sig)
        child.wait(timeout=20)
        assert _gone(qemu), f"QEMU {qemu} outlived nestctl after {sig.name}"
        if sig is signal.SIGTERM:
            # SIGTERM still does what it did before (the default, or the program's own handler),
            want = -signal.SIGTERM if handler == "default" else 143
            assert child.returncode == want
            assert list(tmp.iterdir()) == []  # and QEMU's work directory is gone
    finally:
        child.kill()
        child.wait(timeout=10)


def test_a_signal_during_qemus_start_leaves_no_work_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM with the program's own handler (SystemExit) can land while QEMU is being forked,
    # before the oracle knows the process: its work directory must still go (a CI flake).
    import tempfile  # noqa: PLC0415

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def interrupted(argv: list[str], errfile: object) -> None:
        raise SystemExit(143)

    monkeypatch.setattr(cpuprobe, "spawn_qemu", interrupted)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    binary, _ = _fake_qemu(bindir)
    with pytest.raises(SystemExit):
        QemuCpuOracle(str(binary)).ask("kvm64")
    assert [p.name for p in tmp_path.iterdir()] == ["bin"]
