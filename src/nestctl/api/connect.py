"""From what the user gave (flags, environment, a named target) to a logged-in `ApiClient`.

Where the secret comes from, first match wins: --token-file, $NESTCTL_API_TOKEN, the target's
token_file, then --user/user with --password-file/password_file or a prompt. Never argv.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from nestctl.api.client import ApiClient, RequestLog
from nestctl.api.credentials import (
    ApiToken,
    CredentialError,
    Credentials,
    UserPassword,
    check_user,
    read_secret_file,
    token_from_env,
)
from nestctl.api.targets import Target

Prompt = Callable[[str], str]


@dataclass(frozen=True)
class ConnectOptions:
    """Flags that override (or stand in for) a target's settings."""

    token_file: str | None = None
    user: str | None = None
    password_file: str | None = None
    fingerprint: str | None = None
    ca_file: str | None = None
    timeout: float = 10.0
    concurrency: int = 16


def merge(target: Target, opts: ConnectOptions) -> Target:
    """Flags win over the config file."""
    changes: dict[str, object] = {}
    if opts.token_file:
        changes.update(token_file=opts.token_file, user=None, password_file=None)
    if opts.user:
        changes.update(user=opts.user, token_file=None, password_file=opts.password_file)
    if opts.fingerprint:
        changes["fingerprint"] = opts.fingerprint
    if opts.ca_file:
        changes["ca_file"] = opts.ca_file
    return replace(target, **changes)  # type: ignore[arg-type]


def credentials_for(
    target: Target, environ: Mapping[str, str], prompt: Prompt | None, *, flags_named: bool
) -> Credentials:
    """The credentials for `target` (see the module docstring). Raises CredentialError."""
    if target.token_file and flags_named:
        return ApiToken.parse(read_secret_file(target.token_file), source=target.token_file)
    if target.user and flags_named:
        return _user_password(target, prompt)
    env = token_from_env(environ)
    if env is not None:
        return env
    if target.token_file:
        return ApiToken.parse(read_secret_file(target.token_file), source=target.token_file)
    if target.user:
        return _user_password(target, prompt)
    raise CredentialError(
        f"no credentials for {target.url}: give --token-file FILE, set NESTCTL_API_TOKEN, "
        f"or --user USER@REALM (password prompted or --password-file)"
    )


def _user_password(target: Target, prompt: Prompt | None) -> UserPassword:
    user = check_user(target.user or "", source="user")
    if target.password_file:
        return UserPassword(user, read_secret_file(target.password_file))
    if prompt is None:
        raise CredentialError(f"{user}: no password file and no terminal to ask on")
    return UserPassword(user, prompt(f"Password for {user} at {target.url}"))


def connect(
    target: Target,
    opts: ConnectOptions,
    environ: Mapping[str, str],
    *,
    prompt: Prompt | None = None,
    on_request: RequestLog | None = None,
) -> ApiClient:
    """An `ApiClient` for `target` with `opts` applied. Raises CredentialError / ValueError."""
    flags_named = bool(opts.token_file or opts.user)
    merged = merge(target, opts)
    creds = credentials_for(merged, environ, prompt, flags_named=flags_named)
    return ApiClient(
        merged.url,
        creds,
        fingerprint=merged.fingerprint,
        ca_file=merged.ca_file,
        timeout=opts.timeout,
        pool_size=opts.concurrency,
        on_request=on_request,
    )
