"""`nestctl host enable|disable` against a temporary root: the exact files written, backups,
idempotence, every refusal, and the reload sequence (a fake modprobe acting on the fake /sys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.findings import Report
from nestctl.host.change import change_report
from nestctl.host.probe import probe_host
from nestctl.machine import Host, RecordingRunner
from tests.helpers import read_tree, write_tree
from tests.host.fakes import FakeModprobe
from tests.host.scenarios import SCENARIOS, amd_host, build, intel_host, proc_modules

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


def change(report: Report) -> dict[str, object]:
    body = report.to_json()["change"]
    assert isinstance(body, dict)
    return body


RELOAD = [("modprobe", "-r", "kvm_intel"), ("modprobe", "kvm_intel")]


def test_enable_rewrites_the_managed_file_backs_up_and_reloads(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = read_tree(tmp_path)
    fake = FakeModprobe(tmp_path)
    report, runner = run(tmp_path, fake=fake)
    assert report.exit_code == 0, report.to_json()
    assert change(report)["outcome"] == "done"
    after = read_tree(tmp_path)
    assert after["/etc/modprobe.d/kvm-intel.conf"] == (
        "# nestctl: replaced: options kvm_intel nested=0\noptions kvm_intel nested=Y\n"
    )
    backup = f"/var/backups/nestctl/{STAMP}/etc/modprobe.d/kvm-intel.conf"
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
    assert read_tree(tmp_path) == after


def test_a_later_file_is_commented_out_with_a_marker(tmp_path: Path) -> None:
    build(tmp_path, "later-file-turns-nested-off")
    (tmp_path / "sys/module/kvm_intel/parameters/nested").write_text("N\n")
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert report.exit_code == 0, report.to_json()
    tree = read_tree(tmp_path)
    assert tree["/etc/modprobe.d/zz-local.conf"] == (
        f"# local tuning\n\n{MARK}options kvm_intel nested=0 ept=1\noptions kvm_intel ept=1\n"
    )
    assert tree["/etc/modprobe.d/kvm-intel.conf"] == "options kvm-intel nested=Y\n"  # untouched
    assert f"/var/backups/nestctl/{STAMP}/etc/modprobe.d/zz-local.conf" in tree
    assert runner.calls == RELOAD
    assert tree["/sys/module/kvm_intel/parameters/nested"] == "Y\n"


def test_a_conflict_in_a_package_directory_is_hidden_not_edited(tmp_path: Path) -> None:
    lib = "options kvm_intel nested=0\n"
    write_tree(tmp_path, intel_host("Y", extra={"/usr/lib/modprobe.d/zz-vendor.conf": lib}))
    report, runner = run(tmp_path, no_reload=True)
    tree = read_tree(tmp_path)
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
    tree = read_tree(tmp_path)
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
    tree = read_tree(tmp_path)
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
    tree = read_tree(tmp_path)
    assert tree["/etc/modprobe.d/kvm-amd.conf"] == (
        "# nestctl: replaced: options kvm-amd nested=0\noptions kvm_amd nested=1\n"
    )
    assert runner.calls == [("modprobe", "-r", "kvm_amd"), ("modprobe", "kvm_amd")]
    assert tree["/sys/module/kvm_amd/parameters/nested"] == "1\n"


def test_live_off_with_nothing_persisted_only_reloads(tmp_path: Path) -> None:
    """Someone loaded kvm_amd with nested=0 by hand: the default is on, so no file is needed."""
    write_tree(tmp_path, amd_host("0"))
    before = read_tree(tmp_path)
    report, _ = run(tmp_path, fake=FakeModprobe(tmp_path, module="kvm_amd"))
    assert report.exit_code == 0
    assert [s["kind"] for s in change(report)["steps"]] == ["command", "command"]  # type: ignore[union-attr]
    tree = read_tree(tmp_path)
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
    assert read_tree(tmp_path)["/etc/modprobe.d/kvm-intel.conf"].endswith(
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
    assert read_tree(tmp_path)["/sys/module/kvm_intel/parameters/nested"] == "N\n"
    assert [f.code for f in report.findings] == ["host.change.pending"]


def test_a_reload_that_does_not_take_is_undone(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = read_tree(tmp_path)
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path, ignore_options=True))
    assert change(report)["outcome"] == "restored"
    assert report.exit_code == 1
    assert [f.code for f in report.findings] == ["host.change.did-not-take"]
    assert runner.calls == RELOAD + RELOAD
    tree = read_tree(tmp_path)
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
    assert "/etc/modprobe.d/kvm-intel.conf" not in read_tree(tmp_path)  # created, then removed


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
    before = read_tree(tmp_path)
    report, runner = run(tmp_path, dry_run=True)
    body = change(report)
    assert body["outcome"] == "planned"
    assert report.exit_code == 0
    assert read_tree(tmp_path) == before
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
    before = read_tree(tmp_path)
    for dry_run in (False, True):
        report, runner = run(tmp_path, action, dry_run=dry_run)
        assert report.exit_code == 2
        assert why in str(change(report)["message"])
        assert [f.code for f in report.findings] == ["host.change.refused"]
        assert runner.calls == []
    assert read_tree(tmp_path) == before


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
    before = read_tree(tmp_path)
    report, runner = run(tmp_path, euid=1000, fake=FakeModprobe(tmp_path))
    assert report.exit_code == 2
    assert "needs root" in str(change(report)["message"])
    assert read_tree(tmp_path) == before
    assert runner.calls == []
    # A dry run still shows the plan, and says applying would be refused.
    dry, _ = run(tmp_path, euid=1000, dry_run=True)
    assert dry.exit_code == 0
    assert [f.code for f in dry.findings] == ["host.change.apply-blocked"]


def test_read_only_file_system_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = read_tree(tmp_path)
    monkeypatch.setattr(Host, "writable_dir", lambda self, d: f"{d} is on a read-only file system")
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert report.exit_code == 2
    assert "read-only file system" in str(change(report)["message"])
    assert read_tree(tmp_path) == before
    assert runner.calls == []


def test_a_failing_write_leaves_every_file_as_it_was(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    real = tmp_path / "etc/modprobe.d/kvm-intel.conf"
    real.unlink()
    real.mkdir()  # a directory where the managed file goes: modprobe skips it, a rename fails
    (tmp_path / "etc/modprobe.d/zz.conf").write_text("options kvm_intel nested=0\n")
    before = read_tree(tmp_path)
    report, runner = run(tmp_path, fake=FakeModprobe(tmp_path))
    assert change(report)["outcome"] == "failed"
    assert report.exit_code == 2
    assert "writing failed" in str(change(report)["message"])
    assert {
        k: v for k, v in read_tree(tmp_path).items() if not k.startswith("/var/backups")
    } == before
    assert real.is_dir()
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
    tree = read_tree(tmp_path)
    for path, text in expected.items():
        assert tree[path] == text
    after = probe_host(Host(tmp_path)).nested_after_reboot
    assert after.value is True
    assert after.decided_by is not None
    assert after.decided_by.startswith("/etc/modprobe.d/kvm-intel.conf:")
