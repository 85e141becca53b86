"""uvicorn, bounded: a deadline for each request's headers and a cap on open connections.

uvicorn offers `limit_concurrency` (a 503 once a request's headers are in) and
`timeout_keep_alive` (idle time *between* requests), but neither version we support (Debian 12's
0.17.6, and today's) times out a client that never finishes its headers: such connections
stayed open for minutes and, by the thousand, ran the process out of file descriptors. This
subclass of uvicorn's h11 protocol closes a connection whose next request has not begun
`header_timeout` seconds after it opened (or after its last response), and closes at once any
connection past `max_connections`. h11 itself caps a request's headers at 16 KiB.
"""

from __future__ import annotations

import asyncio
from typing import Any


def bounded_protocol(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """An h11 protocol class for `uvicorn.Config(http=...)` with these two bounds."""
    from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: PLC0415 - serve extra

    class BoundedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.close()  # over the cap: no file descriptor kept for it
                return
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(header_timeout, self._expire, self.cycle)

        def _expire(self, cycle_then: Any) -> None:
            if self.transport.get_protocol() is not self:
                return  # upgraded to a WebSocket: that protocol has the connection now
            # The same cycle as when armed: no new request's headers arrived in time.
            if self.cycle is cycle_then and not self.transport.is_closing():
                self.transport.close()

    return BoundedH11Protocol
