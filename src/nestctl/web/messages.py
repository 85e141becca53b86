"""One plain sentence for a page from a network or TLS failure, never a library's text.

The API client's messages carry `requests`/urllib3 text after ours (useful on a terminal:
`HTTPSConnectionPool(host=..., port=...): Max retries exceeded ... SSLError(...)`). A page shows
only what it means, in words a visitor can act on.
"""

from __future__ import annotations

#: Fragments of the OS's or the library's text -> what it means.
_CAUSES = (
    ("Connection refused", "the connection was refused (is pveproxy running?)"),
    ("Name or service not known", "its name does not resolve"),
    ("Temporary failure in name resolution", "its name does not resolve"),
    ("nodename nor servname", "its name does not resolve"),
    ("No route to host", "there is no route to it"),
    ("Network is unreachable", "the network is unreachable"),
    ("Connection reset", "the connection was reset"),
    ("timed out", "it did not answer in time"),
    ("no answer within", "it did not answer in time"),
)


def network_sentence(exc: BaseException, where: str) -> str:
    """`where` (a target's name or URL) could not be reached, and the plain reason."""
    text = str(exc)
    cause = next((words for fragment, words in _CAUSES if fragment in text), None)
    return f"cannot reach {where}: {cause}" if cause else f"cannot reach {where}"


def tls_sentence(exc: BaseException, target: str, *, pinned: bool, ca_file: bool) -> str:
    """Why the certificate of `target` was refused, without the TLS library's text."""
    text = str(exc)
    if pinned and "does not match the pinned" in text:
        return (
            f"{target}'s certificate does not match the pinned SHA-256 fingerprint "
            f"(compare with pvenode cert info on the node)"
        )
    if pinned:
        return f"the TLS handshake with {target} failed"
    if ca_file:
        return f"{target}'s certificate is not signed by the CA of its ca_file"
    return f"{target}'s certificate is not signed by an authority this server trusts"
