"""The kernel command line (/proc/cmdline): module parameters given at boot.

Only ``module.param[=value]`` words count. Words after a bare ``--`` go to init, not the kernel.
Double quotes group a value with spaces, as the kernel's own parser allows.
"""

from __future__ import annotations

from typing import NamedTuple


class CmdlineParam(NamedTuple):
    module: str  # normalised: dashes become underscores
    param: str
    value: str | None  # None: the word had no "="
    word: str  # the word as written, for messages


def split_cmdline(text: str) -> list[str]:
    """Words of a kernel command line, honouring double quotes, stopping at ``--``."""
    words: list[str] = []
    current: list[str] = []
    in_quotes = False
    started = False
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
            started = True
            continue
        if ch.isspace() and not in_quotes:
            if started:
                words.append("".join(current))
                current, started = [], False
            continue
        current.append(ch)
        started = True
    if started:
        words.append("".join(current))
    if "--" in words:
        words = words[: words.index("--")]
    return words


def parse_kernel_cmdline(text: str) -> list[CmdlineParam]:
    """Every ``module.param`` word, in order (a later one for the same parameter wins)."""
    params: list[CmdlineParam] = []
    for word in split_cmdline(text):
        key, eq, value = word.partition("=")
        module, dot, param = key.partition(".")
        if not dot or not module or not param:
            continue
        params.append(
            CmdlineParam(
                module.replace("-", "_"), param.replace("-", "_"), value if eq else None, word
            )
        )
    return params
