"""`nested` after reboot, computed the way kmod does: directories, hiding, order, spelling, command
line, kernel default; and the small parsers under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.host import modprobe
from nestctl.host.kcmdline import parse_kernel_cmdline, split_cmdline
from nestctl.host.kernel import nested_default, parse_release
from nestctl.host.probe import probe_host
from nestctl.host.rules import host_findings
from nestctl.host.values import kernel_bool, kernel_int, sysfs_bool, sysfs_int
from nestctl.machine import Host
from tests.helpers import write_tree
from tests.host.scenarios import intel_host


def after(tmp_path: Path, files: dict[str, str | bytes], **kw: str) -> tuple[object, str | None]:
    write_tree(tmp_path, intel_host("Y", extra=files, **kw))  # type: ignore[arg-type]
    a = probe_host(Host(tmp_path)).nested_after_reboot
    return a.value, a.decided_by


def test_no_setting_means_kernel_default(tmp_path: Path) -> None:
    assert after(tmp_path, {}) == (True, "kernel default (Linux >= 4.20)")


def test_old_kernel_default_is_off(tmp_path: Path) -> None:
    assert after(tmp_path, {}, release="4.15.18-30-pve") == (False, "kernel default (Linux < 4.20)")


def test_files_apply_in_name_order_across_directories(tmp_path: Path) -> None:
    files = {
        "/etc/modprobe.d/a.conf": "options kvm_intel nested=0\n",
        "/lib/modprobe.d/b.conf": "options kvm_intel nested=1\n",
    }
    assert after(tmp_path, files) == (True, "/lib/modprobe.d/b.conf:1")


def test_earlier_directory_hides_the_same_name(tmp_path: Path) -> None:
    files = {
        "/etc/modprobe.d/kvm.conf": "options kvm_intel nested=1\n",
        "/run/modprobe.d/kvm.conf": "options kvm_intel nested=0\n",
        "/usr/lib/modprobe.d/kvm.conf": "options kvm_intel nested=0\n",
    }
    assert after(tmp_path, files) == (True, "/etc/modprobe.d/kvm.conf:1")
    host = Host(tmp_path)
    [cf] = [c for c in modprobe.collect_config_files(host) if c.path.endswith("/kvm.conf")]
    assert cf.hides == ("/run/modprobe.d/kvm.conf", "/usr/lib/modprobe.d/kvm.conf")


def test_directory_precedence_order(tmp_path: Path) -> None:
    names = [f"{d}/x.conf" for d in modprobe.MODPROBE_DIRS]
    for keep in range(len(names)):
        root = tmp_path / str(keep)
        files = {n: f"options kvm_intel nested={i % 2}\n" for i, n in enumerate(names) if i >= keep}
        value, where = after(root, files)  # type: ignore[arg-type]
        assert where == f"{names[keep]}:1"
        assert value is bool(keep % 2)


def test_only_conf_files_count(tmp_path: Path) -> None:
    files = {
        "/etc/modprobe.d/kvm.conf.dpkg-old": "options kvm_intel nested=0\n",
        "/etc/modprobe.d/kvm.bak": "options kvm_intel nested=0\n",
        "/etc/modprobe.d/.hidden.conf": "options kvm_intel nested=0\n",
        "/etc/modprobe.d/dir.conf/inner.conf": "options kvm_intel nested=0\n",
    }
    assert after(tmp_path, files) == (True, "kernel default (Linux >= 4.20)")


def test_later_options_in_one_file_win_and_spellings_match(tmp_path: Path) -> None:
    text = (
        "options kvm-intel nested=Y\n# options kvm_intel nested=1\n"
        "options kvm_intel ept=1 nested=N\n"
    )
    assert after(tmp_path, {"/etc/modprobe.d/k.conf": text}) == (False, "/etc/modprobe.d/k.conf:3")


def test_backslash_continuation(tmp_path: Path) -> None:
    text = "options kvm_intel \\\n    ept=1 \\\n    nested=0\noptions kvm_amd nested=1\n"
    assert after(tmp_path, {"/etc/modprobe.d/k.conf": text}) == (False, "/etc/modprobe.d/k.conf:1")
    [d, _] = modprobe.parse_modprobe(text, "/k")
    assert (d.lineno, d.last_lineno) == (1, 3)


def test_kernel_command_line_wins(tmp_path: Path) -> None:
    files = {"/etc/modprobe.d/z.conf": "options kvm_intel nested=0\n"}
    cmd = "BOOT_IMAGE=/vmlinuz ro kvm-intel.nested=1 quiet\n"
    assert after(tmp_path, files, cmdline=cmd) == (True, "kernel command line")


def test_command_line_after_double_dash_is_for_init(tmp_path: Path) -> None:
    cmd = "ro quiet -- kvm_intel.nested=0\n"
    assert after(tmp_path, {}, cmdline=cmd) == (True, "kernel default (Linux >= 4.20)")


def test_bare_bool_parameter_means_on(tmp_path: Path) -> None:
    cmd = "ro kvm_intel.nested\n"
    assert after(
        tmp_path, {"/etc/modprobe.d/a.conf": "options kvm_intel nested=0\n"}, cmdline=cmd
    ) == (
        True,
        "kernel command line",
    )


def test_value_the_kernel_rejects(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        intel_host("Y", extra={"/etc/modprobe.d/k.conf": "options kvm_intel nested=yes-please\n"}),
    )
    a = probe_host(Host(tmp_path)).nested_after_reboot
    assert a.value is True  # kstrtobool looks at the first character only
    (tmp_path / "etc/modprobe.d/k.conf").write_text("options kvm_intel nested=maybe\n")
    facts = probe_host(Host(tmp_path))
    assert facts.nested_after_reboot.invalid
    assert facts.nested_after_reboot.value is None


def test_install_blacklist_softdep_and_bad_lines_are_noted(tmp_path: Path) -> None:
    text = (
        "install kvm_intel /bin/true\n"
        "blacklist kvm-intel\n"
        "softdep kvm_intel pre: kvm\n"
        "options kvm_intel\n"
        "frobnicate kvm_intel\n"
    )
    write_tree(tmp_path, intel_host("Y", extra={"/etc/modprobe.d/k.conf": text}))
    codes = [f.code for f in host_findings(probe_host(Host(tmp_path)))]
    assert codes.count("host.modprobe.install") == 1
    assert codes.count("host.modprobe.blacklist") == 1
    assert codes.count("host.modprobe.softdep") == 1
    assert codes.count("host.modprobe.bad-line") == 1  # "options kvm_intel" with no options


def test_logical_lines_keep_numbers() -> None:
    assert modprobe.logical_lines("a\\\nb\nc\r\n\\") == [(1, 2, "ab"), (3, 3, "c"), (4, 4, "")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Y\n", True),
        ("N", False),
        ("1\n", True),
        ("0", False),
        ("y", True),
        ("2", True),
        ("", None),
        ("yes", None),
        ("\x00", None),
        (None, None),
    ],
)
def test_sysfs_bool(text: str | None, value: bool | None) -> None:
    assert sysfs_bool(text) is value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Y", True),
        ("yes", True),
        ("1", True),
        ("on", True),
        ("true", True),
        ("N", False),
        ("0", False),
        ("off", False),
        ("o", None),
        ("", None),
        ("x", None),
        (None, True),
    ],
)
def test_kernel_bool(text: str | None, value: bool | None) -> None:
    assert kernel_bool(text) is value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("0x10", 16),
        ("010", 8),
        ("-3", -3),
        ("+2", 2),
        ("Y", None),
        ("", None),
        ("1 ", None),
        ("99999999999", None),
    ],
)
def test_kernel_int(text: str, value: int | None) -> None:
    assert kernel_int(text) == value


def test_sysfs_int() -> None:
    assert sysfs_int("3\n") == 3
    assert sysfs_int("-1") is None
    assert sysfs_int("\u0663") is None  # a non-ASCII digit is not a refcount


def test_cmdline_quotes_and_modules() -> None:
    words = split_cmdline('root=/dev/sda1 acpi_osi="Windows 2020" kvm-intel.nested=1 -- x.y=1')
    assert words == ["root=/dev/sda1", "acpi_osi=Windows 2020", "kvm-intel.nested=1"]
    [p] = parse_kernel_cmdline("ro kvm-intel.nested=1 .x=1 y.=2 BOOT_IMAGE=/a.b")
    assert (p.module, p.param, p.value) == ("kvm_intel", "nested", "1")


def test_release_and_default() -> None:
    assert parse_release("6.8.12-4-pve\n") == (6, 8)
    assert parse_release("garbage") is None
    assert nested_default("kvm_intel", (4, 19)) is False
    assert nested_default("kvm_intel", (4, 20)) is True
    assert nested_default("kvm_intel", None) is None
    assert nested_default("kvm_amd", None) is True
