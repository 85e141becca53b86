"""Firewall pages: whether rules apply (naming the switch that is off) and rule changes with the
digest, checked in the simulator's own state."""

from __future__ import annotations

import re

from tests.web.conftest import ALICE, csrf_of, login, token

VM = "/t/lab/vm/pve1/101/firewall"


def _rule(**fields: str) -> dict[str, str]:
    base = {"type": "in", "action": "ACCEPT", "proto": "tcp", "enable": "1"}
    base.update(fields)
    return base


def _post(client, url: str, page_url: str = VM, **data: str):
    """Submit the page's own form for `url`, with the digest that form carries."""
    page = client.get(page_url)
    form = {"csrf": csrf_of(page.text)}
    digest = _digest(page.text, url)
    if digest:
        form["digest"] = digest
    form.update(data)
    return client.post(url, data=form, follow_redirects=False)


def _digest(html: str, action: str) -> str | None:
    found = re.search(rf'action="{re.escape(action)}(#[^"]*)?"', html)
    assert found, f"no form for {action}"
    start = found.start()
    m = re.search(r'name="digest" value="([^"]*)"', html[start : html.find("</form>", start)])
    return m.group(1) if m else None


def test_add_then_delete_a_rule(client, sim):
    login(client, *token(sim))
    vm = sim.cluster.vm(101)
    before = len(vm.firewall_rules)
    r = _post(client, f"{VM}/rules", **_rule(dport="2222", comment="ssh-alt"))
    assert r.status_code == 303, r.text
    assert any(rule.get("dport") == "2222" for rule in vm.firewall_rules)
    page = client.get(VM)
    assert "dport=2222" in page.text
    pos = next(i for i, rule in enumerate(vm.firewall_rules) if rule.get("dport") == "2222")
    confirm = client.get(f"{VM}/rules/{pos}/delete")
    assert "Delete rule" in confirm.text
    r = client.post(
        f"{VM}/rules/{pos}/delete",
        data={"csrf": csrf_of(confirm.text), "digest": _hidden(confirm.text, "digest")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert len(vm.firewall_rules) == before
    assert not any(rule.get("dport") == "2222" for rule in vm.firewall_rules)


def _hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m
    return m.group(1)


def test_edit_move_and_disable_rules(client, sim):
    login(client, *token(sim))
    vm = sim.cluster.vm(101)
    for port in ("1001", "1002"):
        assert _post(client, f"{VM}/rules", **_rule(dport=port)).status_code == 303
    ports = [r.get("dport") for r in vm.firewall_rules]
    assert ports[:2] == ["1002", "1001"]  # Proxmox puts a new rule first
    # Move 1002 down by one, as the page's down arrow does (moveto = pos + 2).
    page = client.get(VM)
    assert f'action="{VM}/rules/0/move"' in page.text
    r = _post(client, f"{VM}/rules/0/move", moveto="2")
    assert r.status_code == 303, r.text
    assert [r.get("dport") for r in vm.firewall_rules][:2] == ["1001", "1002"]
    pos = [r.get("dport") for r in vm.firewall_rules].index("1002")
    r = _post(client, f"{VM}/rules/{pos}/enable", enable="0")
    assert r.status_code == 303
    assert str(vm.firewall_rules[pos].get("enable", "0")) in ("0", "")
    edit = client.get(f"{VM}/rules/{pos}/edit")
    assert 'value="1002"' in edit.text
    r = client.post(
        f"{VM}/rules/{pos}/edit",
        data={
            "csrf": csrf_of(edit.text),
            "digest": _hidden(edit.text, "digest"),
            **_rule(dport="1003", action="DROP"),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert vm.firewall_rules[pos]["dport"] == "1003"
    assert vm.firewall_rules[pos]["action"] == "DROP"


def test_a_stale_digest_is_refused(client, sim):
    login(client, *token(sim))
    page = client.get(VM)
    stale = _digest(page.text, f"{VM}/rules")
    assert _post(client, f"{VM}/rules", **_rule(dport="1111")).status_code == 303
    r = client.post(
        f"{VM}/rules",
        data={"csrf": csrf_of(page.text), "digest": stale or "", **_rule(dport="2222")},
    )
    assert r.status_code in (400, 500)
    assert "digest" in r.text.lower() or "modified" in r.text.lower()
    assert not any(rule.get("dport") == "2222" for rule in sim.cluster.vm(101).firewall_rules)


def test_vm_options_policy_and_enable(client, sim):
    login(client, *token(sim))
    r = _post(client, f"{VM}/options", enable="1", policy_in="DROP", policy_out="ACCEPT")
    assert r.status_code == 303, r.text
    opts = sim.cluster.vm(101).firewall_options
    assert str(opts["enable"]) == "1"
    assert opts["policy_in"] == "DROP"


def test_whether_rules_apply_names_the_switch_that_is_off(client, sim):
    login(client, *token(sim))
    # VM 102's net0 has no firewall=1; its VM firewall is off too.
    page = client.get("/t/lab/vm/pve1/102/firewall")
    assert "Rules do not apply" in page.text
    assert "net0 has firewall=0" in page.text
    assert "VM firewall is off" in page.text
    # Turn the VM firewall on: only net0 is left.
    _post(
        client,
        "/t/lab/vm/pve1/102/firewall/options",
        page_url="/t/lab/vm/pve1/102/firewall",
        enable="1",
    )
    page = client.get("/t/lab/vm/pve1/102/firewall")
    assert "net0 has firewall=0" in page.text
    assert "VM firewall is off" not in page.text


def test_rule_change_without_the_privilege_is_refused_in_proxmox_words(client, sim):
    login(client, *ALICE)
    before = list(sim.cluster.vm(101).firewall_rules)
    r = _post(client, f"{VM}/rules", **_rule(dport="3333"))
    assert r.status_code == 403
    assert "VM.Config.Network" in r.text
    assert sim.cluster.vm(101).firewall_rules == before


def test_node_firewall_rules(client, sim):
    login(client, *token(sim))
    url = "/t/lab/node/pve1/firewall"
    r = _post(client, f"{url}/rules", page_url=url, **_rule(dport="9100", comment="metrics"))
    assert r.status_code == 303, r.text
    assert any(rule.get("dport") == "9100" for rule in sim.cluster.nodes["pve1"].firewall_rules)
    assert "Sys.Modify" in client.get(url).text


def test_bad_rule_form_gets_our_message(client, sim):
    login(client, *token(sim))
    r = _post(client, f"{VM}/rules", type="sideways", action="ACCEPT")
    assert r.status_code == 400
    assert "type must be one of" in r.text
