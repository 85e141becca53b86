"""The container page links its snapshots, backups (issue 20) and console (issue 22)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.pvesim import PveSim
from tests.web.conftest import login, token, wait_for


def _card(body: str, card: str) -> str:
    return body.split(f'id="{card}"')[1].split("</section>", maxsplit=1)[0]


def test_the_container_page_links_its_snapshots_and_backups(
    sim: PveSim, client: TestClient
) -> None:
    login(client, *token(sim))
    for vmid in (150, 151):  # running and stopped alike
        card = _card(client.get(f"/t/lab/ct/pve1/{vmid}").text, "ct-snapbackup")
        for part in ("snapshots", "backup"):
            href = f"/t/lab/ct/pve1/{vmid}/{part}"
            assert f'href="{href}"' in card
            assert client.get(href).status_code == 200, href


def test_a_running_container_links_its_console(sim: PveSim, client: TestClient) -> None:
    login(client, *token(sim))
    body = wait_for(client, "/t/lab/ct/pve1/150", 'id="ct-status">running')
    card = _card(body, "ct-console")
    assert 'href="/t/lab/ct/pve1/150/console"' in card
    assert client.get("/t/lab/ct/pve1/150/console").status_code == 200


def test_a_stopped_container_says_why_there_is_no_console(sim: PveSim, client: TestClient) -> None:
    login(client, *token(sim))
    body = wait_for(client, "/t/lab/ct/pve1/151", 'id="ct-status">stopped')
    card = _card(body, "ct-console")
    assert "/console" not in card
    assert "The console opens once the container runs: start it first." in card
