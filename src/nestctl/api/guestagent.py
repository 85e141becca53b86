"""The QEMU guest agent reached through the Proxmox API: the same calls as the local socket.

`ApiGuestAgent` offers `GuestAgent`'s methods (ping, osinfo, read_file, exec), so the guest
layer's `AgentMachine` runs the same probes either way. A 403 names the missing privilege
(PVE 9: VM.GuestAgent.Audit for ping/osinfo, .FileRead for file-read, .Unrestricted for exec;
before PVE 9, VM.Monitor).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Self

from nestctl.api.client import ApiClient
from nestctl.api.errors import ApiError, ApiPermissionError, ApiTimeoutError
from nestctl.guest.agent import AgentError, AgentTimeout, AgentUnavailable, ExecResult

#: Proxmox's own texts for "there is no agent to ask" (qemu-server's agent_cmd checks).
_NO_AGENT = ("is not running", "No QEMU guest agent configured", "guest agent is not running")
#: qemu-server's text when the agent did not answer in time ("... qmp command '...' failed -
#: got timeout").
_AGENT_TIMEOUT = "got timeout"
#: What each agent call needs (PVE 9).
PRIVILEGE = {
    "ping": "VM.GuestAgent.Audit",
    "get-osinfo": "VM.GuestAgent.Audit",
    "file-read": "VM.GuestAgent.FileRead",
    "exec": "VM.GuestAgent.Unrestricted",
    "exec-status": "VM.GuestAgent.Unrestricted",
}


class AgentNotPermittedError(AgentUnavailable):
    """The API user may not make this agent call: the message names the privilege."""


class ApiGuestAgent:
    def __init__(self, client: ApiClient, node: str, vmid: int) -> None:
        self.client = client
        self.vmid = vmid
        self.base = f"/nodes/{node}/qemu/{vmid}/agent"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _call(self, command: str, method: str = "GET", params: dict[str, Any] | None = None) -> Any:
        try:
            data = self.client.request(method, f"{self.base}/{command}", params)
        except ApiPermissionError as exc:
            priv = exc.privilege or PRIVILEGE.get(command, "VM.GuestAgent.Audit")
            raise AgentNotPermittedError(
                f"agent {command}: not permitted: grant {priv} on /vms/{self.vmid} "
                f"(Proxmox said: {exc.message})"
            ) from None
        except ApiTimeoutError as exc:
            raise AgentTimeout(f"agent {command}: {exc}") from None
        except ApiError as exc:
            if _AGENT_TIMEOUT in exc.message:
                # qemu-server gave up waiting for the agent: the question is open, not refused.
                raise AgentTimeout(f"agent {command}: {exc.message}") from None
            if any(text in exc.message for text in _NO_AGENT):
                raise AgentUnavailable(f"agent {command}: {exc.message}") from None
            if exc.status == 500:
                # The agent answered with an error (e.g. no such file in the guest).
                raise AgentError(command, "ProxmoxError", exc.message) from None
            raise AgentUnavailable(f"agent {command}: {exc}") from None
        return data.get("result", data) if isinstance(data, dict) else data

    def ping(self) -> None:
        self._call("ping", "POST")

    def osinfo(self) -> dict[str, Any]:
        value = self._call("get-osinfo")
        if not isinstance(value, dict):
            raise AgentUnavailable(f"get-osinfo: expected an object, got {value!r:.80}")
        return value

    def read_file(self, path: str, max_bytes: int = 8 * 1024 * 1024) -> bytes:
        return self.read_file_upto(path, max_bytes)[0]

    def read_file_upto(self, path: str, max_bytes: int) -> tuple[bytes, bool]:
        """(the first `max_bytes` of a guest file, whether that is the whole file).

        Proxmox reads at most 16 MiB itself and says `truncated` when the file is longer.
        """
        # One byte past the limit tells a file of exactly max_bytes from a longer one.
        count = max(1, min(max_bytes + 1, 16 * 1024 * 1024))
        value = self._call("file-read", params={"file": path, "count": count})
        content = value.get("content") if isinstance(value, dict) else None
        if not isinstance(value, dict) or not isinstance(content, str):
            raise AgentUnavailable(f"file-read: no content in {value!r:.80}")
        data = content.encode("utf-8", errors="surrogateescape")
        complete = not value.get("truncated") and len(data) <= max_bytes
        return data[:max_bytes], complete

    def exec(
        self,
        path: str,
        args: Sequence[str] = (),
        timeout: float = 30.0,
        *,
        stdin: bytes | None = None,
    ) -> ExecResult:
        params: dict[str, Any] = {"command": [path, *args]}
        if stdin is not None:
            params["input-data"] = stdin.decode("utf-8", errors="replace")
        started = self._call("exec", "POST", params)
        pid = started.get("pid") if isinstance(started, dict) else None
        if not isinstance(pid, int):
            raise AgentUnavailable(f"exec: expected a pid, got {started!r:.80}")
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            status = self._call("exec-status", params={"pid": pid})
            if not isinstance(status, dict):
                raise AgentTimeout(f"exec-status: unexpected reply {status!r:.80}")
            if status.get("exited"):
                code, sig = status.get("exitcode"), status.get("signal")
                return ExecResult(
                    exitcode=code if isinstance(code, int) else None,
                    stdout=str(status.get("out-data", "")).encode(),
                    stderr=str(status.get("err-data", "")).encode(),
                    signal=sig if isinstance(sig, int) else None,
                    truncated=bool(status.get("out-truncated") or status.get("err-truncated")),
                )
            if time.monotonic() >= deadline:
                return ExecResult(None, b"", b"", timed_out=True)
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 0.5)
