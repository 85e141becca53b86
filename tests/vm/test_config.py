"""The VM config parser reads files as qemu-server's parse_vm_config does (reference §1)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nestctl.machine import Host
from nestctl.vm.config import load_vm_configs, parse_pending_delete, parse_vm_config
from tests.helpers import write_tree

PATH = "/etc/pve/qemu-server/100.conf"


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_vm_config(text, 100, PATH)


def test_description_lines_are_uri_decoded_and_kept() -> None:
    conf = parse("#first%3A line\n#caf%C3%A9\ncores: 2\n#late line\n")
    assert conf.description == "first: line\ncafé\nlate line"
    assert conf.main == {"cores": "2"}


def test_pending_section_with_delete_separators_and_force() -> None:
    text = "cpu: kvm64\nmemory: 2048\n\n[PENDING]\ncpu: host\ndelete: memory;!scsi1, net0 vga\n"
    conf = parse(text)
    assert conf.pending == {"cpu": "host"}
    assert conf.pending_delete == [
        ("memory", False),
        ("scsi1", True),
        ("net0", False),
        ("vga", False),
    ]
    assert conf.with_pending() == {"cpu": "host"}
    assert conf.current() == {"cpu": "kvm64", "memory": "2048"}
    assert conf.has_pending


def test_pending_header_is_case_insensitive() -> None:
    assert parse("[pending]\ncpu: host\n").pending == {"cpu": "host"}


def test_special_cloudinit_and_snapshot_sections() -> None:
    text = (
        "cpu: host\nparent: snap1\n\n[special:cloudinit]\nipconfig0: ip=dhcp\n\n"
        "[snap1]\n#before upgrade\ncpu: kvm64\nsnaptime: 1700000000\n"
    )
    conf = parse(text)
    assert conf.main == {"cpu": "host", "parent": "snap1"}
    assert conf.special == {"cloudinit": {"ipconfig0": "ip=dhcp"}}
    assert conf.snapshots["snap1"] == {
        "cpu": "kvm64",
        "snaptime": "1700000000",
        "description": "before upgrade",
    }
    assert conf.problems == []


def test_unknown_section_is_skipped_with_a_warning() -> None:
    conf = parse("cpu: host\n[bogus section!]\nmemory: 1\n[PENDING]\ncores: 4\n")
    assert conf.main == {"cpu": "host"}
    assert conf.pending == {"cores": "4"}
    assert conf.problems == ["vm 100 - skipping unknown section: 'bogus section!'"]


def test_duplicate_section_starts_over_as_proxmox_does() -> None:
    conf = parse("[PENDING]\ncpu: host\ndelete: cores\n[PENDING]\nmemory: 4096\n")
    assert conf.pending == {"memory": "4096"}
    assert conf.pending_delete == []
    assert conf.problems == ["vm 100 - duplicate section: pending"]


def test_description_key_and_comment_lines_join_like_proxmox() -> None:
    conf = parse("description: one%0A\n#two\ncores: 1\n[snap1]\n#snap note  \n")
    assert conf.description == "one\ntwo"
    assert conf.snapshots["snap1"]["description"] == "snap note"


def test_last_delete_line_in_pending_wins() -> None:
    conf = parse("[PENDING]\ndelete: a\ndelete: b,c\n")
    assert conf.pending_delete == [("b", False), ("c", False)]


def test_delete_outside_pending_is_warned_and_ignored() -> None:
    conf = parse("cpu: host\ndelete: cpu\n")
    assert conf.main == {"cpu": "host"}
    assert conf.pending_delete == []
    assert conf.problems == ["vm 100 - property 'delete' is only allowed in [PENDING]"]


def test_duplicate_key_last_value_wins_and_is_reported() -> None:
    conf = parse("cpu: host\ncores: 2\ncpu: kvm64\n")
    assert conf.main["cpu"] == "kvm64"
    assert conf.problems == [
        "vm 100 - duplicate key 'cpu' (lines 1 and 3); the last value wins",
    ]


def test_cdrom_becomes_ide2_and_values_are_trimmed() -> None:
    conf = parse("cdrom: none,media=cdrom   \r\nname:   web01\t\n")
    assert conf.main == {"ide2": "none,media=cdrom", "name": "web01"}


def test_garbage_lines_become_problems() -> None:
    conf = parse("cpu: host\nthis is not a key\nCPU: upper\n: x\n")
    assert conf.main == {"cpu": "host"}
    assert len(conf.problems) == 3
    assert conf.problems[0] == "vm 100 - unable to parse config: this is not a key"


def test_unknown_keys_and_args_are_kept_raw() -> None:
    conf = parse("args: -cpu host,+vmx -hypervisor\nfuturekey7: whatever\n")
    assert conf.main == {"args": "-cpu host,+vmx -hypervisor", "futurekey7": "whatever"}


def test_digest_is_sha1_of_the_whole_raw_text() -> None:
    text = "cpu: host\n\n[snap]\ncpu: kvm64\n"
    assert parse(text).digest == hashlib.sha1(text.encode()).hexdigest()


def test_parse_pending_delete_dedupes() -> None:
    assert parse_pending_delete(" a,,!a; !b ") == [("a", True), ("b", True)]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parser_never_raises_on_any_text(text: str) -> None:
    conf = parse(text)
    assert isinstance(conf.problems, list)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "cpu: host",
                "[PENDING]",
                "delete: cpu",
                "[snap1]",
                "[special:cloudinit]",
                "#c%ZZ",
                "[[x]]",
                "cdrom: none",
                "garbage",
                "   ",
                "description: d%0A",
            ]
        )
    )
)
def test_parser_never_raises_on_structured_junk(lines: list[str]) -> None:
    conf = parse("\n".join(lines))
    conf.with_pending()


# -- reading from a host ---------------------------------------------------------------------------


def test_load_local_node_configs_sorted(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "/etc/pve/qemu-server/101.conf": "cpu: host\n",
            "/etc/pve/qemu-server/100.conf": "cores: 2\n",
            "/etc/pve/qemu-server/notes.txt": "x",
        },
    )
    confs = load_vm_configs(Host(tmp_path))
    assert [c.vmid for c in confs] == [100, 101]
    assert confs[1].main == {"cpu": "host"}


def test_load_all_nodes_through_the_pmxcfs_symlink_counts_once(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "/etc/pve/nodes/pve1/qemu-server/100.conf": "cpu: host\n",
            "/etc/pve/nodes/pve2/qemu-server/200.conf": "cpu: kvm64\n",
        },
    )
    os.symlink("nodes/pve1/qemu-server", tmp_path / "etc/pve/qemu-server")
    host = Host(tmp_path)
    local = load_vm_configs(host)
    assert [(c.vmid, c.node) for c in local] == [(100, "pve1")]
    cluster = load_vm_configs(host, all_nodes=True)
    assert [(c.vmid, c.node) for c in cluster] == [(100, "pve1"), (200, "pve2")]


def test_load_requested_vmid_that_does_not_exist(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/etc/pve/qemu-server/100.conf": "cpu: host\n"})
    confs = load_vm_configs(Host(tmp_path), vmids=[100, 999])
    assert [c.readable for c in confs] == [True, False]
    assert confs[1].problems == [
        "Configuration file '/etc/pve/qemu-server/999.conf' does not exist"
    ]


def test_load_with_no_proxmox_tree_is_empty(tmp_path: Path) -> None:
    assert load_vm_configs(Host(tmp_path)) == []
    assert load_vm_configs(Host(tmp_path), all_nodes=True) == []
