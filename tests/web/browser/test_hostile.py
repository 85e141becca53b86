"""Hostile neighbours in a real Chromium: another page on this host sets an odd cookie."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.browser.test_dashboard import log_in, token_login

NEIGHBOUR = b"""<!doctype html><title>neighbour</title>
<script>document.cookie = "zz=a b; path=/"; document.title = "set";</script>"""


class _Neighbour(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(NEIGHBOUR)))
        self.end_headers()
        self.wfile.write(NEIGHBOUR)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def neighbour() -> Iterator[str]:
    """Another web page on 127.0.0.1, another port: cookies are shared across ports."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Neighbour)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_an_odd_cookie_from_another_page_keeps_the_visitor_logged_in(
    browser, server, sim, neighbour
):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        log_in(page, server, *token_login(sim))
        page.goto(neighbour)
        page.wait_for_function("document.title === 'set'")
        assert any(c["name"] == "zz" for c in context.cookies(server))
        page.goto(f"{server}/")
        assert page.url == f"{server}/"  # still logged in, not sent to /login
        page.click('button:has-text("Log out")')
        page.wait_for_url(f"{server}/login")
        log_in(page, server, *token_login(sim))  # and the login form's CSRF check holds
    finally:
        context.close()
