"""The ASGI app: routes of every page module behind one security middleware."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response

from nestctl.web.backend import Connector
from nestctl.web.cache import Refresher
from nestctl.web.consoles.broker import ConsoleBroker
from nestctl.web.follow import Followers
from nestctl.web.pages import (
    assets,
    backups,
    console,
    ct,
    enable,
    events,
    firewall,
    fwfix,
    inventory,
    login,
    node,
    overview,
    power,
    prefs,
    snapshots,
    tasklist,
    tasks,
    vm,
)
from nestctl.web.pages.common import NotLoggedInError, not_logged_in
from nestctl.web.security import SecurityMiddleware
from nestctl.web.sessions import LoginLimiter, Session, SessionStore
from nestctl.web.settings import ServeSettings
from nestctl.web.snapshot import TreeBuilder
from nestctl.web.state import WebState
from nestctl.web.templating import render


async def _not_found(request: Request, _exc: Exception) -> Response:
    return render(request, "not_found.html", status_code=404)


def create_app(settings: ServeSettings, connector: Connector, tree: TreeBuilder) -> Starlette:
    cache = Refresher(settings.refresh_interval, per_visitor=settings.refresh_per_visitor)

    followers = Followers()
    consoles = ConsoleBroker(settings.console_idle)

    def ended(s: Session) -> None:
        cache.drop(s.id)
        followers.drop(s.id)
        consoles.drop_session(s.id)

    state = WebState(
        settings=settings,
        connector=connector,
        tree=tree,
        sessions=SessionStore(
            settings.session_ttl,
            settings.idle_ttl,
            on_end=ended,
            max_sessions=settings.max_sessions,
            prelogin_ttl=settings.prelogin_ttl,
            prelogin_per_client=settings.prelogin_per_client,
        ),
        limiter=LoginLimiter(
            settings.login_attempts,
            settings.login_window,
            client_attempts=settings.client_login_attempts,
        ),
        cache=cache,
        followers=followers,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(60)
                state.sessions.sweep()
                state.limiter.sweep()

        task = asyncio.get_running_loop().create_task(sweep())
        try:
            yield
        finally:
            task.cancel()
            cache.close()
            followers.close()

    routes = [
        *assets.routes,
        *login.routes,
        *inventory.routes,
        *overview.routes,
        *node.routes,
        *vm.routes,
        *ct.routes,
        *power.routes,
        *tasks.routes,
        *tasklist.routes,
        *fwfix.routes,
        *firewall.routes,
        *enable.routes,
        *prefs.routes,
        *snapshots.routes,
        *backups.routes,
        *events.routes,
        *console.routes,
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(GZipMiddleware, minimum_size=500),
            Middleware(
                SecurityMiddleware,
                store=state.sessions,
                tls=settings.tls,
                listen=settings.host,
                allowed_hosts=settings.allowed_hosts,
                body_timeout=settings.header_timeout,
            ),
        ],
        exception_handlers={NotLoggedInError: not_logged_in, 404: _not_found},
        lifespan=lifespan,
    )
    app.state.web = state
    app.state.settings = settings
    app.state.consoles = consoles
    return app
