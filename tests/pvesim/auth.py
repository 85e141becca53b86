"""Users, API tokens, tickets and privileges, checked as pve-access-control checks them.

ACLs map a path to privileges; as in Proxmox, the most specific path that names the identity
decides (an entry on `/vms/101` replaces what `/` grants), and entries propagate to sub-paths.
A privilege-separated token gets the intersection of its own ACL and its user's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: Every privilege a simulated Administrator holds (PVE 9 names).
ALL_PRIVS = frozenset(
    {
        "Datastore.Allocate",
        "Datastore.AllocateSpace",
        "Datastore.AllocateTemplate",
        "Datastore.Audit",
        "Group.Allocate",
        "Mapping.Audit",
        "Mapping.Modify",
        "Mapping.Use",
        "Permissions.Modify",
        "Pool.Allocate",
        "Pool.Audit",
        "Realm.Allocate",
        "Realm.AllocateUser",
        "SDN.Allocate",
        "SDN.Audit",
        "SDN.Use",
        "Sys.AccessNetwork",
        "Sys.Audit",
        "Sys.Console",
        "Sys.Incoming",
        "Sys.Modify",
        "Sys.PowerMgmt",
        "Sys.Syslog",
        "User.Modify",
        "VM.Allocate",
        "VM.Audit",
        "VM.Backup",
        "VM.Clone",
        "VM.Config.CDROM",
        "VM.Config.CPU",
        "VM.Config.Cloudinit",
        "VM.Config.Disk",
        "VM.Config.HWType",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.Options",
        "VM.Console",
        "VM.GuestAgent.Audit",
        "VM.GuestAgent.FileRead",
        "VM.GuestAgent.FileSystemMgmt",
        "VM.GuestAgent.FileWrite",
        "VM.GuestAgent.Unrestricted",
        "VM.Migrate",
        "VM.Monitor",
        "VM.PowerMgmt",
        "VM.Replicate",
        "VM.Snapshot",
        "VM.Snapshot.Rollback",
    }
)

#: Built-in roles (pve-access-control RoleConfig, PVE 9), the ones tests name most.
ROLES: dict[str, frozenset[str]] = {
    "Administrator": ALL_PRIVS,
    "NoAccess": frozenset(),
    "PVEAuditor": frozenset(
        {"Datastore.Audit", "Mapping.Audit", "Pool.Audit", "SDN.Audit", "Sys.Audit", "VM.Audit"}
    ),
    "PVEVMUser": frozenset(
        {
            "VM.Audit",
            "VM.Console",
            "VM.PowerMgmt",
            "VM.Backup",
            "VM.Config.CDROM",
            "VM.Config.Cloudinit",
            "Pool.Audit",
            "VM.GuestAgent.Audit",
        }
    ),
    "PVEVMAdmin": frozenset(p for p in ALL_PRIVS if p.startswith(("VM.", "Datastore.Audit"))),
}

#: What `privs=` accepts: privilege or role names (on `/`), or {path: names}.
Privs = Iterable[str] | Mapping[str, Iterable[str]]


class AuthError(Exception):
    """401: `reason` is Proxmox's text; `empty_body` for what a bad token gets."""

    def __init__(self, reason: str, *, empty_body: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.empty_body = empty_body


def expand(privs: Privs) -> dict[str, frozenset[str]]:
    items = privs.items() if isinstance(privs, Mapping) else [("/", privs)]
    out: dict[str, frozenset[str]] = {}
    for path, given in items:
        names = [given] if isinstance(given, str) else list(given)
        got: set[str] = set()
        for name in names:
            got |= ROLES.get(name, {name})
        out["/" + path.strip("/") if path != "/" else "/"] = frozenset(got)
    return out


def privileges_at(acl: Mapping[str, frozenset[str]], path: str) -> frozenset[str]:
    """The privileges on `path`: the deepest ACL entry on it or above it decides."""
    parts = [p for p in path.split("/") if p]
    best: frozenset[str] = frozenset()
    for depth in range(len(parts) + 1):
        prefix = "/" + "/".join(parts[:depth])
        if prefix in acl:
            best = acl[prefix]
    return best


@dataclass
class User:
    userid: str
    password: str | None
    acl: dict[str, frozenset[str]]
    totp_secret: str | None = None  # base32; when set, a ticket needs a second factor


@dataclass
class Token:
    userid: str
    tokenid: str
    secret: str
    acl: dict[str, frozenset[str]]
    privsep: bool = True


@dataclass(frozen=True)
class Identity:
    """Who made a request: a user by ticket, or a token (`tokenid`) of that user."""

    userid: str
    tokenid: str | None = None
    csrf: str | None = None  # the CSRF token a ticket login got; None for API tokens

    @property
    def name(self) -> str:
        return f"{self.userid}!{self.tokenid}" if self.tokenid else self.userid


@dataclass
class Users:
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)  # "user@realm!id" -> Token
    tickets: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # -> user, csrf, t
    challenges: dict[str, str] = field(default_factory=dict)  # half-ticket -> userid (TFA)
    ticket_lifetime: float = 7200.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(
        self,
        userid: str,
        password: str | None = None,
        *,
        privs: Privs = (),
        totp_secret: str | None = None,
    ) -> User:
        if "@" not in userid:
            raise ValueError(f"user id {userid!r} needs a realm (user@pam, user@pve)")
        user = User(userid, password, expand(privs), totp_secret)
        self.users[userid] = user
        return user

    def add_token(
        self,
        userid: str,
        tokenid: str,
        secret: str | None = None,
        *,
        privs: Privs | None = None,
        privsep: bool = True,
    ) -> str:
        """Create a token; returns the `USER@REALM!ID=SECRET` string a client sends.

        With privsep (Proxmox's default) the token holds only what `privs` grants that its
        user also holds; without it, exactly its user's privileges.
        """
        if userid not in self.users:
            self.add_user(userid)
        secret = secret or str(uuid.uuid4())
        self.tokens[f"{userid}!{tokenid}"] = Token(
            userid, tokenid, secret, expand(privs or ()), privsep
        )
        return f"{userid}!{tokenid}={secret}"

    # -- who is asking --------------------------------------------------------------------------

    def from_token_header(self, value: str) -> Identity:
        """`PVEAPIToken=USER@REALM!ID=SECRET` (also `PVEAPIToken USER...`, as pve-http-server)."""
        rest = value[len("PVEAPIToken") :].lstrip("= ")
        full, sep, secret = rest.partition("=")
        token = self.tokens.get(full)
        if not sep or token is None or not hmac.compare_digest(token.secret, secret):
            raise AuthError("invalid token value!", empty_body=True)
        if token.userid not in self.users:
            raise AuthError("invalid token value!", empty_body=True)
        return Identity(token.userid, token.tokenid)

    def from_ticket(self, ticket: str) -> Identity:
        with self._lock:
            entry = self.tickets.get(ticket)
        if entry is None or time.time() - entry[2] > self.ticket_lifetime:
            raise AuthError("permission denied - invalid PVE ticket")
        return Identity(entry[0], None, entry[1])

    def login(
        self, username: str, password: str, realm: str | None, otp: str | None
    ) -> dict[str, object]:
        """POST /access/ticket: a ticket, a second-factor challenge, or AuthError."""
        userid = username if "@" in username else f"{username}@{realm or 'pam'}"
        if password.startswith("PVE:"):  # renewing a ticket with the ticket as password
            renewed = self.from_ticket(password)
            if renewed.userid != userid:
                raise AuthError("authentication failure")
            return self._issue(userid)
        user = self.users.get(userid)
        if (
            user is None
            or user.password is None
            or not hmac.compare_digest(user.password, password)
        ):
            raise AuthError("authentication failure")
        if user.totp_secret is not None:
            if otp is not None:
                if not totp_ok(user.totp_secret, otp):
                    raise AuthError("authentication failure")
                return self._issue(userid)
            now = int(time.time())
            half = f"PVE:!tfa!{userid}:{now:08X}::{_sig()}"  # good for nothing but step two
            with self._lock:
                self.challenges[half] = userid
            csrf = f"{now:08X}:{_sig()[:43]}"
            return {"username": userid, "ticket": half, "CSRFPreventionToken": csrf, "NeedTFA": 1}
        return self._issue(userid)

    def finish_tfa(self, username: str, challenge: str, response: str) -> dict[str, object]:
        """Second step: `tfa-challenge=<half ticket>`, `password=totp:<code>`."""
        with self._lock:
            userid = self.challenges.pop(challenge, None)
        user = self.users.get(userid or "")
        kind, _, code = response.partition(":")
        if user is None or user.totp_secret is None or kind != "totp":
            raise AuthError("authentication failure")
        if not totp_ok(user.totp_secret, code) or not username.startswith(
            user.userid.split("@")[0]
        ):
            raise AuthError("authentication failure")
        return self._issue(user.userid)

    def _issue(self, userid: str) -> dict[str, object]:
        now = int(time.time())
        ticket = f"PVE:{userid}:{now:08X}::{_sig()}"
        csrf = f"{now:08X}:{_sig()[:43]}"
        with self._lock:
            self.tickets[ticket] = (userid, csrf, time.time())
        return {"username": userid, "ticket": ticket, "CSRFPreventionToken": csrf}

    # -- what they may do -----------------------------------------------------------------------

    def privileges(self, who: Identity, path: str) -> frozenset[str]:
        user = self.users.get(who.userid)
        if user is None:
            return frozenset()
        if who.userid == "root@pam" and who.tokenid is None:
            return ALL_PRIVS
        own = ALL_PRIVS if who.userid == "root@pam" else privileges_at(user.acl, path)
        if who.tokenid is None:
            return own
        token = self.tokens[f"{who.userid}!{who.tokenid}"]
        if not token.privsep:
            return own
        return own & privileges_at(token.acl, path)


def _sig() -> str:
    return base64.b64encode(secrets.token_bytes(256)).decode()[:340]


def totp_now(secret_b32: str, at: float | None = None, step: int = 30) -> str:
    """RFC 6238 TOTP (SHA-1, 6 digits), what an authenticator app shows."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def totp_ok(secret_b32: str, code: str) -> bool:
    now = time.time()
    return any(hmac.compare_digest(totp_now(secret_b32, now + d), code) for d in (-30, 0, 30))
