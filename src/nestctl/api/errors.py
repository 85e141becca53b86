"""Typed API errors: what failed (HTTP status, Proxmox's message), never a secret.

Every failure a scan can meet is an `ApiError`, so a collector turns it into a finding instead of
a traceback. `status` is the HTTP status (None when no HTTP answer came back).
"""

from __future__ import annotations

import re

_PERMISSION = re.compile(r"Permission check failed \(([^,()]*),\s*([^()]*)\)", re.ASCII)


class ApiError(Exception):
    """A request that did not give data. `str()` is one line fit for a finding."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.errors = errors or {}

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        code = f"HTTP {self.status}: " if self.status is not None else ""
        detail = "".join(f"; {k}: {v.strip()}" for k, v in sorted(self.errors.items()))
        return f"{where}{code}{self.message}{detail}"


class ApiConnectionError(ApiError):
    """No HTTP answer: refused, DNS, reset."""


class ApiTimeoutError(ApiConnectionError):
    """No answer within the timeout."""


class ApiTlsError(ApiConnectionError):
    """The certificate failed verification or does not match the pinned fingerprint."""


class ApiBadReplyError(ApiError):
    """An answer that is not Proxmox's `{"data": ...}` JSON (a proxy page, truncated JSON)."""


class ApiAuthError(ApiError):
    """401: the token or ticket was refused (or has expired)."""


class ApiSecondFactorError(ApiAuthError):
    """The password was right, but the realm asks for a second factor and none was given."""


class ApiPermissionError(ApiError):
    """403: the user lacks a privilege; `privilege` and `acl_path` name it when Proxmox does."""

    @property
    def privilege(self) -> str | None:
        m = _PERMISSION.search(self.message)
        return m.group(2).strip() if m else None

    @property
    def acl_path(self) -> str | None:
        m = _PERMISSION.search(self.message)
        return m.group(1).strip() if m else None


class ApiNodeUnreachableError(ApiError):
    """595: the node we asked could not reach the node that holds the resource."""


class ApiParameterError(ApiError):
    """400 "Parameter verification failed.": `errors` maps each parameter to its problem."""


class ApiNotImplementedError(ApiError):
    """501: this Proxmox has no such path or method (an older version)."""


class ApiTaskFailedError(ApiError):
    """A task ended with an exit status other than OK (Proxmox answers such tasks with 200)."""


def error_for_status(
    status: int,
    message: str,
    *,
    method: str,
    path: str,
    errors: dict[str, str] | None = None,
) -> ApiError:
    """The typed error for an HTTP error status."""
    kind: type[ApiError] = {
        400: ApiParameterError,
        401: ApiAuthError,
        403: ApiPermissionError,
        501: ApiNotImplementedError,
        595: ApiNodeUnreachableError,
    }.get(status, ApiError)
    return kind(message, status=status, method=method, path=path, errors=errors)
