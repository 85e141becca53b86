"""The dashboard's `--all-vms`: a visitor's toggle to judge every VM as if it wanted nesting (issue
18). Off by default; every page honours it; one visitor's choice is not another's."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from tests.pvesim import PveSim
from tests.web.conftest import csrf_of, login, token, wait_for

VM103 = "/t/lab/vm/pve1/103"  # default-cpu: no tag, no flags: not meant to nest


def _row(html: str, href: str) -> str:
    """A guest's row on the home screen (or the tree's entry where the home is the tree)."""
    start = html.index(f'href="{href}"')
    return html[start : html.index("</li>", start)]


#: pve1's VMs as the tree counts them: all four meant for nothing (neutral), then judged.
NEUTRAL = "4 VMs: 0 ready, 0 not ready, 0 unknown, 4 not nested"
JUDGED = "4 VMs: 2 ready, 2 not ready, 0 unknown, 0 not nested"


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
    tree = _tree(client)
    overview = wait_for(client, tree, NEUTRAL, timeout=20)
    assert NEUTRAL in overview  # off by default: VMs meant for nothing are neutral
    assert "Judge every VM as if it wanted nesting" in overview
    assert "103 default-cpu" not in overview  # a neutral VM is not listed as a problem
    assert "First broken link" not in client.get(VM103).text

    assert _toggle(client, True, VM103) == VM103
    assert "First broken link: config" in client.get(VM103).text  # the one verdict's words
    assert "v-not-ready" in client.get("/t/lab/node/pve1").text
    overview = client.get(tree).text
    assert JUDGED in overview
    assert "103 default-cpu" in overview  # now listed among the not ready
    assert "Judge only VMs meant to nest" in overview
    home = client.get("/").text  # the home screen's inventory badges the same VM
    assert "v-not-ready" in _row(home, VM103)
    assert "Judge only VMs meant to nest" in home

    # Another visitor's pages are their own: still neutral there.
    other = make_client()
    login(other, *token(sim))
    assert NEUTRAL in wait_for(other, _tree(other), NEUTRAL, timeout=20)
    assert "First broken link" not in other.get(VM103).text

    _toggle(client, False, "/")
    assert "v-not-ready" not in _row(client.get("/").text, VM103)
    assert "First broken link" not in client.get(VM103).text
    assert NEUTRAL in client.get(tree).text


def test_the_toggle_goes_back_only_to_this_dashboard(
    make_client: Callable[..., TestClient], sim: PveSim
) -> None:
    client = make_client()
    login(client, *token(sim))
    for back in ("//evil.example/", "https://evil.example/", "/\\evil.example", "x"):
        assert _toggle(client, True, back) == "/"
    csrf_less = client.post("/prefs/all-vms", data={"all_vms": "1"}, follow_redirects=False)
    assert csrf_less.status_code == 403
