"""What `nestctl serve` was started with: targets, the listen address and TLS."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TargetSpec:
    """One Proxmox API the dashboard shows. Credentials are never here: each visitor logs in."""

    name: str
    url: str  # https://HOST:8006
    fingerprint: str | None = None  # pinned SHA-256 (colon hex), None: CA verification
    parent: str | None = None  # "<target>/<vmid>": this Proxmox runs inside that VM
    ca_file: str | None = None  # CA bundle to verify the certificate with


@dataclass
class ServeSettings:
    targets: list[TargetSpec]
    host: str = "127.0.0.1"
    port: int = 8765
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure_http: bool = False
    session_ttl: float = 2 * 3600.0  # absolute lifetime of a login (a Proxmox ticket's, too)
    idle_ttl: float = 30 * 60.0  # a session unused this long expires
    refresh_interval: float = 10.0  # seconds between background refreshes of a viewed target
    analysis_interval: float = 60.0  # seconds between full scans (the tree) of a viewed target
    refresh_per_visitor: int = 16  # VM views one session keeps refreshing (the most recent)
    login_attempts: int = 5  # failed logins allowed per window, per client and per user name
    login_window: float = 300.0
    client_login_attempts: int = 20  # attempts per window from one client, over every user name
    #: Host names (besides the listen address) a browser may use to reach the dashboard.
    allowed_hosts: list[str] = field(default_factory=list)
    max_sessions: int = 1000  # sessions in all (logged-in visitors keep theirs)
    prelogin_ttl: float = 600.0  # lifetime of a session without a login (a confirmed pin)
    prelogin_per_client: int = 8  # sessions without a login per client address
    max_connections: int = 200  # open connections; more are closed at once
    header_timeout: float = 10.0  # seconds a client may take to send a request's headers (and body)
    console_idle: float = 15 * 60.0  # a console without input this long is closed
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    def target(self, name: str) -> TargetSpec | None:
        return next((t for t in self.targets if t.name == name), None)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def host_name(header: str) -> str:
    """The name of a Host header, without its port, lower-cased ("[::1]:80" -> "::1")."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    name, _sep, _port = text.partition(":")
    return name.rstrip(".")


def host_problem(header: str | None, listen: str, allowed: list[str]) -> str | None:
    """Why a request's Host is not this dashboard, or None.

    A DNS-rebinding page reaches us under *its own* name, so only names the admin chose pass:
    the listen address, `localhost` when listening on loopback, and every --allowed-host. An IP
    literal passes when it is the listen address, or any when listening on every address (no
    page can rebind a bare IP to us)."""
    if not header:
        return "the request names no Host"
    name = host_name(header)
    wanted = {listen.strip("[]").lower(), *(h.strip().lower().rstrip(".") for h in allowed)}
    if is_loopback(listen):
        wanted.add("localhost")
    if name in wanted:
        return None
    ip, listen_ip = _ip(name), _ip(listen)
    if ip is not None and listen_ip is not None and listen_ip.is_unspecified:
        return None
    if ip is not None and listen_ip is not None and ip == listen_ip:
        return None
    return (
        f"this dashboard does not answer to the name {name[:80]!r}: open it by its listen "
        f"address, or restart nestctl serve with --allowed-host {name[:80]}"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_problem(host: str, tls: bool, insecure_http: bool) -> str | None:
    """Why this listen address is refused, or None. Off loopback a password crosses the network."""
    if is_loopback(host) or tls or insecure_http:
        return None
    return (
        f"listening on {host} would send passwords and tickets in clear text: "
        f"give --tls-cert and --tls-key, or --insecure-http to accept that"
    )
