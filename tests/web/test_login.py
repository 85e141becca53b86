"""Logging in: a token or user + password (+ TOTP); refusals; the rate limit; logout; expiry."""

from __future__ import annotations

import time

from tests.pvesim import totp_now
from tests.web.conftest import ALICE, BASE, csrf_of, login, settings_for, token


def test_no_session_redirects_browsers_to_login_and_refuses_scripts(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/"
    r = client.get("/changes?key=target/lab", headers={"accept": "application/json"})
    assert r.status_code == 401
    r = client.post("/t/lab/vm/pve1/103/power/start", data={"csrf": "x"})
    assert r.status_code == 401


def test_login_with_a_token(client, sim):
    r = login(client, *token(sim))
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    page = client.get("/")
    assert page.status_code == 200
    assert "root@pam!pvesim" in page.text
    assert token(sim)[1] not in page.text


def test_login_with_user_and_password(client, sim):
    r = login(client, *ALICE)
    assert r.status_code == 303
    assert "alice@pve" in client.get("/").text


def test_login_with_totp(client, sim):
    secret = "JBSWY3DPEHPK3PXP"
    sim.add_user("bob@pve", "bob-password", privs=["PVEAuditor"], totp_secret=secret)
    r = login(client, "bob@pve", "bob-password")
    assert r.status_code == 401
    assert 'name="otp"' in r.text  # asks for the code, keeps the user name
    r = login(client, "bob@pve", "bob-password", otp=totp_now(secret))
    assert r.status_code == 303


def test_wrong_password_is_refused_then_rate_limited(make_client, sim):
    client = make_client(settings_for(sim, login_attempts=3))
    for _ in range(3):
        r = login(client, ALICE[0], "wrong")
        assert r.status_code == 401
        assert "login refused" in r.text
    r = login(client, *ALICE)  # even the right password waits now
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    assert "too many failed logins" in r.text
    assert client.cookies.get("nestctl_session") is None


def test_login_needs_the_login_nonce(client, sim):
    r = client.post(
        "/login",
        data={"csrf": "guessed", "username": ALICE[0], "password": ALICE[1], "target": "lab"},
    )
    assert r.status_code == 403


def test_open_redirect_is_not_followed(client, sim):
    page = client.get("/login?next=//evil.example/")
    data = {"csrf": csrf_of(page.text), "username": ALICE[0], "password": ALICE[1]}
    data.update(target="lab", next="//evil.example/")
    r = client.post("/login", data=data, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_logout_ends_the_session(client, sim):
    login(client, *token(sim))
    sid = client.cookies.get("nestctl_session")
    page = client.get("/")
    r = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
    # The browser drops the cookie; the server must forget the id too (a copied cookie is dead).
    client.cookies.set("nestctl_session", sid)
    assert client.get("/", follow_redirects=False).status_code == 303
    assert client.app.state.web.sessions.all() == []


def test_sessions_expire(make_client, sim):
    client = make_client(settings_for(sim, idle_ttl=0.2))
    login(client, *token(sim))
    assert client.get("/", follow_redirects=False).status_code == 200
    time.sleep(0.3)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_secure_cookie_under_tls(make_client, sim, tmp_path):
    settings = settings_for(sim, tls_cert="c.pem", tls_key="k.pem")
    client = make_client(settings)
    client.base_url = BASE.replace("http:", "https:")
    r = login(client, *token(sim))
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-nestctl_session=")
    assert "Secure" in cookie


def test_no_secret_in_logs(client, sim, caplog):
    caplog.set_level("DEBUG")
    login(client, *token(sim))
    login(client, ALICE[0], "wrong-password-xyz")
    text = caplog.text
    assert token(sim)[1] not in text
    assert "wrong-password-xyz" not in text


def test_every_login_gets_a_new_session_id(client, sim):
    login(client, *token(sim))
    first = client.cookies.get("nestctl_session")
    page = client.get("/")
    assert login(client, *ALICE).status_code == 303  # a second login in the same browser
    second = client.cookies.get("nestctl_session")
    assert second != first
    # The old id and its CSRF token are dead; the new session keeps both identities.
    client.cookies.clear()
    client.cookies.set("nestctl_session", first)
    r = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 401
    client.cookies.clear()
    client.cookies.set("nestctl_session", second)
    html = client.get("/").text
    assert "alice@pve" in html
