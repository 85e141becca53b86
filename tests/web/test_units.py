"""Pure parts: whether firewall rules apply, rule forms, task ids, plans, sessions, the limiter,
the history graph."""

from __future__ import annotations

import pytest

from nestctl.api import actions
from nestctl.api import firewall as fw
from nestctl.web.sessions import LoginLimiter, SessionStore
from nestctl.web.sparkline import series, svg

ON = {"enable": "1"}
OFF = {"enable": "0"}


def test_rules_apply_only_when_all_three_switches_are_on():
    conf = {"net0": "virtio=AA:BB:CC:DD:EE:FF,bridge=vmbr0,firewall=1"}
    assert fw.applies(ON, ON, conf).value is True
    got = fw.applies(OFF, ON, conf)
    assert got.value is False
    assert got.off == ["cluster firewall is off (Datacenter > Firewall > Options: enable=1)"]
    got = fw.applies(ON, {}, conf)  # a VM's firewall is off by default
    assert got.value is False
    assert got.off[0].startswith("VM firewall is off")


def test_the_nic_that_is_off_is_named():
    conf = {
        "net0": "virtio=AA:BB:CC:DD:EE:00,bridge=vmbr0,firewall=1",
        "net1": "virtio=AA:BB:CC:DD:EE:01,bridge=vmbr1",
        "net10": "e1000=AA:BB:CC:DD:EE:02,bridge=vmbr0,firewall=0",
    }
    got = fw.applies(ON, ON, conf)
    assert got.value is False
    assert got.off == [
        "net1 has firewall=0 (set firewall=1 on net1)",
        "net10 has firewall=0 (set firewall=1 on net10)",
    ]
    assert fw.applies(ON, ON, {"name": "x"}).off == ["the VM has no network device"]


def test_a_switch_we_could_not_read_is_unknown_never_no():
    conf = {"net0": "virtio=AA:BB:CC:DD:EE:FF,firewall=1"}
    got = fw.applies(None, ON, conf, cluster_why="HTTP 403: Permission check failed (/, Sys.Audit)")
    assert got.value is None
    assert got.unknown == ["cluster firewall: HTTP 403: Permission check failed (/, Sys.Audit)"]
    # ...but one switch known off is a "no", whatever else is unread.
    assert fw.applies(None, OFF, conf).value is False


def test_rule_forms():
    params, delete = fw.rule_params(
        {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": " 22 ", "enable": "on"},
        new=True,
    )
    assert params == {
        "type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22", "enable": "1",
    }  # fmt: skip
    with pytest.raises(fw.RuleError, match="a port needs a protocol") as refused:
        fw.rule_params({"type": "in", "action": "ACCEPT", "dport": "22"}, new=True)
    assert refused.value.field == "proto"
    assert delete == []
    params, delete = fw.rule_params({"type": "out", "action": "DROP"}, new=False)
    assert params["enable"] == "0"
    assert "dport" in delete
    assert "comment" in delete
    with pytest.raises(fw.RuleError, match="needs an action"):
        fw.rule_params({"type": "in"}, new=True)
    with pytest.raises(fw.RuleError, match="type must be"):
        fw.rule_params({"type": "up", "action": "ACCEPT"}, new=True)
    with pytest.raises(fw.RuleError, match="action must be"):
        fw.rule_params({"type": "in", "action": "DROP; rm"}, new=True)
    with pytest.raises(fw.RuleError, match="not per node"):
        fw.set_options(
            None, fw.Scope("pve1"), enable=None, policy_in="DROP", policy_out=None, digest=None
        )


def test_scopes_name_their_paths_and_privileges():
    assert fw.Scope("pve1", 101).base == "/nodes/pve1/qemu/101/firewall"
    assert fw.Scope("pve1").base == "/nodes/pve1/firewall"
    assert fw.Scope("pve1", 101).change_privilege == "VM.Config.Network"
    assert fw.Scope("pve1").change_privilege == "Sys.Modify"


def test_task_ids():
    upid = actions.parse_upid("UPID:pve1:0000A1B2:0012C3D4:65F0A1B2:qmstart:101:root@pam!api:")
    assert upid is not None
    assert (upid.node, upid.type, upid.id, upid.user) == ("pve1", "qmstart", "101", "root@pam!api")
    assert actions.parse_upid("UPID:pve1:0000A1B2:0012C3D4:65F0A1B2:vzdump::root@pam:").id == ""
    for bad in ("", "UPID:pve1", "UPID:pve1:zz:0012C3D4:65F0A1B2:qmstart:101:root@pam:", None):
        assert actions.parse_upid(bad) is None  # type: ignore[arg-type]


def test_a_plan_becomes_api_parameters():
    params, delete = actions.plan_params(
        [("--cpu", "host"), ("--machine", "q35"), ("--delete", "args,hookscript")]
    )
    assert params == {"cpu": "host", "machine": "q35"}
    assert delete == ["args", "hookscript"]


def test_polling_slows_down_for_long_tasks():
    assert actions.poll_delay(0.0) < actions.poll_delay(10.0) < actions.poll_delay(60.0) == 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_login_limiter_counts_per_client_and_per_user():
    clock = Clock()
    limiter = LoginLimiter(3, 60.0, clock)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1", "root@pam") == 0
        limiter.failed("10.0.0.1", "root@pam")
    assert limiter.retry_after("10.0.0.1", "root@pam") == pytest.approx(60.0)
    # The same user from elsewhere, and its tokens, are limited too; other users are not.
    assert limiter.retry_after("10.0.0.2", "ROOT@pam!tok") > 0
    assert limiter.retry_after("10.0.0.2", "alice@pve") == 0
    clock.now += 61
    assert limiter.retry_after("10.0.0.1", "root@pam") == 0


def test_sessions_expire_when_idle_and_after_their_lifetime():
    clock = Clock()
    ended = []
    store = SessionStore(ttl=100.0, idle_ttl=10.0, clock=clock, on_end=ended.append)
    s = store.create()
    s.logins["lab"] = ("root@pam", object())
    clock.now += 9
    assert store.get(s.id) is s
    clock.now += 11
    assert store.get(s.id) is None
    assert ended == [s]
    assert s.logins == {}  # the API client (ticket) is dropped with it
    s2 = store.create()
    for _ in range(12):
        clock.now += 9
        store.get(s2.id)
    assert store.get(s2.id) is None  # absolute lifetime, however active
    assert not s2.csrf_ok("")
    assert not s2.csrf_ok(None)


def test_history_graph_skips_missing_samples():
    rows = [
        {"time": 60, "cpu": 0.5},
        {"time": 0, "cpu": "0.25"},
        {"time": 120},
        {"time": 180, "cpu": 1.0},
        "junk",
    ]
    assert series(rows, "cpu") == [(0.0, 0.25), (60.0, 0.5), (180.0, 1.0)]
    assert series([{"time": 0, "mem": 50, "maxmem": 100}], "mem", scale_by="maxmem") == [(0.0, 0.5)]
    drawn = svg(series(rows, "cpu"))
    assert drawn.count("<polyline") == 1
    assert 'points="0.0,' in drawn
    assert "<polyline" not in svg([])
