"""Installed versions from the dpkg status database, and the CpuEnv built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.host.cpuinfo import parse_cpuinfo
from nestctl.machine import Host
from nestctl.vm.cpuarg import predict_cpu
from nestctl.vm.versions import (
    PackageVersions,
    compare_versions,
    cpu_env_for,
    cpu_env_from_host,
    parse_dpkg_status,
    read_versions,
    upstream_tuple,
)
from tests.helpers import write_tree

STATUS_84 = """\
Package: qemu-server
Status: install ok installed
Priority: optional
Version: 8.3.13
Description: Qemu Server Tools
 continuation line: Version: 1.0

Package: pve-manager
Status: install ok installed
Version: 8.4.1

Package: pve-qemu-kvm
Status: install ok installed
Version: 9.2.0-5

Package: pve-kernel-old
Status: deinstall ok config-files
Version: 1.0
garbage line without colon
"""

STATUS_92 = """\
Package: pve-qemu-kvm
Status: install ok installed
Version: 11.0.0-1

Package: qemu-server
Status: install ok installed
Version: 9.2.6

Package: pve-manager
Status: deinstall ok config-files
Version: 9.2.1
"""


def test_read_pve84_versions(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/var/lib/dpkg/status": STATUS_84})
    v = read_versions(Host(tmp_path))
    assert (v.qemu_server, v.pve_manager, v.pve_qemu_kvm) == ((8, 3, 13), (8, 4, 1), (9, 2, 0))
    assert v.raw["pve-qemu-kvm"] == v.pve_qemu_kvm_raw == "9.2.0-5"
    assert (v.qemu_server_raw, v.pve_manager_raw) == ("8.3.13", "8.4.1")


def test_removed_package_is_absent(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/var/lib/dpkg/status": STATUS_92})
    v = read_versions(Host(tmp_path))
    assert v.pve_manager is None
    assert v.qemu_server == (9, 2, 6)


def test_missing_status_file_is_no_versions_not_an_error(tmp_path: Path) -> None:
    assert read_versions(Host(tmp_path)) == PackageVersions()


def test_tolerant_dpkg_parser() -> None:
    assert parse_dpkg_status("\x00\nPackage:\n\nVersion: 1\n") == {}


@pytest.mark.parametrize(
    ("a", "b", "result"),
    [
        ("9.2.6", "9.2.10", -1),
        ("1:1.0", "2.0", 1),
        ("9.2.0-5", "9.2.0-10", -1),
        ("1.0~rc1", "1.0", -1),
        ("8.3.13", "8.3.13", 0),
        ("1.0a", "1.0", 1),
    ],
)
def test_debian_version_comparison(a: str, b: str, result: int) -> None:
    assert compare_versions(a, b) == result
    assert compare_versions(b, a) == -result


def test_upstream_tuple() -> None:
    assert upstream_tuple("1:9.2.0-5") == (9, 2, 0)
    assert upstream_tuple("garbage") is None


def test_cpu_env_from_84_versions_and_amd_cpuinfo(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/var/lib/dpkg/status": STATUS_84})
    info = parse_cpuinfo("vendor_id\t: AuthenticAMD\nflags\t\t: fpu svm sse2\n")
    env = cpu_env_for(versions=read_versions(Host(tmp_path)), cpuinfo=info)
    assert (env.host_vendor, env.qemu_version, env.qemu_server_version) == (
        "AuthenticAMD",
        (9, 2, 0),
        (8, 3, 13),
    )
    assert predict_cpu({"cpu": "host,flags=+nested-virt"}, env).error is not None


def test_cpu_env_overrides() -> None:
    env = cpu_env_for(qemu_version=(10, 1), pve_version=(9, 0))
    assert env.qemu_version == (10, 1, 0)
    assert env.qemu_server_version == (9, 0, 26)
    assert cpu_env_for(pve_version=(9, 2)).qemu_server_version is None
    assert cpu_env_for(pve_version=(8, 4)).qemu_server_version == (8, 3, 13)


def test_cpu_env_from_a_pve92_host_tree(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "/var/lib/dpkg/status": STATUS_92,
            "/proc/cpuinfo": "vendor_id\t: GenuineIntel\nflags\t\t: fpu vmx sse2\n",
            "/etc/hostname": "pve1\n",
            "/etc/pve/virtual-guest/cpu-models.conf": "cpu-model: nest\n    flags +vmx\n",
        },
    )
    env, versions, problems = cpu_env_from_host(Host(tmp_path))
    assert problems == []
    assert versions.qemu_server == (9, 2, 6)
    assert env.nodename == "pve1"
    assert env.custom_models == {"nest": {"flags": "+vmx"}}
    assert predict_cpu({"cpu": "custom-nest"}, env).value == (
        "kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep,+vmx"
    )


def test_cpu_env_from_an_empty_tree_still_works(tmp_path: Path) -> None:
    env, _versions, problems = cpu_env_from_host(Host(tmp_path), qemu_version=(10, 1, 2))
    assert env.qemu_version == (10, 1, 2)
    assert env.qemu_server_version is None
    assert problems == ["/proc/cpuinfo: unreadable; nested-virt is resolved from the CPU vendor"]
