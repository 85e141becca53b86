"""The client's own transport (issue 24): keep-alive, stale connections, encodings, the env.

The guarantees requests gave (TLS policy, typed errors, retries) are pinned by test_client.py,
unchanged; these cover what the transport now does itself.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestctl.api import errors as ae
from nestctl.api.client import MAX_REPLY_BYTES, ApiClient
from nestctl.api.credentials import ApiToken, UserPassword
from tests.api.tls_server import Canned, Reply, make_cert, serve

TOKEN = ApiToken.parse("root@pam!nestctl=0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", source="test")


def data(obj: object, **kw: object) -> Reply:
    return Reply(200, json.dumps({"data": obj}).encode(), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def canned() -> Canned:
    return Canned()


@pytest.fixture
def url(canned: Canned, cert: tuple[Path, Path, str]) -> Iterator[str]:
    with serve(canned, cert[0], cert[1], keep_alive=True) as base:
        yield base


def client(url: str, cert: tuple[Path, Path, str], **kw: object) -> ApiClient:
    return ApiClient(url, TOKEN, fingerprint=cert[2], retries=0, timeout=5.0, **kw)  # type: ignore[arg-type]


def test_one_connection_serves_request_after_request(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    canned.routes["GET", "/version"] = lambda _: data({"version": "9.0.4"})
    with client(url, cert) as api:
        for _ in range(5):
            assert api.get("/version") == {"version": "9.0.4"}
    assert len({s.peer for s in canned.seen}) == 1


def test_a_connection_the_server_closed_is_not_reused_not_even_for_a_write(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    # pveproxy closes idle keep-alive connections; a write must not meet one (it is never
    # retried), so the pool checks an idle connection before reusing it, as urllib3 did.
    canned.routes["GET", "/version"] = lambda _: data({"version": "9.0.4"}, close=True)
    canned.routes["POST", "/nodes/pve1/qemu/100/status/start"] = lambda _: data("UPID:x")
    with client(url, cert) as api:
        api.get("/version")
        time.sleep(0.2)  # the server's FIN arrives
        assert api.post("/nodes/pve1/qemu/100/status/start") == "UPID:x"
    posts = [s for s in canned.seen if s.method == "POST"]
    assert len(posts) == 1
    assert posts[0].peer != canned.seen[0].peer


def test_params_are_encoded_as_proxmox_reads_them(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    canned.routes["GET", "/cluster/resources"] = lambda _: data([])
    canned.routes["PUT", "/nodes/pve1/qemu/100/config"] = lambda _: data(None)
    with client(url, cert) as api:
        api.get("/cluster/resources", type="vm", full=True, skip=None, ids=["1 a", "b&c"])
        api.put("/nodes/pve1/qemu/100/config", args="-cpu host,+vmx", delete=["a", "b"])
    get, put = canned.seen
    assert get.path == "/api2/json/cluster/resources?type=vm&full=1&ids=1+a&ids=b%26c"
    assert get.body == b""
    assert put.body == b"args=-cpu+host%2C%2Bvmx&delete=a&delete=b"
    assert put.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_compressed_reply_is_decoded_and_a_bomb_refused(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    gz = {"Content-Encoding": "gzip"}
    packed = gzip.compress(json.dumps({"data": [{"vmid": 100}]}).encode())
    canned.routes["GET", "/small"] = lambda _: Reply(200, packed, None, gz)
    bomb = gzip.compress(b" " * (MAX_REPLY_BYTES + 1), 9)
    canned.routes["GET", "/bomb"] = lambda _: Reply(200, bomb, None, gz)
    with client(url, cert) as api:
        assert api.get("/small") == [{"vmid": 100}]
        with pytest.raises(ae.ApiBadReplyError, match="larger than"):
            api.get("/bomb")
    assert canned.seen[0].headers["Accept-Encoding"] == "gzip, deflate"


def test_openssl_environment_variables_are_not_read_either(
    url: str,
    canned: Canned,
    cert: tuple[Path, Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # OpenSSL's own default paths honour SSL_CERT_FILE/SSL_CERT_DIR: the context never uses them.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    monkeypatch.setenv("SSL_CERT_DIR", str(cert[0].parent))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    canned.routes["GET", "/version"] = lambda _: data({"version": "9.0.4"})
    with pytest.raises(ae.ApiTlsError, match="not trusted"):
        ApiClient(url, TOKEN, retries=0, timeout=5.0).get("/version")
    assert canned.seen == []
    pinned = client(url, cert)  # and the proxy variable is not read: the answer comes direct
    assert pinned.get("/version") == {"version": "9.0.4"}


@pytest.fixture
def raw_replies(cert: tuple[Path, Path, str]) -> Iterator[tuple[str, list[bytes], list[bytes]]]:
    """A TLS server that answers each connection's first request with the next raw reply."""
    replies: list[bytes] = []
    seen: list[bytes] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert[0], cert[1])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            with ctx.wrap_socket(raw, server_side=True) as conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                seen.append(data)
                conn.sendall(replies.pop(0) if replies else b"")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", replies, seen
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_chunked_and_interim_replies_are_read(
    raw_replies: tuple[str, list[bytes], list[bytes]], cert: tuple[Path, Path, str]
) -> None:
    url, replies, _ = raw_replies
    body = json.dumps({"data": {"version": "9.0.4"}}).encode()
    chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in (body[:7], body[7:]))
    replies.append(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunked + b"0\r\nX-Trailer: 1\r\n\r\n"
    )
    assert client(url, cert).get("/version") == {"version": "9.0.4"}


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}",  # closed mid-reply
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
        b"",  # hung up without a word
        "HTTP/1.1 200 OK\r\nContent-Length: \u00b9\r\n\r\n{}".encode(),  # isdigit() is true
        "HTTP/1.1 \u0662\u0660\u0660 OK\r\nContent-Length: 2\r\n\r\n{}".encode(),
    ],
    ids=[
        "not-http",
        "two-lengths",
        "short",
        "bad-chunk",
        "many-headers",
        "silence",
        "superscript-length",
        "arabic-indic-status",
    ],
)
def test_a_broken_reply_is_a_connection_error_never_a_traceback(
    raw_replies: tuple[str, list[bytes], list[bytes]],
    cert: tuple[Path, Path, str],
    reply: bytes,
) -> None:
    url, replies, _ = raw_replies
    replies.append(reply)
    with pytest.raises(ae.ApiConnectionError, match="cannot reach"):
        client(url, cert).get("/version")


def test_a_hostile_ticket_cannot_inject_a_header(
    url: str, canned: Canned, cert: tuple[Path, Path, str]
) -> None:
    ticket = {"ticket": "PVE:root@pam:T\r\nX-Injected: 1", "CSRFPreventionToken": "C"}
    canned.routes["POST", "/access/ticket"] = lambda _: data(ticket)
    canned.routes["GET", "/nodes"] = lambda _: data([])
    api = ApiClient(url, UserPassword("root@pam", "pw"), fingerprint=cert[2], retries=0)
    with pytest.raises(ae.ApiConnectionError):
        api.get("/nodes")
    assert [s.path for s in canned.seen] == ["/api2/json/access/ticket"]
