"""The container config parser against pve-container's rules and hostile input."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from nestctl.ct.config import parse_ct_config, parse_device, parse_features
from nestctl.ct.report import analyse_ct, ct_json

PENDING = """arch: amd64
features: nesting=1
unprivileged: 1
lxc.cgroup2.devices.allow: c 10:232 rwm

[pve:pending]
features: keyctl=1,nesting=1
delete: swap,!mp0

[before-docker]
#snapshot note
features: nesting=0
snaptime: 1700000000
lxc.mount.entry: /dev/kvm dev/kvm none bind,optional,create=file
"""


def test_sections_pending_delete_and_snapshot_raw_lines() -> None:
    conf = parse_ct_config(PENDING, 200)
    assert conf.main["features"] == "nesting=1"
    assert conf.pending == {"features": "keyctl=1,nesting=1"}
    assert conf.pending_delete == [("swap", False), ("mp0", True)]
    snap = conf.snapshots["before-docker"]
    assert snap.values["description"] == "snapshot note\n"
    assert snap.lxc == [("lxc.mount.entry", "/dev/kvm dev/kvm none bind,optional,create=file")]
    assert conf.lxc == [("lxc.cgroup2.devices.allow", "c 10:232 rwm")]  # the snapshot's stay there
    assert conf.problems == []


def test_pending_features_need_a_restart_on_a_running_ct() -> None:
    result = analyse_ct(parse_ct_config(PENDING, 200), running=True)
    codes = {f.code: f for f in result.findings}
    assert codes["ct.restart-required"].fix == "pct reboot 200"


def test_proxmox_warnings_and_refusals() -> None:
    text = (
        "lxc.rootfs.path: /x\nlxc.aa_profile: unconfined\nlxc.bogus.key: 1\n"
        "lxc.environment.runtime: A=1\nlxc.environment.runtime: B=2\n"
        "foo-bar: 1\ndelete: swap\nlxc.net.0.type = veth\nlxc.cgroup.devices.allow: a\n"
    )
    conf = parse_ct_config(text, 201)
    assert conf.main["env"] == "A=1\0B=2"
    assert ("lxc.aa_profile", "unconfined") in conf.lxc  # renamed, kept with a warning
    assert ("lxc.net.0.type", "veth") in conf.lxc  # `key = value` too
    assert not any(k in ("lxc.rootfs.path", "lxc.bogus.key") for k, _ in conf.lxc)
    assert conf.problems == [
        "vm 201 - lxc.rootfs.path: lxc.rootfs.path is auto generated from rootfs",
        "vm 201 - lxc.aa_profile is deprecated and was renamed to lxc.apparmor.profile",
        "vm 201 - unable to parse config: lxc.bogus.key: 1",
        "vm 201 - unable to parse config: foo-bar: 1",
        "vm 201 - property 'delete' is only allowed in [pve:pending]",
        "vm 201 - lxc.cgroup.devices.allow is deprecated, this will be a hard error in the future!",
    ]


def test_features_and_devices_as_property_strings() -> None:
    assert parse_features("nesting=1,keyctl=yes")[0] == {"nesting": "1", "keyctl": "1"}
    assert parse_features("mount=nfs;cifs")[0] == {"mount": "nfs;cifs"}
    assert "invalid key" in (parse_features("nesting=1,docker=1")[1] or "")
    assert parse_device("/dev/kvm,gid=104,mode=0660")[0] == {
        "path": "/dev/kvm", "gid": "104", "mode": "0660"
    }  # fmt: skip
    assert parse_device("/dev/kvm,gid=-1")[1] is not None


def test_mount_points_are_listed() -> None:
    text = "mp0: /HDD1,mp=/media/HDD1\nmp1: local-lvm:vm-1-disk-1,mp=/data,backup=1,size=8G\n"
    body = ct_json(analyse_ct(parse_ct_config(text, 102), running=False))
    assert body["mount_points"] == [
        {"key": "mp0", "volume": "/HDD1", "path": "/media/HDD1"},
        {"key": "mp1", "volume": "local-lvm:vm-1-disk-1", "path": "/data"},
    ]


def test_digest_is_the_sha1_of_the_file() -> None:
    assert parse_ct_config("", 100).digest == "da39a3ee5e6b4b0d3255bfef95601890afd80709"


LINE_PARTS = st.sampled_from(
    [
        "features: ", "nesting=1", ",keyctl=1", "fuse=", "dev0: ", "/dev/kvm", ",gid=",
        "lxc.cgroup2.devices.allow: ", "c 10:232 rwm", "lxc.mount.entry: ", "[pve:pending]",
        "[snap]", "[", "]", "#", "%ZZ", "%E2%82", "unprivileged: ", "1", "tags: nested",
        "delete: ", "!", "=", ":", " ", "\t", "\r", "\x00", "٣", "¹", "lxc.idmap: g 1 2 1",
        "mknod=1", "mount=", ";", "deny-write=1", "mode=0666", "\u202e", "a" * 50,
    ]
)  # fmt: skip


@given(st.lists(st.lists(LINE_PARTS, max_size=8).map("".join), max_size=30))
def test_any_config_text_is_read_without_error(lines: list[str]) -> None:
    text = "\n".join(lines)
    conf = parse_ct_config(text, 100, "/etc/pve/lxc/100.conf")
    result = analyse_ct(conf, running=None, all_cts=True)
    body = ct_json(result)
    assert body["vmid"] == 100
    assert result.verdict.verdict in ("ready", "not-ready", "unknown", "not-nested")
    for f in result.findings:
        assert f.message
        assert "Traceback" not in f.message


@given(st.text(alphabet=string.printable + "٣¹\x00\u202e", max_size=400))
def test_any_text_at_all(text: str) -> None:
    result = analyse_ct(parse_ct_config(text, 999_999_999), running=True, all_cts=True)
    assert result.verdict.verdict in ("ready", "not-ready", "unknown")


def test_a_long_run_of_spaces_is_linear() -> None:
    text = "lxc.mount.entry:" + " " * 200_000 + "x" + " " * 200_000 + "\n"
    text += "hostname:" + " " * 200_000 + "y\n"
    conf = parse_ct_config(text, 100)
    assert conf.lxc == [("lxc.mount.entry", "x")]
    assert conf.main["hostname"] == "y"
