"""What the routes share: the visitor's API for a target, error pages, redirects."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from nestctl.web.sessions import Session
from nestctl.web.snapshot import describe_error, privilege_of, status_of
from nestctl.web.state import WebState
from nestctl.web.templating import render


class NotLoggedInError(Exception):
    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def web(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def session(request: Request) -> Session:
    s: Session | None = request.state.session
    if s is None:  # the middleware lets no such request through
        raise NotLoggedInError("")
    return s


def all_vms(request: Request) -> bool:
    """This visitor judges every VM as if it wanted nesting (`/prefs/all-vms`; off by default).
    `overview.snapshot` applies it, so every page that shows a verdict honours it."""
    s: Session | None = request.state.session
    return s is not None and s.all_vms


def api_for(request: Request, target: str) -> Any:
    """The visitor's API for `target`, or NotLoggedInError (shown as a link to log in there)."""
    s = session(request)
    api = s.api(target)
    if api is None or web(request).settings.target(target) is None:
        raise NotLoggedInError(target)
    return api


def form(request: Request) -> dict[str, str]:
    """The form the middleware already read and checked (CSRF) for this unsafe request."""
    data: dict[str, str] = request.state.form
    return data


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def follow_task(request: Request, target: str, api: Any, upid: Any) -> RedirectResponse:
    """Follow the task from now on (the task page and /wait read this follower's state) and
    send the visitor to its page."""
    web(request).followers.start(session(request).id, api, upid)
    return see_other(f"/t/{quote(target, safe='')}/task/{quote(upid.text, safe='')}")


def failure(request: Request, title: str, exc: BaseException, back: str) -> HTMLResponse:
    """Proxmox's own message; a 403 names the missing privilege."""
    status = status_of(exc)
    return render(
        request,
        "failure.html",
        status_code=status if status in (400, 403, 404, 409, 500, 501, 595) else 502,
        title=title,
        message=describe_error(exc),
        privilege=privilege_of(exc),
        status=status,
        back=back,
    )


def not_logged_in(request: Request, exc: Exception) -> Response:
    target = exc.target if isinstance(exc, NotLoggedInError) else ""
    return render(request, "not_logged_in.html", status_code=403, target=target)
