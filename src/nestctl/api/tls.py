"""TLS for the API: verified by default, or pinned to one certificate's SHA-256.

Proxmox nodes usually serve a self-signed certificate. Pinning its fingerprint (as
`pvenode cert info` shows it) is how to trust exactly that certificate without turning
verification off.

The connections themselves are `transport.py`'s: one TLS context per client, built from its
arguments alone, so neither pinning nor verification can be replaced from outside (no
REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE, proxies or ~/.netrc).
"""

from __future__ import annotations

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
