"""The seam to Proxmox: log a visitor in to a target and hand back an API as that identity.

Logins go through `nestctl.api.client.ApiClient` (the same client as `doctor --api`), so every
page and action runs with the visitor's own Proxmox permissions. A certificate that is neither
CA-verified nor pinned is never accepted silently: the login stops with its SHA-256 fingerprint,
for the visitor to compare with `pvenode cert info` and confirm.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from nestctl.api.actions import Api
from nestctl.web.errors import sentence
from nestctl.web.settings import TargetSpec


class LoginError(Exception):
    """Refused or impossible; `str()` is fit to show (never a secret)."""

    def __init__(self, message: str, *, counts: bool = True) -> None:
        super().__init__(message)
        self.counts = counts  # a wrong password counts against the rate limit; a dead node not


class UntrustedCertificateError(LoginError):
    """The target's certificate is not CA-verified and not pinned: show it for confirmation."""

    def __init__(self, message: str, fingerprint: str | None) -> None:
        super().__init__(message, counts=False)
        self.fingerprint = fingerprint


class OtpRequiredError(LoginError):
    """The realm asks for a second factor."""

    def __init__(self) -> None:
        super().__init__("this account needs a one-time code (TOTP)", counts=False)


@dataclass
class Login:
    identity: str  # user@realm or user@realm!tokenid, as Proxmox knows it
    api: Api


class Connector(Protocol):
    def login(
        self, target: TargetSpec, username: str, password: str, otp: str, pin: str | None
    ) -> Login: ...


def colon_hex(hexdigest: str) -> str:
    """The fingerprint as Proxmox shows it: upper-case hex pairs joined by colons."""
    return ":".join(hexdigest[i : i + 2] for i in range(0, len(hexdigest), 2)).upper()


def presented_fingerprint(url: str, timeout: float = 5.0) -> str | None:
    """SHA-256 of the certificate a server presents (for the visitor to compare), or None."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 8006
    if not host:
        return None
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only to read the certificate; nothing is sent over it
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    return colon_hex(hashlib.sha256(der).hexdigest()) if der else None


def split_token(username: str, password: str) -> tuple[str, str]:
    """A token pasted whole in the user field, as the CLI takes it (`USER@REALM!ID=SECRET`),
    becomes user `USER@REALM!ID` and secret `SECRET` (a user name never holds `=`)."""
    username = username.strip()
    if "!" in username and "=" in username and not password:
        user, _, secret = username.partition("=")
        return user.strip(), secret.strip()
    return username, password


class PveConnector:
    """Logins through the shared API client."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def login(
        self, target: TargetSpec, username: str, password: str, otp: str, pin: str | None
    ) -> Login:
        from nestctl.api.client import ApiClient  # noqa: PLC0415 - the `api` extra, lazily
        from nestctl.api.credentials import ApiToken, CredentialError, UserPassword  # noqa: PLC0415
        from nestctl.api.errors import (  # noqa: PLC0415
            ApiAuthError,
            ApiError,
            ApiSecondFactorError,
            ApiTlsError,
        )

        username, password = split_token(username, password)
        creds: Any
        try:
            if not password:
                raise LoginError("give the password, or the token's secret", counts=False)
            if "!" in username:
                creds = ApiToken.parse(f"{username}={password}", source="the login form")
            else:
                if "@" not in username:
                    raise LoginError("the user name needs its realm, e.g. root@pam")
                creds = UserPassword(username, password, otp)
        except CredentialError as exc:
            raise LoginError(str(exc)) from None
        fingerprint = target.fingerprint or pin
        client = ApiClient(
            target.url, creds, fingerprint=fingerprint, ca_file=target.ca_file, timeout=self.timeout
        )
        try:
            client.login()
            client.request("GET", "/version")
        except ApiTlsError as exc:
            client.close()
            if fingerprint is None:
                raise UntrustedCertificateError(
                    sentence(exc), presented_fingerprint(target.url)
                ) from None
            raise LoginError(sentence(exc), counts=False) from None
        except ApiSecondFactorError:
            client.close()
            raise OtpRequiredError from None
        except ApiAuthError:
            client.close()
            raise LoginError("login refused: wrong user name, password or code") from None
        except ApiError as exc:
            client.close()
            raise LoginError(f"{target.name}: {sentence(exc)}", counts=False) from None
        except LoginError:
            client.close()
            raise
        return Login(client.userid, client)
