"""Loopback receivers for real Apprise deliveries: a JSON webhook (Apprise's json://), an
endpoint speaking ntfy's publish API (ntfy://), and an SMTP server (aiosmtpd, Debian's
python3-aiosmtpd). Each keeps what it received as (title, body)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        self.server.handle_publish(self, self._body())

    do_PUT = do_POST  # noqa: N815 - http.server's name


class _Server(ThreadingHTTPServer):
    kind = "json"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.got: list[tuple[str, str]] = []
        self.raw: list[bytes] = []
        self.status = 200

    def handle_publish(self, req: _Handler, body: bytes) -> None:
        self.raw.append(body)
        if self.kind == "json":  # Apprise json://: {"version", "title", "message", "type"}
            doc = json.loads(body)
            self.got.append((doc["title"], doc["message"]))
            reply: dict[str, Any] = {}
        else:  # ntfy: JSON to / with a topic, or the message as the body of /TOPIC
            if req.path.strip("/"):
                topic = req.path.strip("/")
                title = req.headers.get("X-Title") or req.headers.get("Title") or ""
                doc = {"topic": topic, "title": title, "message": body.decode()}
            else:
                doc = json.loads(body)
            if not doc.get("topic"):
                self.status = 400
            self.got.append((doc.get("title", ""), doc.get("message", "")))
            reply = {"id": "sGXnUKxLoJF8", "time": 1, "event": "message", **doc}
        out = json.dumps(reply).encode()
        req.send_response(self.status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(out)))
        req.end_headers()
        req.wfile.write(out)


@contextmanager
def http_receiver(kind: str) -> Iterator[_Server]:
    server = _Server()
    server.kind = kind
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.raw.append(envelope.content)
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.got.append((str(msg.get("Subject", "")), _text(msg)))
        return "250 Message accepted for delivery"


def _text(msg: Message) -> str:
    parts = msg.walk() if msg.is_multipart() else [msg]
    for part in parts:
        if part.get_content_type() in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8")
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_receiver() -> Iterator[tuple[_Mailbox, int]]:
    from aiosmtpd.controller import Controller  # noqa: PLC0415

    box = _Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()
