"""`nestctl host enable|disable` against a temporary root: the exact files written, backups,
idempotence, every refusal, and the reload sequence (a fake modprobe acting on the fake /sys)."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from pathlib import Path

import pytest

from nestctl.findings import Report
from nestctl.host import lock
from nestctl.host.apply import apply_plan
from nestctl.host.change import change_report
from nestctl.host.lock import LOCK_FILE
from nestctl.host.plan import plan_change
from nestctl.host.probe import probe_host
from nestctl.machine import CommandResult, Host, RecordingRunner
from tests.helpers import read_tree, write_tree
from tests.host.fakes import FakeModprobe
from tests.host.scenarios import (
    SCENARIOS,
    amd_host,
    build,
    intel_host,
    proc_modules,
    qemu_cmdline,
)

STAMP = "20261124T210000Z"
MARK = "# nestctl: disabled, conflicts with /etc/modprobe.d/kvm-intel.conf: "
HEADER = (
    "# Managed by nestctl (nestctl host enable/disable): nested virtualization for {m}.\n"
    "# Changes here are kept; nestctl edits only the `nested` option.\n"
)


def run(
    root: Path,
    action: str = "enable",
    fake: FakeModprobe | None = None,
    *,
    euid: int = 0,
    **kw: bool,
) -> tuple[Report, RecordingRunner]:
    runner = RecordingRunner(fake)
    report = change_report(Host(root, runner=runner, euid=euid), action, stamp=STAMP, **kw)
    return report, runner


def tree_of(root: Path) -> dict[str, str]:
    """The files under `root`, without the lock file every applied run leaves (flock needs one)."""
    return {k: v for k, v in read_tree(root).items() if k != LOCK_FILE}


def backup_of(report: Report, path: str) -> str:
    backups = change(report)["backups"]
    assert isinstance(backups, list)
    [backup] = [b for b in backups if b.endswith(path)]
    assert backup.startswith(f"/var/backups/nestctl/{STAMP}-")  # one directory per run
    return str(backup)


def change(report: Report) -> dict[str, object]:
    body = report.to_json()["change"]
    assert isinstance(body, dict)
    return body


RELOAD = [("modprobe", "-r", "kvm_intel"), ("modprobe", "kvm_intel")]


def test_enable_rewrites_the_managed_file_backs_up_and_reloads(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = tree_of(tmp_path)
    fake = FakeModprobe(tmp_path)
    report, runner = run(tmp_path, fake=fake)
    assert report.exit_code == 0, report.to_json()
    assert change(report)["outcome"] == "done"
    after = tree_of(tmp_path)
    assert after["/etc/modprobe.d/kvm-intel.conf"] == (
        "# nestctl: replaced: options kvm_intel nested=0\noptions kvm_intel nested=Y\n"
    )
    backup = backup_of(report, "/etc/modprobe.d/kvm-intel.conf")
    assert after[backup] == before["/etc/modprobe.d/kvm-intel.conf"]
    assert runner.calls == RELOAD
    assert after["/sys/module/kvm_intel/parameters/nested"] == "Y\n"
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {
        "/etc/modprobe.d/kvm-intel.conf",
        backup,
        "/sys/module/kvm_intel/parameters/nested",
    }

    # Idempotent: the second run has nothing to do and writes nothing.
    again, runner2 = run(tmp_path, fake=fake)
    assert change(again)["outcome"] == "nothing-to-do"
    assert again.exit_code == 0
    assert runner2.calls == []
    assert tree_of(tmp_path) == after


def test_a_later_file_is_commented_out_with_a_marker(tmp_path: Path) -> None:
    build(tmp_path, "later-file-turns-nested-off")
    (tmp_path / "sys/module/kvm_intel/parameters/nested").write_text("N\n")
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert report.exit_code == 0, report.to_json()
    tree = tree_of(tmp_path)
    assert tree["/etc/modprobe.d/zz-local.conf"] == (
        f"# local tuning\n\n{MARK}options kvm_intel nested=0 ept=1\noptions kvm_intel ept=1\n"
    )
    assert tree["/etc/modprobe.d/kvm-intel.conf"] == "options kvm-intel nested=Y\n"  # untouched
    assert backup_of(report, "/etc/modprobe.d/zz-local.conf") in tree
    assert runner.calls == RELOAD
    assert tree["/sys/module/kvm_intel/parameters/nested"] == "Y\n"


def test_a_conflict_in_a_package_directory_is_hidden_not_edited(tmp_path: Path) -> None:
    lib = "options kvm_intel nested=0\n"
    write_tree(tmp_path, intel_host("Y", extra={"/usr/lib/modprobe.d/zz-vendor.conf": lib}))
    report, runner = run(tmp_path, no_reload=True)
    tree = tree_of(tmp_path)
    assert tree["/usr/lib/modprobe.d/zz-vendor.conf"] == lib
    assert tree["/etc/modprobe.d/zz-vendor.conf"] == (
        "# nestctl: copy of /usr/lib/modprobe.d/zz-vendor.conf, which this file hides (modprobe "
        f"reads one).\n{MARK}options kvm_intel nested=0\n"
    )
    assert (
        tree["/etc/modprobe.d/kvm-intel.conf"]
        == HEADER.format(m="kvm_intel") + "options kvm_intel nested=Y\n"
    )
    assert runner.calls == []
    assert report.exit_code == 0  # live was already Y: nothing to reload


def test_managed_name_in_lib_is_copied_before_it_is_hidden(tmp_path: Path) -> None:
    lib = "options kvm_intel ept=1 nested=N\n"
    write_tree(tmp_path, intel_host("Y", extra={"/lib/modprobe.d/kvm-intel.conf": lib}))
    run(tmp_path, no_reload=True)
    tree = tree_of(tmp_path)
    assert tree["/etc/modprobe.d/kvm-intel.conf"] == (
        "# nestctl: copy of /lib/modprobe.d/kvm-intel.conf, which this file hides (modprobe reads "
        "one).\n# nestctl: replaced: options kvm_intel ept=1 nested=N\noptions kvm_intel ept=1\n"
        "options kvm_intel nested=Y\n"
    )
    assert tree["/lib/modprobe.d/kvm-intel.conf"] == lib


def test_disable_on_a_default_host_writes_n_and_reloads(tmp_path: Path) -> None:
    build(tmp_path, "intel-nested-on")
    report, runner = run(tmp_path, "disable", fake=FakeModprobe(tmp_path))
    assert report.exit_code == 0
    tree = tree_of(tmp_path)
    assert (
        tree["/etc/modprobe.d/kvm-intel.conf"]
        == HEADER.format(m="kvm_intel") + "options kvm_intel nested=N\n"
    )
    assert not [k for k in tree if k.startswith("/var/backups")]  # nothing was replaced
    assert runner.calls == RELOAD
    assert tree["/sys/module/kvm_intel/parameters/nested"] == "N\n"


def test_enable_on_amd_writes_kvm_amd_conf_with_1(tmp_path: Path) -> None:
    conf = {"/etc/modprobe.d/kvm-amd.conf": "options kvm-amd nested=0\n"}
    write_tree(tmp_path, amd_host("0", extra=conf))
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path, module="kvm_amd"))
    assert report.exit_code == 0, report.to_json()
    tree = tree_of(tmp_path)
    assert tree["/etc/modprobe.d/kvm-amd.conf"] == (
        "# nestctl: replaced: options kvm-amd nested=0\noptions kvm_amd nested=1\n"
    )
    assert runner.calls == [("modprobe", "-r", "kvm_amd"), ("modprobe", "kvm_amd")]
    assert tree["/sys/module/kvm_amd/parameters/nested"] == "1\n"


def test_live_off_with_nothing_persisted_only_reloads(tmp_path: Path) -> None:
    """Someone loaded kvm_amd with nested=0 by hand: the default is on, so no file is needed."""
    write_tree(tmp_path, amd_host("0"))
    before = tree_of(tmp_path)
    report, _ = run(tmp_path, fake=FakeModprobe(tmp_path, module="kvm_amd"))
    assert report.exit_code == 0
    assert [s["kind"] for s in change(report)["steps"]] == ["command", "command"]  # type: ignore[union-attr]
    tree = tree_of(tmp_path)
    assert {k for k in tree if tree[k] != before.get(k)} == {
        "/sys/module/kvm_amd/parameters/nested"
    }


def test_running_vms_block_the_reload(tmp_path: Path) -> None:
    build(tmp_path, "running-vms")
    (tmp_path / "etc/modprobe.d/kvm-intel.conf").write_text("options kvm_intel nested=0\n")
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path, in_use=True))
    assert report.exit_code == 1
    body = change(report)
    assert body["outcome"] == "persisted"
    assert runner.calls == []
    remaining = " ".join(body["remaining"])  # type: ignore[arg-type]
    assert "qm shutdown 100" in remaining
    assert "qm shutdown 101" in remaining
    assert "5000" in remaining
    assert tree_of(tmp_path)["/etc/modprobe.d/kvm-intel.conf"].endswith(
        "options kvm_intel nested=Y\n"
    )


def test_module_in_use_keeps_the_files_and_says_what_remains(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path, in_use=True))
    assert report.exit_code == 1
    body = change(report)
    assert body["outcome"] == "persisted"
    assert "is in use" in str(body["message"])
    assert runner.calls == [("modprobe", "-r", "kvm_intel")]
    assert tree_of(tmp_path)["/sys/module/kvm_intel/parameters/nested"] == "N\n"
    assert [f.code for f in report.findings] == ["host.change.pending"]


def test_a_reload_that_does_not_take_is_undone(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = tree_of(tmp_path)
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path, ignore_options=True))
    assert change(report)["outcome"] == "restored"
    assert report.exit_code == 1
    assert [f.code for f in report.findings] == ["host.change.did-not-take"]
    assert runner.calls == RELOAD + RELOAD
    tree = tree_of(tmp_path)
    assert tree["/etc/modprobe.d/kvm-intel.conf"] == before["/etc/modprobe.d/kvm-intel.conf"]
    assert tree["/sys/module/kvm_intel/parameters/nested"] == "N\n"


def test_a_failed_load_restores_the_files_and_loads_the_module_again(tmp_path: Path) -> None:
    build(tmp_path, "intel-nested-on")
    fake = FakeModprobe(tmp_path, fail_load=1)
    report, runner = run(tmp_path, "disable", fake=fake)
    assert change(report)["outcome"] == "failed"
    assert report.exit_code == 2
    assert runner.calls == [*RELOAD, ("modprobe", "kvm_intel")]
    assert fake.loaded
    assert "/etc/modprobe.d/kvm-intel.conf" not in tree_of(tmp_path)  # created, then removed


def test_no_reload_persists_only(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path), no_reload=True)
    assert change(report)["outcome"] == "persisted"
    assert report.exit_code == 1
    assert runner.calls == []
    assert "--no-reload given" in change(report)["reload_blockers"]  # type: ignore[operator]


def test_commands_are_recorded_under_a_fake_root_without_a_responder(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    report, runner = run(tmp_path)
    body = change(report)
    assert body["outcome"] == "persisted"
    assert runner.calls == [("modprobe", "-r", "kvm_intel"), ("modprobe", "kvm_intel")]
    assert [c["status"] for c in body["commands"]] == ["recorded", "recorded"]  # type: ignore[union-attr]


def test_dry_run_changes_nothing_and_shows_the_diff(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = tree_of(tmp_path)
    report, runner = run(tmp_path, dry_run=True)
    body = change(report)
    assert body["outcome"] == "planned"
    assert report.exit_code == 0
    assert tree_of(tmp_path) == before
    assert runner.calls == []
    steps = body["steps"]
    assert isinstance(steps, list)
    assert [s["kind"] for s in steps] == ["write", "command", "command"]
    assert steps[0]["diff"] == (
        "--- a/etc/modprobe.d/kvm-intel.conf\n+++ b/etc/modprobe.d/kvm-intel.conf\n@@ -1 +1,2 @@\n"
        "-options kvm_intel nested=0\n+# nestctl: replaced: options kvm_intel nested=0\n"
        "+options kvm_intel nested=Y\n"
    )
    assert steps[1]["argv"] == ["modprobe", "-r", "kvm_intel"]


@pytest.mark.parametrize(
    ("scenario", "action", "why"),
    [
        ("firmware-disabled-vt-x", "enable", "neither vmx nor svm"),
        ("cloud-vm-without-nesting", "enable", "neither vmx nor svm"),
        ("dev-vm-kvm-pvm", "disable", "neither vmx nor svm"),
        ("kernel-cmdline-override", "enable", "kernel command line"),
    ],
)
def test_refusals_change_nothing(scenario: str, action: str, why: str, tmp_path: Path) -> None:
    build(tmp_path, scenario)
    before = tree_of(tmp_path)
    for dry_run in (False, True):
        report, runner = run(tmp_path, action, dry_run=dry_run)
        assert report.exit_code == 2
        assert why in str(change(report)["message"])
        assert [f.code for f in report.findings] == ["host.change.refused"]
        assert runner.calls == []
    assert tree_of(tmp_path) == before


def test_unknown_vendor_is_refused(tmp_path: Path) -> None:
    files = dict(SCENARIOS["intel-nested-on"][0])
    files["/proc/cpuinfo"] = "processor : 0\nvendor_id : CentaurHauls\nflags : fpu vmx\n"
    write_tree(tmp_path, files)
    report, _ = run(tmp_path)
    assert report.exit_code == 2
    assert "unknown CPU vendor 'CentaurHauls'" in str(change(report)["message"])


def test_builtin_module_is_refused(tmp_path: Path) -> None:
    build(tmp_path, "intel-nested-on")
    # Built in: sysfs has only its parameters, and /proc/modules does not list it.
    (tmp_path / "sys/module/kvm_intel/initstate").unlink()
    (tmp_path / "sys/module/kvm_intel/refcnt").unlink()
    (tmp_path / "proc/modules").write_text(proc_modules("kvm", "irqbypass"))
    report, _ = run(tmp_path, "disable")
    assert report.exit_code == 2
    assert "is built into the kernel" in str(change(report)["message"])


def test_a_missing_initstate_alone_does_not_make_a_module_built_in(tmp_path: Path) -> None:
    # A collected snapshot often lacks initstate; refcnt and /proc/modules say loadable.
    build(tmp_path, "intel-pve8-nested-off")
    (tmp_path / "sys/module/kvm_intel/initstate").unlink()
    report, _ = run(tmp_path, "enable", dry_run=True)
    assert change(report)["outcome"] == "planned"
    assert report.payload["change"]["steps"]


def test_disagreeing_evidence_on_built_in_is_refused_as_unknown(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    (tmp_path / "lib/modules/6.8.12-4-pve").mkdir(parents=True)
    (tmp_path / "lib/modules/6.8.12-4-pve/modules.builtin").write_text(
        "kernel/arch/x86/kvm/kvm-intel.ko\n"
    )
    report, _ = run(tmp_path, "enable", dry_run=True)
    assert report.exit_code == 2
    message = str(change(report)["message"])
    assert "cannot tell whether kvm_intel is built into the kernel" in message
    assert "modules.builtin lists it" in message


def test_not_root_is_refused(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = tree_of(tmp_path)
    report, runner = run(tmp_path, euid=1000, fake=FakeModprobe(tmp_path))
    assert report.exit_code == 2
    assert "needs root" in str(change(report)["message"])
    assert tree_of(tmp_path) == before
    assert runner.calls == []
    # A dry run still shows the plan, and says applying would be refused.
    dry, _ = run(tmp_path, euid=1000, dry_run=True)
    assert dry.exit_code == 0
    assert [f.code for f in dry.findings] == ["host.change.apply-blocked"]


def test_read_only_file_system_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = tree_of(tmp_path)
    monkeypatch.setattr(Host, "writable_dir", lambda self, d: f"{d} is on a read-only file system")
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert report.exit_code == 2
    assert "read-only file system" in str(change(report)["message"])
    assert tree_of(tmp_path) == before
    assert runner.calls == []


def test_a_directory_where_the_managed_file_goes_is_refused(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    real = tmp_path / "etc/modprobe.d/kvm-intel.conf"
    real.unlink()
    real.mkdir()  # modprobe skips it; nestctl must not try to replace it
    (tmp_path / "etc/modprobe.d/zz.conf").write_text("options kvm_intel nested=0\n")
    before = tree_of(tmp_path)
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert change(report)["outcome"] == "refused"
    assert report.exit_code == 2
    assert "is not a regular file" in str(change(report)["message"])
    assert tree_of(tmp_path) == before
    assert real.is_dir()
    assert runner.calls == []


def test_a_failing_write_leaves_every_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    (tmp_path / "etc/modprobe.d/zz.conf").write_text("options kvm_intel nested=0\n")
    (tmp_path / "etc/modprobe.d/zz.conf").chmod(0o640)
    before = tree_of(tmp_path)
    real_write = Host.write_atomic
    calls: list[str] = []

    def second_write_fails(self: Host, hostpath: str, text: str, **kw: object) -> None:
        calls.append(hostpath)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(self, hostpath, text, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Host, "write_atomic", second_write_fails)
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert change(report)["outcome"] == "failed"
    assert report.exit_code == 2
    assert "No space left on device" in str(change(report)["message"])
    assert change(report)["restored"] == ["/etc/modprobe.d/kvm-intel.conf"]
    after = {k: v for k, v in tree_of(tmp_path).items() if not k.startswith("/var/backups")}
    assert after == before
    # Restored from the backup: the mode comes back too, not the fixed 0644 of new files.
    assert (tmp_path / "etc/modprobe.d/zz.conf").stat().st_mode & 0o777 == 0o640
    assert runner.calls == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (  # the managed file ends inside a continuation: our line must not be swallowed
            {"/etc/modprobe.d/kvm-intel.conf": "options kvm_intel nested=0\noptions foo bar \\"},
            {
                "/etc/modprobe.d/kvm-intel.conf": "# nestctl: replaced: options kvm_intel "
                "nested=0\noptions foo bar \\\n\noptions kvm_intel nested=Y\n"
            },
        ),
        (  # a conflicting last line continued at end of file keeps its other options
            {"/etc/modprobe.d/zz.conf": "options kvm_intel nested=0 ept=1 \\"},
            {
                "/etc/modprobe.d/zz.conf": f"{MARK}options kvm_intel nested=0 ept=1 \\\n\n"
                "options kvm_intel ept=1"
            },
        ),
        (  # the empty line ending a continuation is not commented (it would join nothing)
            {"/etc/modprobe.d/kvm-intel.conf": "options kvm_intel nested=0 \\\n"},
            {
                "/etc/modprobe.d/kvm-intel.conf": "# nestctl: replaced: options kvm_intel "
                "nested=0 \\\n\noptions kvm_intel nested=Y\n"
            },
        ),
    ],
)
def test_backslash_continuations_never_swallow_a_written_line(
    files: dict[str, str], expected: dict[str, str], tmp_path: Path
) -> None:
    write_tree(tmp_path, intel_host("N", release="4.15.18-30-pve", extra=files))
    report, _ = run(tmp_path, no_reload=True)
    assert change(report)["outcome"] == "persisted"
    tree = tree_of(tmp_path)
    for path, text in expected.items():
        assert tree[path] == text
    after = probe_host(Host(tmp_path)).nested_after_reboot
    assert after.value is True
    assert after.decided_by is not None
    assert after.decided_by.startswith("/etc/modprobe.d/kvm-intel.conf:")


def test_a_dev_null_mask_is_named_in_the_plan_and_replaced_with_a_0644_file(
    tmp_path: Path,
) -> None:
    # The root escalation: modprobe.d/kvm-intel.conf -> /dev/null (an admin's mask). Writing
    # with the mode of the link's target made the new file and its backup 0666.
    build(tmp_path, "intel-pve8-nested-off")
    managed = tmp_path / "etc/modprobe.d/kvm-intel.conf"
    managed.unlink()
    managed.symlink_to("/dev/null")
    (tmp_path / "etc/modprobe.d/zz.conf").write_text("options kvm_intel nested=0\n")
    dry, _ = run(tmp_path, dry_run=True)
    steps = change(dry)["steps"]
    assert isinstance(steps, list)
    [step] = [s for s in steps if s.get("path") == "/etc/modprobe.d/kvm-intel.conf"]
    assert step["kind"] == "replace-symlink"
    assert step["symlink"] == "/dev/null"
    assert "an admin's mask" in step["reason"]
    assert managed.is_symlink()  # a dry run changes nothing

    report, _ = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert change(report)["outcome"] == "done", report.to_json()
    st = managed.lstat()
    assert not managed.is_symlink()
    assert st.st_mode & 0o7777 == 0o644
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 0)
    backup = tmp_path / backup_of(report, "/etc/modprobe.d/kvm-intel.conf").lstrip("/")
    assert backup.is_symlink()
    assert os.readlink(backup) == "/dev/null"
    assert (tmp_path / "var/backups/nestctl").stat().st_mode & 0o777 == 0o700


def test_a_symlink_to_a_regular_file_is_named_and_its_target_left_alone(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    managed = tmp_path / "etc/modprobe.d/kvm-intel.conf"
    shared = tmp_path / "etc/pve/kvm-intel.conf"
    shared.parent.mkdir(parents=True)
    managed.rename(shared)
    managed.symlink_to(shared)
    report, _ = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert change(report)["outcome"] == "done", report.to_json()
    assert shared.read_text() == "options kvm_intel nested=0\n"
    assert managed.read_text().endswith("options kvm_intel nested=Y\n")
    assert not managed.is_symlink()


def test_concurrent_runs_are_serialized_by_a_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = tree_of(tmp_path)
    (tmp_path / "run/nestctl").mkdir(parents=True)
    holder = os.open(tmp_path / LOCK_FILE.lstrip("/"), os.O_RDWR | os.O_CREAT, 0o600)
    os.write(holder, b"4711\n")
    fcntl.flock(holder, fcntl.LOCK_EX)  # another run holds it
    monkeypatch.setattr(lock, "WAIT_SECONDS", 0.3)
    try:
        report, runner = run(tmp_path, fake=FakeModprobe(tmp_path))
    finally:
        os.close(holder)
    assert change(report)["outcome"] == "refused"
    assert report.exit_code == 2
    assert "another nestctl host enable/disable is running (pid 4711)" in str(
        change(report)["message"]
    )
    assert runner.calls == []
    assert tree_of(tmp_path) == before

    # Held briefly, the second run waits for it and then plans from what it finds.
    holder = os.open(tmp_path / LOCK_FILE.lstrip("/"), os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    monkeypatch.setattr(lock, "WAIT_SECONDS", 30.0)
    release = threading.Timer(0.3, os.close, (holder,))
    release.start()
    report, _ = run(tmp_path, fake=FakeModprobe(tmp_path))
    release.join()
    assert change(report)["outcome"] == "done"


def test_vms_started_after_the_plan_stop_the_reload(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    runner = RecordingRunner(FakeModprobe(tmp_path))
    host = Host(tmp_path, runner=runner, euid=0)
    plan = plan_change(host, probe_host(host), "enable")
    assert plan.reload  # nothing ran when planned
    write_tree(
        tmp_path,
        {"/var/run/qemu-server/100.pid": "4242\n", "/proc/4242/cmdline": qemu_cmdline(100)},
    )
    out = apply_plan(host, plan)
    assert out.state == "persisted"
    assert "VMs started since the plan: 100" in out.message
    assert runner.calls == []  # no modprobe -r under a running VM


def test_a_refcount_taken_after_the_plan_stops_the_reload(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    runner = RecordingRunner(FakeModprobe(tmp_path))
    host = Host(tmp_path, runner=runner, euid=0)
    plan = plan_change(host, probe_host(host), "enable")
    (tmp_path / "sys/module/kvm_intel/refcnt").write_text("2\n")
    out = apply_plan(host, plan)
    assert out.state == "persisted"
    assert "kvm_intel is in use (refcount 2)" in out.message
    assert runner.calls == []


def test_a_signal_between_unload_and_load_waits_until_kvm_is_back(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    fake = FakeModprobe(tmp_path)

    def interrupted(argv: tuple[str, ...]) -> CommandResult | None:
        answer = fake(argv)
        if argv[:2] == ("modprobe", "-r"):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after the unload
        return answer

    runner = RecordingRunner(interrupted)
    with pytest.raises(KeyboardInterrupt):
        change_report(Host(tmp_path, runner=runner, euid=0), "enable")
    assert runner.calls == RELOAD  # the load still ran
    assert fake.loaded
    assert (tmp_path / "sys/module/kvm_intel/parameters/nested").read_text() == "Y\n"


def test_a_signal_landing_on_another_thread_still_waits_until_kvm_is_back(tmp_path: Path) -> None:
    # The kernel may hand a process-directed Ctrl-C to any thread that does not block it, and
    # Python then runs the handler in the main thread: the mask alone would not hold it back.
    build(tmp_path, "intel-pve8-nested-off")
    fake = FakeModprobe(tmp_path)
    fire, fired = threading.Event(), threading.Event()

    def worker() -> None:  # started before the reload, so it does not inherit the mask
        fire.wait(10)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        fired.set()

    def interrupted(argv: tuple[str, ...]) -> CommandResult | None:
        answer = fake(argv)
        if argv[:2] == ("modprobe", "-r"):
            fire.set()
            assert fired.wait(10)
        return answer

    thread = threading.Thread(target=worker)
    thread.start()
    runner = RecordingRunner(interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            change_report(Host(tmp_path, runner=runner, euid=0), "enable")
    finally:
        fire.set()
        thread.join()
    assert runner.calls == RELOAD
    assert (tmp_path / "sys/module/kvm_intel/parameters/nested").read_text() == "Y\n"


@pytest.mark.parametrize("refcnt", ["", "x\n", "-1\n"])
def test_an_unreadable_refcount_blocks_the_reload_in_the_plan(tmp_path: Path, refcnt: str) -> None:
    # The plan itself says so (a dry run shows it), not only apply's late re-check.
    build(tmp_path, "intel-pve8-nested-off")
    (tmp_path / "sys/module/kvm_intel/refcnt").write_text(refcnt)
    host = Host(tmp_path, runner=RecordingRunner(FakeModprobe(tmp_path)), euid=0)
    plan = plan_change(host, probe_host(host), "enable")
    assert plan.reload == ()
    assert any("refcnt cannot be read" in b for b in plan.reload_blockers)
