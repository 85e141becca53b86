"""Real published container configs (tests/data/lxc, provenance in PROVENANCE.md): each is read
as pve-container reads it, and each feature combination gets its nesting verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.ct.config import parse_ct_config
from nestctl.ct.report import analyse_ct

DATA = Path(__file__).resolve().parents[1] / "data" / "lxc"

# name -> (problems Proxmox warns about, intent, verdict, workloads docker/systemd/kvm/fuse,
#          finding codes)
CASES: dict[str, tuple[int, str, str, tuple[bool | None, ...], set[str]]] = {
    # unprivileged, keyctl+nesting: what Docker needs
    "vitovts-docker-ct.conf": (0, "config", "ready", (True, True, False, False), set()),
    # + fuse=1 (fuse-overlayfs)
    "homelab-palserve-fuse.conf": (0, "config", "ready", (True, True, False, True), set()),
    # nesting alone (the wizard's default) asks for nothing: not nested, systemd fine
    "homelab-gpu-passthrough.conf": (0, "none", "not-nested", (False, True, False, False), set()),
    # privileged, raw /dev/kvm bind + rule: KVM usable; nesting in a privileged CT is a warning
    "homecloud-privileged-kvm.conf": (
        0, "config", "ready", (True, True, True, False),
        {"ct.nesting.privileged", "ct.keyctl.privileged"},
    ),
    # unprivileged raw bind with the node's kvm group mapped in by lxc.idmap
    "janus-runner-idmap-kvm.conf": (0, "config", "ready", (True, True, True, False), set()),
    # unprivileged raw bind without idmap: owner unmapped, only the node's mode decides
    "meta-mono-github-runner.conf": (
        0, "config", "unknown", (True, True, None, False), {"ct.kvm.owner-unmapped"},
    ),
    # privileged, old lxc.cgroup. rule only (no bind): works only if the CT mknods it
    "stackexchange-gns3-102.conf": (
        2, "config", "unknown", (False, False, None, False),
        {"ct.config.problem", "ct.kvm.not-bound", "ct.systemd.nesting-off"},
    ),
    # privileged dev0 /dev/kvm without gid: usable by root only (a warning)
    "virtualdsm-dev-kvm.conf": (
        0, "config", "ready", (False, False, True, False),
        {"ct.kvm.no-group", "ct.systemd.nesting-off"},
    ),
    # privileged, old rule + bind: usable
    "android-emulator-kvm.conf": (
        1, "config", "ready", (False, False, True, False),
        {"ct.config.problem", "ct.systemd.nesting-off"},
    ),
    # `allow: a` and unconfined AppArmor ask for nothing in particular: not nested
    "docker-unconfined-fragment.conf": (
        1, "none", "not-nested", (False, False, None, False),
        {"ct.config.problem", "ct.systemd.nesting-off"},
    ),
}  # fmt: skip


def test_every_published_config_has_a_case() -> None:
    assert sorted(p.name for p in DATA.glob("*.conf")) == sorted(CASES)
    provenance = (DATA / "PROVENANCE.md").read_text()
    assert all(f"- {name}:" in provenance for name in CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_published_config(name: str) -> None:
    problems, intent, verdict, can, codes = CASES[name]
    conf = parse_ct_config((DATA / name).read_text(), 200, f"/etc/pve/lxc/{name}")
    assert len(conf.problems) == problems, conf.problems
    result = analyse_ct(conf, running=None)
    assert result.intent.intent == intent
    assert result.verdict.verdict == verdict
    assert tuple(result.workloads.values()) == can
    assert {f.code for f in result.findings} == codes
    if verdict in ("not-ready", "unknown"):
        assert result.verdict.fix is not None  # the exact pct set is offered


def test_raw_lines_keep_order_and_repeats() -> None:
    conf = parse_ct_config((DATA / "janus-runner-idmap-kvm.conf").read_text(), 200)
    assert [k for k, _ in conf.lxc].count("lxc.idmap") == 4
    assert conf.lxc[2] == ("lxc.idmap", "g 993 103 1")
    empty = parse_ct_config((DATA / "docker-unconfined-fragment.conf").read_text(), 200)
    assert ("lxc.cap.drop", "") in empty.lxc  # an empty value is kept, as Proxmox keeps it
    assert empty.main["description"] == "insert docker part below"


@pytest.mark.parametrize(
    ("features", "unprivileged", "tag", "verdict", "codes"),
    [
        ("", True, True, "not-ready", {"ct.docker.nesting-off", "ct.systemd.nesting-off"}),
        ("nesting=1", True, True, "not-ready", {"ct.docker.keyctl-off"}),
        ("keyctl=1", True, False, "not-ready", {"ct.docker.nesting-off", "ct.systemd.nesting-off"}),
        ("nesting=1,keyctl=1", True, True, "ready", set()),
        ("nesting=1", False, True, "ready", {"ct.nesting.privileged"}),
        ("", False, True, "not-ready", {"ct.docker.nesting-off", "ct.systemd.nesting-off"}),
        ("nesting=1", True, False, "not-nested", set()),
        ("", True, False, "not-nested", {"ct.systemd.nesting-off"}),
        ("fuse=1,keyctl=1,nesting=1", True, True, "ready", set()),
        # Proxmox refuses the whole string: nothing of it is in force
        ("nesting=1,keyctl=1,bogus=1", True, True, "not-ready", {"ct.config.features-invalid",
                                                                 "ct.docker.nesting-off",
                                                                 "ct.systemd.nesting-off"}),
    ],
)  # fmt: skip
def test_each_feature_combination(
    features: str, unprivileged: bool, tag: bool, verdict: str, codes: set[str]
) -> None:
    text = "arch: amd64\nostype: debian\n"
    text += f"features: {features}\n" if features else ""
    text += "unprivileged: 1\n" if unprivileged else ""
    text += "tags: nested\n" if tag else ""
    result = analyse_ct(parse_ct_config(text, 300), running=True)
    assert result.verdict.verdict == verdict
    assert {f.code for f in result.findings} == codes


def test_fix_keeps_other_features_and_names_the_api_put() -> None:
    text = "features: fuse=1,mount=nfs\nunprivileged: 1\ntags: nested\n"
    result = analyse_ct(parse_ct_config(text, 300), running=False)
    assert result.fix is not None
    assert result.fix.pct(300) == "pct set 300 --features fuse=1,keyctl=1,mount=nfs,nesting=1"
    assert result.fix.api_params() == {"features": "fuse=1,keyctl=1,mount=nfs,nesting=1"}
    assert result.fix.needs_root  # keyctl: only root@pam may change it


def test_nesting_alone_is_allowed_to_vm_allocate() -> None:
    text = "unprivileged: 1\n"
    result = analyse_ct(parse_ct_config(text, 300), running=False, all_cts=True)
    assert result.fix is not None
    only_nesting = analyse_ct(parse_ct_config(text + "ostype: debian\n", 300), running=False)
    assert only_nesting.verdict.verdict == "not-nested"
