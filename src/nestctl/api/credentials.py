"""Who we are to the API: an API token or a user + password (for a ticket).

Secrets come from a file, the environment or a prompt, never from argv (which `ps` shows). They
are kept out of `repr()` and of every message, so no report, log or traceback can print them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

#: The environment variable holding an API token (`USER@REALM!ID=SECRET`).
TOKEN_ENV = "NESTCTL_API_TOKEN"  # noqa: S105 - a variable name, not a secret
#: A secret file larger than this is not a secret file.
MAX_SECRET_BYTES = 4096

_USER = re.compile(r"[^\s@!:=]+@[A-Za-z][A-Za-z0-9.\-_]*", re.ASCII)
_TOKEN_ID = re.compile(r"[A-Za-z][A-Za-z0-9.\-_]+", re.ASCII)


class CredentialError(ValueError):
    """A credential that cannot be used; the message never contains the secret."""


@dataclass(frozen=True)
class ApiToken:
    """`USER@REALM!ID=SECRET`, as Proxmox shows it once when the token is created."""

    user: str
    token_id: str
    secret: str = field(repr=False)

    @property
    def userid(self) -> str:
        """What Proxmox calls the token in permissions and task UPIDs: `root@pam!ID`."""
        return f"{self.user}!{self.token_id}"

    def header(self) -> str:
        return f"PVEAPIToken={self.userid}={self.secret}"

    @classmethod
    def parse(cls, text: str, *, source: str) -> ApiToken:
        """Parse a token; `source` names where it came from for the error message."""
        text = text.strip()
        userid, _, secret = text.partition("=")
        user, bang, token_id = userid.partition("!")
        if not bang or not secret or not _USER.fullmatch(user) or not _TOKEN_ID.fullmatch(token_id):
            raise CredentialError(
                f"{source}: not an API token of the form USER@REALM!TOKENID=SECRET "
                f"(e.g. root@pam!nestctl=xxxxxxxx-xxxx-...)"
            )
        if any(c.isspace() for c in secret):
            raise CredentialError(f"{source}: the token secret contains whitespace")
        return cls(user, token_id, secret)


@dataclass(frozen=True)
class UserPassword:
    """A user (`root@pam`) and password, exchanged for a ticket + CSRF token at login."""

    user: str
    password: str = field(repr=False)
    otp: str = field(default="", repr=False)  # a TOTP code, for a realm that asks for one

    @property
    def userid(self) -> str:
        return self.user


Credentials = ApiToken | UserPassword


def check_user(user: str, *, source: str) -> str:
    if not _USER.fullmatch(user):
        raise CredentialError(f"{source}: the user must be USER@REALM (e.g. root@pam)")
    return user


def read_secret_file(path: str) -> str:
    """The first line of a secret file. Refuses FIFOs, devices and huge files without reading."""
    from nestctl.userfile import UserFileError, read_user_file  # noqa: PLC0415

    try:
        data = read_user_file(path, MAX_SECRET_BYTES, what="secret")
    except FileNotFoundError as exc:
        raise CredentialError(f"{path}: cannot read: {exc.strerror}") from None
    except UserFileError as exc:
        raise CredentialError(str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(f"{path}: not UTF-8 text") from None
    line = text.splitlines()[0] if text.strip() else ""
    if not line.strip():
        raise CredentialError(f"{path}: empty")
    return line.rstrip("\r\n")


def token_from_env(environ: Mapping[str, str]) -> ApiToken | None:
    text = environ.get(TOKEN_ENV)
    if not text:
        return None
    return ApiToken.parse(text, source=f"${TOKEN_ENV}")
