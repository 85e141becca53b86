"""`/login`, `/trust` and `/logout`: a Proxmox user + password (+ TOTP) or an API token.

A token is entered as user name `USER@REALM!TOKENID` with its secret as the password. Failed
logins are limited per client and per user; the session cookie is HttpOnly, SameSite=Strict and
Secure under TLS; nothing secret is ever put in the page, the URL or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.web.backend import Login, LoginError, OtpRequiredError, UntrustedCertificateError
from nestctl.web.pages.common import form, see_other, web
from nestctl.web.security import LOGIN_NONCE_COOKIE, cookie_name
from nestctl.web.sessions import Session
from nestctl.web.settings import TargetSpec
from nestctl.web.templating import render

log = logging.getLogger("nestctl.web")

#: How long a login waits for the other targets sharing its identity (they join later if slower).
SAME_IDENTITY_WAIT = 2.0


def _safe_next(value: str | None) -> str:
    # Only a path on this site: "//evil" or "https://evil" would make the login an open redirect.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _page(request: Request, status: int = 200, **ctx: object) -> Response:
    settings = web(request).settings
    nonce = secrets.token_urlsafe(24)
    ctx.setdefault("target", request.query_params.get("target") or settings.targets[0].name)
    ctx.setdefault("next", _safe_next(request.query_params.get("next")))
    response = render(request, "login.html", status_code=status, nonce=nonce, **ctx)
    response.set_cookie(
        LOGIN_NONCE_COOKIE,
        nonce,
        max_age=1800,
        httponly=True,
        samesite="strict",
        secure=settings.tls,
        path="/",
    )
    return response


async def login_form(request: Request) -> Response:
    return _page(request)


def _set_session_cookie(request: Request, response: Response, s: Session) -> None:
    settings = web(request).settings
    response.set_cookie(
        cookie_name(settings.tls),
        s.id,
        max_age=int(settings.session_ttl),
        httponly=True,
        samesite="strict",
        secure=settings.tls,
        path="/",
    )


async def login(request: Request) -> Response:
    state = web(request)
    data = form(request)
    target = state.settings.target(data.get("target", ""))
    # A token pasted whole: the secret never goes back into the page or a log line.
    username = data.get("username", "").split("=", 1)[0].strip()
    nxt = _safe_next(data.get("next"))
    if target is None:
        return _page(request, 400, error="unknown target", username=username)
    client = _client(request)
    wait = state.limiter.retry_after(client, username)
    if wait > 0:
        log.warning("login: rate limit for %s from %s", username.split("!")[0], client)
        response = _page(
            request,
            429,
            error=f"too many failed logins: try again in {int(wait) + 1} s",
            username=username,
            target=target.name,
            next=nxt,
        )
        response.headers["retry-after"] = str(int(wait) + 1)
        return response
    current: Session | None = request.state.session
    pin = state.pins.get(target.name) or (current.pins.get(target.name) if current else None)
    try:
        result = await asyncio.to_thread(
            state.connector.login,
            target,
            data.get("username", ""),
            data.get("password", ""),
            data.get("otp", "").strip(),
            pin,
        )
    except UntrustedCertificateError as exc:
        return _page(
            request,
            200,
            trust=exc.fingerprint,
            error=exc.args[0],
            username=username,
            target=target.name,
            next=nxt,
        )
    except OtpRequiredError as exc:
        return _page(
            request,
            401,
            error=str(exc),
            need_otp=True,
            username=username,
            target=target.name,
            next=nxt,
        )
    except LoginError as exc:
        if exc.counts:
            state.limiter.failed(client, username)
        log.info("login to %s refused for %s from %s", target.name, username.split("!")[0], client)
        return _page(request, 401, error=str(exc), username=username, target=target.name, next=nxt)
    state.limiter.succeeded(client, username)
    if pin and target.fingerprint is None and target.name not in state.pins:
        state.pins[target.name] = pin
        log.warning(
            "target %s: certificate pinned on first use, add to its config: fingerprint = %s",
            target.name,
            pin,
        )
    s = state.sessions.rotate(current)
    s.logins[target.name] = (result.identity, result.api)
    log.info("login to %s as %s from %s", target.name, result.identity, client)
    if not data.get("otp"):  # a one-time code cannot serve twice
        await _same_identity(request, s, data.get("username", ""), data.get("password", ""))
    response = see_other(nxt)
    _set_session_cookie(request, response, s)
    response.delete_cookie(LOGIN_NONCE_COOKIE, path="/")
    return response


async def _same_identity(request: Request, s: Session, username: str, password: str) -> None:
    """Log in to the other targets with the identity just proven, where they share it (the same
    realm user or token): a lab of several targets needs one login. Only targets whose
    certificate is pinned or CA-verified are tried (the client checks it before any credential
    is sent); a refusal there is silent and does not count against the rate limit."""
    state = web(request)
    others = [t for t in state.settings.targets if t.name not in s.logins]

    def attempt(spec: TargetSpec) -> tuple[TargetSpec, Login | None]:
        pin = state.pins.get(spec.name)
        try:
            return spec, state.connector.login(spec, username, password, "", pin)
        except LoginError:
            return spec, None

    def keep(task: asyncio.Future[tuple[TargetSpec, Login | None]]) -> None:
        spec, result = task.result()
        if result is not None and state.sessions.get(s.id) is s:  # the session still lives
            s.logins[spec.name] = (result.identity, result.api)
            log.info("login to %s as %s (same identity)", spec.name, result.identity)

    tasks = [asyncio.ensure_future(asyncio.to_thread(attempt, t)) for t in others]
    for task in tasks:
        task.add_done_callback(keep)
    if tasks:
        # A target that does not answer must not hold the first view: it joins when it does.
        await asyncio.wait(tasks, timeout=SAME_IDENTITY_WAIT)


async def trust(request: Request) -> Response:
    """The visitor compared the fingerprint and confirms it (for the next login attempt only)."""
    state = web(request)
    data = form(request)
    target = state.settings.target(data.get("target", ""))
    fingerprint = data.get("fingerprint", "").strip().upper()
    if target is None or len(fingerprint.replace(":", "")) != 64:
        return _page(request, 400, error="nothing to confirm")
    s: Session | None = request.state.session
    if s is None:
        s = state.sessions.create()
    s.pins[target.name] = fingerprint
    response = _page(
        request,
        200,
        notice=f"certificate {fingerprint} confirmed for {target.name}: log in to use it",
        target=target.name,
        username=data.get("username", "").split("=", 1)[0],
        next=_safe_next(data.get("next")),
    )
    _set_session_cookie(request, response, s)
    return response


async def logout(request: Request) -> Response:
    state = web(request)
    s: Session | None = request.state.session
    if s is not None:
        state.sessions.end(s.id)
    response = see_other("/login")
    response.delete_cookie(cookie_name(state.settings.tls), path="/")
    return response


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/trust", trust, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
