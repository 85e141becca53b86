"""Arbitrary bytes in sysfs, cpuinfo, modprobe.d and the kernel command line never crash nestctl:
the parsers return a value or None, and the whole report still renders as JSON."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestctl.host.change import change_report
from nestctl.host.cpuinfo import parse_cpuinfo
from nestctl.host.kcmdline import parse_kernel_cmdline
from nestctl.host.modprobe import parse_modprobe
from nestctl.host.plan import plan_change
from nestctl.host.probe import probe_host
from nestctl.host.report import host_report
from nestctl.host.values import kernel_bool, kernel_int, sysfs_bool, sysfs_int
from nestctl.machine import Host, RecordingRunner
from nestctl.render.jsonout import dumps_report
from tests.helpers import write_tree
from tests.host.scenarios import intel_host

#: Tests that build a whole host tree per example run fewer of them, in proportion to the loaded
#: profile (tests/conftest.py): `--hypothesis-profile=thorough` raises these too.
SLOW_EXAMPLES = max(20, settings.default.max_examples * 3 // 5)

# Text as the Host door decodes it: any bytes, decoded with replacement.
decoded = st.binary(max_size=400).map(lambda b: b.decode("utf-8", errors="replace"))
texty = st.one_of(decoded, st.text(max_size=200))
# Modprobe-ish: keywords, names, values, continuation and comments mixed with junk.
tokens = st.sampled_from(
    ["options", "install", "blacklist", "softdep", "kvm_intel", "kvm-intel", "nested=", "Y", "0",
     "nested", "#", "\\", "\n", " ", "\t", "=", "pre:", "\r\n", "\x00"]
)  # fmt: skip
modprobe_text = st.lists(st.one_of(tokens, st.text(max_size=5)), max_size=40).map("".join)


@given(texty)
def test_value_parsers_never_raise(text: str) -> None:
    assert sysfs_bool(text) in (True, False, None)
    assert sysfs_int(text) is None or sysfs_int(text) >= 0  # type: ignore[operator]
    assert kernel_bool(text) in (True, False, None)
    value = kernel_int(text)
    assert value is None or -(2**31) <= value < 2**31


@given(texty)
def test_cpuinfo_parser_never_raises(text: str) -> None:
    info = parse_cpuinfo(text)
    assert info.vendor in ("intel", "amd", "other")
    assert info.virt_flag in ("vmx", "svm", None)


@given(st.one_of(modprobe_text, texty))
def test_modprobe_parser_never_raises(text: str) -> None:
    lines = text.count("\n") + 1
    for d in parse_modprobe(text, "/etc/modprobe.d/x.conf"):
        assert 1 <= d.lineno <= d.last_lineno <= lines
        d.option_values("nested")


@given(texty)
def test_cmdline_parser_never_raises(text: str) -> None:
    for p in parse_kernel_cmdline(text):
        assert "-" not in p.module
        assert p.module
        assert p.param


@settings(max_examples=SLOW_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(
    nested=st.binary(max_size=40),
    refcnt=st.binary(max_size=20),
    cpuinfo=st.one_of(st.binary(max_size=300), st.just(b"vendor_id: GenuineIntel\nflags: vmx\n")),
    conf=st.one_of(st.binary(max_size=300), modprobe_text.map(str.encode)),
    cmdline=st.binary(max_size=200),
    release=st.binary(max_size=30),
    pidfile=st.binary(max_size=20),
)
def test_whole_report_survives_garbage_everywhere(
    nested: bytes,
    refcnt: bytes,
    cpuinfo: bytes,
    conf: bytes,
    cmdline: bytes,
    release: bytes,
    pidfile: bytes,
) -> None:
    root = Path(tempfile.mkdtemp(prefix="nestctl-fuzz-"))
    try:
        files: dict[str, str | bytes] = dict(intel_host("Y"))
        files.update(
            {
                "/sys/module/kvm_intel/parameters/nested": nested,
                "/sys/module/kvm_intel/refcnt": refcnt,
                "/proc/cpuinfo": cpuinfo,
                "/etc/modprobe.d/zz.conf": conf,
                "/proc/cmdline": cmdline,
                "/proc/sys/kernel/osrelease": release,
                "/var/run/qemu-server/100.pid": pidfile,
            }
        )
        write_tree(root, files)
        report = host_report(Host(root))
        body = json.loads(dumps_report(report.to_json()))  # strict JSON
        assert body["verdict"] in ("ready", "not-ready", "unknown")
        assert report.exit_code in (0, 1, 2)
    finally:
        shutil.rmtree(root)


@settings(max_examples=SLOW_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(
    etc=modprobe_text,
    managed=st.one_of(st.none(), modprobe_text),
    lib=st.one_of(st.none(), modprobe_text),
    action=st.sampled_from(["enable", "disable"]),
)
def test_enable_disable_on_any_modprobe_files_converges(
    etc: str, managed: str | None, lib: str | None, action: str
) -> None:
    """Whatever the files hold: no crash; when applied, `nested` after reboot is what was asked,
    and a second run has no file to change."""
    root = Path(tempfile.mkdtemp(prefix="nestctl-fuzz-"))
    try:
        # The kernel default is the opposite of the wish, so a swallowed line shows.
        release = "4.15.18-30-pve" if action == "enable" else "6.8.12-4-pve"
        files: dict[str, str | bytes] = dict(
            intel_host("Y" if action == "enable" else "N", release=release)
        )
        files["/etc/modprobe.d/zz.conf"] = etc
        if managed is not None:
            files["/etc/modprobe.d/kvm-intel.conf"] = managed
        if lib is not None:
            files["/lib/modprobe.d/kvm-intel.conf"] = lib
        write_tree(root, files)
        report = change_report(Host(root, runner=RecordingRunner(), euid=0), action, stamp="S")
        outcome = report.payload["change"]["outcome"]
        assert outcome in ("done", "nothing-to-do", "refused", "persisted"), report.to_json()
        if outcome in ("done", "nothing-to-do"):
            facts = probe_host(Host(root))
            assert facts.nested_after_reboot.value is (action == "enable"), report.to_json()
            again = plan_change(Host(root), facts, action)
            assert again.files == (), [f.diff() for f in again.files]
    finally:
        shutil.rmtree(root)
