"""The dashboard's `--all-vms`: a visitor's toggle to judge every VM as if it wanted nesting (issue
18). Off by default; every page honours it; one visitor's choice is not another's."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from tests.pvesim import PveSim
from tests.web.conftest import csrf_of, login, token, wait_for

VM103 = "/t/lab/vm/pve1/103"  # default-cpu: no tag, no flags: not meant to nest


def _h1_badge(html: str) -> str:
    m = re.search(r"<h1>.*?class=\"badge v-([a-z-]+)\"", html, re.S)
    assert m, html[:1500]
    return m.group(1)


def _node_badge(html: str, vmid: int) -> str:
    m = re.search(rf">{vmid} [^<]*</a> <span class=\"badge v-([a-z-]+)\"", html)
    assert m, html[:3000]
    return m.group(1)


def _tree(client: TestClient) -> str:
    """The tree of layers: `/`, or `/tree` once the home screen is the inventory (i19web)."""
    return "/tree" if client.get("/tree").status_code == 200 else "/"


def _toggle(client: TestClient, on: bool, back: str) -> str:
    csrf = csrf_of(client.get("/").text)
    r = client.post(
        "/prefs/all-vms",
        data={"csrf": csrf, "all_vms": "1" if on else "0", "back": back},
        follow_redirects=False,
    )
    assert r.status_code == 303
    return str(r.headers["location"])


def test_a_not_nested_vm_is_judged_with_the_toggle_and_neutral_without(
    make_client: Callable[..., TestClient], sim: PveSim
) -> None:
    client = make_client()
    login(client, *token(sim))
    html = wait_for(client, VM103, 'class="badge', timeout=20)
    assert _h1_badge(html) == "not-nested"  # off by default: neutral
    assert "First broken link" not in html
    overview = client.get(_tree(client)).text
    assert "Judge every VM as if it wanted nesting" in overview
    assert "103 default-cpu" not in overview  # a neutral VM is not listed as a problem

    assert _toggle(client, True, VM103) == VM103
    html = client.get(VM103).text
    assert _h1_badge(html) == "not-ready"
    assert "First broken link: config" in html
    assert _node_badge(client.get("/t/lab/node/pve1").text, 103) == "not-ready"
    overview = client.get(_tree(client)).text
    assert "103 default-cpu" in overview  # now listed among the not ready
    assert "Judge only VMs meant to nest" in overview

    # Another visitor's pages are their own: still neutral there.
    other = make_client()
    login(other, *token(sim))
    assert _h1_badge(wait_for(other, VM103, 'class="badge', timeout=20)) == "not-nested"

    _toggle(client, False, "/")
    assert _h1_badge(client.get(VM103).text) == "not-nested"
    assert _node_badge(client.get("/t/lab/node/pve1").text, 103) == "not-nested"


def test_the_toggle_goes_back_only_to_this_dashboard(
    make_client: Callable[..., TestClient], sim: PveSim
) -> None:
    client = make_client()
    login(client, *token(sim))
    for back in ("//evil.example/", "https://evil.example/", "/\\evil.example", "x"):
        assert _toggle(client, True, back) == "/"
    csrf_less = client.post("/prefs/all-vms", data={"all_vms": "1"}, follow_redirects=False)
    assert csrf_less.status_code == 403
