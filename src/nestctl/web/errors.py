"""Every API or network error as one plain sentence, plus Proxmox's own message.

A phone user cannot act on urllib3's "HTTPSConnectionPool(...): Max retries exceeded" or on a
method and a path; they can act on "nestctl could not reach the Proxmox API" and on Proxmox's
own words ("VM is locked (backup)"), which name what to do.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger("nestctl.web")

#: Parameter names of Proxmox's forms, in words (for "the field's error").
FIELDS: dict[str, str] = {
    "action": "Action",
    "type": "Direction",
    "macro": "Macro",
    "proto": "Protocol",
    "source": "Source",
    "dest": "Destination",
    "dport": "Destination port",
    "sport": "Source port",
    "iface": "Interface",
    "log": "Log level",
    "comment": "Comment",
    "enable": "Enabled",
    "digest": "Digest (the page was out of date)",
    "policy_in": "Inbound policy",
    "policy_out": "Outbound policy",
}


def field_errors(exc: BaseException) -> dict[str, str]:
    """Proxmox's per-parameter errors (a 400's `errors`), one line each."""
    errors = getattr(exc, "errors", None)
    if not isinstance(errors, dict):
        return {}
    return {str(k): " ".join(str(v).split()) for k, v in errors.items()}


def _proxmox_message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) else ""
    return " ".join(text.split()).rstrip(".")


def sentence(exc: BaseException) -> str:
    """One sentence for the page: what happened in plain words, then Proxmox's own message."""
    from nestctl.api import errors as e  # noqa: PLC0415 - the api extra, lazily

    pm = _proxmox_message(exc)
    if isinstance(exc, e.ApiTimeoutError):
        return "Proxmox did not answer in time; the node may be busy or unreachable."
    if isinstance(exc, e.ApiTlsError):
        if "pinned" in pm:
            return "The server's certificate does not match the pinned fingerprint."
        return "The server's certificate is not trusted (compare it with `pvenode cert info`)."
    if isinstance(exc, e.ApiConnectionError):
        return (
            "nestctl could not reach the Proxmox API: the connection was refused or the host "
            "is unreachable."
        )
    if isinstance(exc, e.ApiBadReplyError):
        return "Something other than Proxmox answered (a proxy or another service)."
    if isinstance(exc, e.ApiAuthError):
        return (
            "Proxmox no longer accepts this login (the ticket expired or the token "
            "changed): log in again."
        )
    if isinstance(exc, e.ApiPermissionError):
        priv = exc.privilege
        what = f"your identity lacks {priv}" if priv else "your identity may not do this"
        return f"Proxmox refused: {what}. Proxmox said: {pm}."
    if isinstance(exc, e.ApiNodeUnreachableError):
        return f"Proxmox could not reach the node. Proxmox said: {pm}."
    if isinstance(exc, e.ApiNotImplementedError):
        return f"This Proxmox version does not offer this. Proxmox said: {pm}."
    if isinstance(exc, e.ApiError):
        fields = field_errors(exc)
        detail = "; ".join(f"{FIELDS.get(k, k)}: {v}" for k, v in sorted(fields.items()))
        said = f"{pm} ({detail})" if detail else pm
        if exc.status is None:
            return f"The request failed: {said}."
        return f"Proxmox refused it. Proxmox said: {said}."
    if isinstance(exc, OSError):
        return "nestctl could not reach the Proxmox API (a network error)."
    # Not an API error: a bug of ours. The log has it; the page gets no library text.
    log.error("unexpected error", exc_info=exc)
    return "Something went wrong inside nestctl (the server's log has the details)."


_WS = re.compile(r"\s+", re.ASCII)


def one_line(text: str, limit: int = 500) -> str:
    return _WS.sub(" ", text).strip()[:limit]
