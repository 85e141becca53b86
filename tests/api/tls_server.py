"""A tiny real HTTPS server with a self-signed certificate, for the client's own tests.

The Proxmox simulator (tests.pvesim) serves the cluster; this one answers canned replies so a test
can put any status, reason phrase or body on the wire and see what the client makes of it.
"""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"data": null}'
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # hang up after this reply without saying so (an idle timeout)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: int = 0  # the client's port: one per connection


@dataclass
class Canned:
    routes: dict[tuple[str, str], Callable[[Seen], Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)


def make_cert(directory: Path) -> tuple[Path, Path, str]:
    """(cert, key, SHA-256 fingerprint as Proxmox shows it) for CN/SAN 127.0.0.1."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    return cert, key, ":".join(digest[i : i + 2] for i in range(0, 64, 2))


@contextmanager
def serve(canned: Canned, cert: Path, key: Path, *, keep_alive: bool = False) -> Iterator[str]:
    """Serve `canned` on 127.0.0.1 over TLS (HTTP/1.1 keep-alive if asked); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            path = self.path.split("?")[0].removeprefix("/api2/json")
            body = self.rfile.read(length)
            seen = Seen(self.command, self.path, dict(self.headers), body, self.client_address[1])
            canned.seen.append(seen)
            route = canned.routes.get((self.command, path))
            reply = route(seen) if route else Reply(501, b'{"data": null}', "Method not found")
            self.send_response(reply.status, reply.reason)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
            self.close_connection = self.close_connection or reply.close

        do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that timed out and hung up is what some tests do on purpose

    server = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
