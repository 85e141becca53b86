"""Local mode: `nestctl serve --local` on a Proxmox VE node, with no API login and no network.

Every read and action goes through Proxmox's own command-line client (`pvesh`, which runs the
same API handlers in-process as root), so paths, parameters, tasks and error texts are exactly
the API's. Only root may act: `nestctl serve --local` must run as root, and the login is a
one-time key that it writes to a root-only file (`cat` it to log in as `root@pam`). The kvm
module's `nested` parameter, which the API cannot show, is read from this node's sysfs.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nestctl.api.verbs import ApiVerbs
from nestctl.machine import Host, UnsafeWriteError
from nestctl.web.backend import Login, LoginError
from nestctl.web.settings import TargetSpec

log = logging.getLogger("nestctl.web")
LOCAL_TARGET = "local"
VERBS = {"GET": "get", "POST": "create", "PUT": "set", "DELETE": "delete"}


class PveshApi(ApiVerbs):
    """The `Api` of `nestctl.api.actions` over `pvesh` (through the one door, `Host.run`)."""

    userid = "root@pam"
    is_root_ticket = True  # pvesh runs as root: Proxmox lets it set `args` too

    def __init__(self, host: Host, timeout: float = 120.0) -> None:
        self.host = host
        self.timeout = timeout

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        from nestctl.api.errors import ApiError  # noqa: PLC0415

        argv = ["pvesh", VERBS[method], path]
        for key, value in (params or {}).items():
            if value is None:
                continue
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            argv += [f"--{key}", text]
        argv += ["--output-format", "json"]
        result = self.host.run(argv, timeout=self.timeout)
        if not result.ok:
            lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
            message = lines[-1] if lines else result.describe()
            raise ApiError(message, method=method, path=path)
        text = result.stdout.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text  # `pvesh create .../status/start` prints the bare UPID


class KeyFileError(Exception):
    """The key's directory is not private to root and cannot be made so; `str()` says why."""


def write_key(path: Path) -> str:
    """A fresh login key in a file only root can read (its directory too). Never printed."""
    host = Host()  # the key lives on this node, whatever else is inspected
    directory = os.path.abspath(path.parent)
    try:
        host.make_private_dir(directory)
    except UnsafeWriteError as exc:
        raise KeyFileError(f"{exc}: give another --key-file") from None
    key = secrets.token_urlsafe(24)
    # 0600, ours; a link planted at the path is replaced, never written through.
    host.write_atomic(
        os.path.join(directory, path.name), key + "\n", mode=0o600, replace_symlink=True
    )
    return key


class LocalConnector:
    """Logs in `root@pam` with the key from the root-only file; anything else is refused.

    The key is single-use: a login consumes it and a new one is written to `key_file` for the
    next login (without a file, no further key exists until a restart)."""

    def __init__(
        self, host: Host, key: str, *, is_root: bool, key_file: Path | None = None
    ) -> None:
        self.host = host
        self.key: str | None = key
        self.is_root = is_root
        self.key_file = key_file
        self._lock = threading.Lock()  # two logins at once: one consumes the key

    def login(
        self, target: TargetSpec, username: str, password: str, otp: str, pin: str | None
    ) -> Login:
        if not self.is_root:
            raise LoginError(
                "local mode acts through pvesh as root: run nestctl serve --local as root",
                counts=False,
            )
        with self._lock:
            key = self.key
            # Exact: the key as written, no stripping (a paste with spaces is another string).
            if (
                username != "root@pam"
                or key is None
                or not hmac.compare_digest(password.encode(), key.encode())
            ):
                raise LoginError(
                    "login refused: local mode admits root@pam with the key file's key"
                )
            self.key = None
            if self.key_file is not None:
                try:
                    self.key = write_key(self.key_file)
                except (OSError, KeyFileError) as exc:
                    log.warning(
                        "local mode: no new login key written to %s: %s", self.key_file, exc
                    )
        return Login("root@pam", PveshApi(self.host))


def local_target() -> TargetSpec:
    return TargetSpec(LOCAL_TARGET, "pvesh (this node)")


def nested_reader(host: Host) -> Any:
    """This node's `nested` parameter from sysfs (other nodes: unknown, with the reason)."""
    from nestctl.host.probe import probe_host  # noqa: PLC0415
    from nestctl.vm.collect.api import NestedReading  # noqa: PLC0415

    hostname = (host.read_text("/etc/hostname") or "").strip().split(".")[0]

    def read(node: str, _address: str | None) -> NestedReading:
        if node != hostname:
            return NestedReading(None, problem=f"{node} is another node: read there, or use --ssh")
        facts = probe_host(host)
        after = facts.nested_after_reboot
        return NestedReading(
            facts.nested_live,
            after.value,
            after.decided_by,
            None if facts.nested_live is not None else f"sysfs: {facts.nested_live_status}",
        )

    return read
