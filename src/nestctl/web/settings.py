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
    login_attempts: int = 5  # failed logins allowed per window, per client and per user name
    login_window: float = 300.0
    console_idle: float = 15 * 60.0  # a console without input this long is closed
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    def target(self, name: str) -> TargetSpec | None:
        return next((t for t in self.targets if t.name == name), None)


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
