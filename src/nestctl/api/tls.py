"""TLS for the API: verified by default, or pinned to one certificate's SHA-256.

Proxmox nodes usually serve a self-signed certificate. Pinning its fingerprint (as
`pvenode cert info` shows it) is how to trust exactly that certificate without turning
verification off.

requests merges `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` (and ~/.netrc credentials, and proxies)
into every request, over the session's own `verify`. Our session therefore ignores the
environment (`trust_env = False`) and the adapter forces the one TLS policy it was built with, so
neither pinning nor verification can be replaced from outside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

_HEX = frozenset("0123456789abcdef")


def normalize_fingerprint(text: str) -> str:
    """`AA:BB:...` (as Proxmox shows it), with or without colons, any case -> 64 lower-case hex.

    Raises ValueError naming what is wrong (never echoing more than the length).
    """
    hexonly = text.strip().replace(":", "").lower()
    if len(hexonly) != 64 or not set(hexonly) <= _HEX:
        raise ValueError(
            "the fingerprint must be a SHA-256: 32 hex pairs, with or without colons "
            f"(got {len(hexonly)} characters after removing colons)"
        )
    return hexonly


def make_session(
    *, fingerprint: str | None, ca_file: str | None, pool_size: int
) -> requests.Session:
    """A requests session with one fixed TLS policy (see the module docstring)."""
    import requests  # noqa: PLC0415 - optional dependency, imported when the API is used
    from requests.adapters import HTTPAdapter  # noqa: PLC0415

    verify: bool | str = False if fingerprint else (ca_file or True)

    class PinnedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            if fingerprint:
                # urllib3 checks this on every new connection, whatever `cert_reqs` is.
                kwargs["assert_fingerprint"] = fingerprint
            super().init_poolmanager(*args, **kwargs)

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["verify"] = verify  # whatever the caller or the environment merged in
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    adapter = PinnedAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    # Plain HTTP would send the token in clear: refuse it outright.
    session.mount("http://", _RefuseHttp())
    return session


def _RefuseHttp() -> Any:  # noqa: N802 - a factory standing in for a class
    from requests.adapters import BaseAdapter  # noqa: PLC0415

    class RefuseHttp(BaseAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            import requests  # noqa: PLC0415

            raise requests.exceptions.InvalidSchema(
                "plain http:// is refused: the API token or ticket would travel in clear"
            )

        def close(self) -> None:
            pass

    return RefuseHttp()
