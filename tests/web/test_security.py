"""The one middleware: headers, cross-origin refusal, CSRF, certificates, listen addresses."""

from __future__ import annotations

import struct

import pytest

from nestctl.web.settings import ServeSettings, TargetSpec, listen_problem
from tests.web.conftest import csrf_of, login, settings_for, token

WRONG_FP = ":".join(["AB"] * 32)


def test_security_headers_on_every_page(client, sim):
    # Errors and redirects too (404, 303 to the login, 401 for scripts), not only 200s.
    for url in ("/login", "/static/app.css", "/manifest.webmanifest", "/static/nope.js", "/"):
        r = client.get(url, follow_redirects=False)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_script_or_style(client, sim):
    login(client, *token(sim))
    for url in ("/", "/login", "/t/lab/vm/pve1/101", "/t/lab/vm/pve1/101/firewall"):
        html = client.get(url).text
        for bad in ("<script>", "<style", " style=", " onclick=", "javascript:"):
            assert bad not in html, (url, bad)


def test_wrong_csrf_token_is_refused_and_nothing_changes(client, sim):
    login(client, *token(sim))
    before = sim.cluster.vm(103).status
    r = client.post("/t/lab/vm/pve1/103/power/start", data={"csrf": "not-the-token"})
    assert r.status_code == 403
    assert "CSRF" in r.text
    r = client.post("/t/lab/vm/pve1/103/power/start")
    assert r.status_code == 403
    assert sim.cluster.vm(103).status == before == "stopped"


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
    ],
)
def test_cross_origin_requests_are_refused_even_with_the_token(client, sim, headers):
    login(client, *token(sim))
    csrf = csrf_of(client.get("/").text)
    r = client.post("/t/lab/vm/pve1/103/power/start", data={"csrf": csrf}, headers=headers)
    assert r.status_code == 403
    assert "cross-origin" in r.text
    assert sim.cluster.vm(103).status == "stopped"


def test_same_origin_request_with_the_token_passes(client, sim):
    login(client, *token(sim))
    csrf = csrf_of(client.get("/").text)
    r = client.post(
        "/t/lab/vm/pve1/103/power/start",
        data={"csrf": csrf},
        headers={"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8765"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith("/t/lab/task/UPID%3Apve1%3A")


def test_wrong_certificate_is_refused_before_any_credential_is_sent(make_client, sim):
    client = make_client(ServeSettings([TargetSpec("lab", sim.url, WRONG_FP)]))
    sim.clear_requests()
    r = login(client, *token(sim))
    assert r.status_code == 401
    assert "does not match the pinned" in r.text
    assert "trust this certificate" not in r.text.lower()  # a pin is never overridden here
    assert sim.requests == []  # TLS failed before any HTTP request (and any secret) went out
    assert client.get("/", follow_redirects=False).status_code == 303


def test_unpinned_self_signed_certificate_needs_a_confirmed_fingerprint(make_client, sim):
    client = make_client(ServeSettings([TargetSpec("lab", sim.url, None)]))
    r = login(client, *token(sim))
    assert r.status_code == 200
    assert sim.fingerprint in r.text  # shown for the first-use comparison
    assert client.get("/", follow_redirects=False).status_code == 303  # not logged in
    r = client.post(
        "/trust",
        data={"csrf": csrf_of(r.text), "target": "lab", "fingerprint": sim.fingerprint},
    )
    assert "confirmed" in r.text
    r = client.post(
        "/login",
        data={
            "csrf": csrf_of(r.text),
            "username": token(sim)[0],
            "password": token(sim)[1],
            "target": "lab",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get("/").status_code == 200


def test_confirming_a_different_fingerprint_does_not_log_in(make_client, sim):
    client = make_client(ServeSettings([TargetSpec("lab", sim.url, None)]))
    r = login(client, *token(sim))
    r = client.post(
        "/trust", data={"csrf": csrf_of(r.text), "target": "lab", "fingerprint": WRONG_FP}
    )
    r = client.post(
        "/login",
        data={
            "csrf": csrf_of(r.text),
            "username": token(sim)[0],
            "password": token(sim)[1],
            "target": "lab",
        },
    )
    assert r.status_code == 401
    assert "does not match" in r.text


def test_listen_address_rules():
    assert listen_problem("127.0.0.1", tls=False, insecure_http=False) is None
    assert listen_problem("::1", tls=False, insecure_http=False) is None
    assert "clear text" in (listen_problem("0.0.0.0", tls=False, insecure_http=False) or "")
    assert listen_problem("192.0.2.1", tls=True, insecure_http=False) is None
    assert listen_problem("192.0.2.1", tls=False, insecure_http=True) is None


def test_request_body_size_is_capped(client, sim):
    login(client, *token(sim))
    r = client.post("/logout", content=b"x" * 70_000, headers={"content-type": "text/plain"})
    assert r.status_code == 413


def test_static_files_and_manifest(client, sim):
    r = client.get("/manifest.webmanifest")
    body = r.json()
    assert body["display"] == "standalone"
    sizes = {i["sizes"] for i in body["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in body["icons"]:
        got = client.get(icon["src"])
        assert got.status_code == 200
        assert got.headers["content-type"].startswith(icon["type"])
    assert client.get("/static/..%2Fpyproject.toml").status_code == 404
    assert client.get("/static/nope.js").status_code == 404


def test_settings_for_helper_names_the_sim(sim):
    assert settings_for(sim).targets[0].fingerprint == sim.fingerprint


def test_app_icons_are_real_pngs_of_their_size(client):
    for size in (192, 512):
        r = client.get(f"/icon-{size}.png")
        assert r.status_code == 200
        assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert struct.unpack(">II", r.content[16:24]) == (size, size)
    assert client.get("/icon-64.png").status_code == 404
