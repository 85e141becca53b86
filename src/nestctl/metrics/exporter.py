"""The `/metrics` endpoint: a fresh check per scrape (or the cached page within min-interval).

Each page is built from a finished run into a fresh prometheus_client registry whose only
collector yields that run's families, so a scrape never sees a half-built page and no gauge
lives on between runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nestctl.metrics.family import Families
from nestctl.metrics.run import Check, CheckRunner

#: One past the exhausted 9100-9999 exporter range, mirroring pve-exporter's 9221 (docs/metrics.md).
DEFAULT_PORT = 10221


def render_page(fam: Families) -> tuple[bytes, str]:
    """The exposition page of one finished run, through prometheus_client; (body, content type)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # noqa: PLC0415
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

    class Snapshot:
        def collect(self) -> Iterator[GaugeMetricFamily]:
            for family in fam:
                gauge = GaugeMetricFamily(family.name, family.help, labels=family.label_names)
                for sample in family.samples:
                    gauge.add_metric(sample.labels, sample.value)
                yield gauge

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot())
    return generate_latest(registry), str(CONTENT_TYPE_LATEST)


class Exporter:
    """Scrapes in, pages out: fresh or cached, one check at a time."""

    def __init__(self, check: Check, *, guests: bool, timeout: float, min_interval: float) -> None:
        self.runner = CheckRunner(check, guests=guests)
        self.timeout = timeout
        self.min_interval = min_interval
        self.last_success: float | None = None
        self._lock = threading.Lock()
        self._page: tuple[float, bytes, str] | None = None  # (monotonic time, body, type)

    def page(self) -> tuple[bytes, str]:
        with self._lock:  # concurrent scrapes share one check
            now = time.monotonic()
            if self._page is not None and now - self._page[0] < self.min_interval:
                return self._page[1], self._page[2]
            result = self.runner.run(self.timeout, self.last_success)
            if result.ok:
                self.last_success = result.finished
            body, ctype = render_page(result.families)
            self._page = (time.monotonic(), body, ctype)
            return body, ctype


def make_server(exporter: Exporter, host: str, port: int, family: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "nestctl-exporter"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body, ctype = exporter.page()
                self._send(200, body, ctype)
            elif path == "/":
                page = b"nestctl exporter: metrics at /metrics\n"
                self._send(200, page, "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a scrape every few seconds is not news."""

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    return Server((host, port), Handler)
