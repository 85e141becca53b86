"""Reading result files back: hostile input gives a clear error, never a traceback."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_RESULT_BYTES = 4 * 1024 * 1024
_LEVEL = re.compile(r"L(\d+)(\+?)", re.ASCII)


class ResultFileError(Exception):
    """A result file that cannot be used; the message names the file and why."""


def number(value: object) -> float | None:
    """A finite, non-negative number from a result file, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) and f >= 0 else None


def parse_result(text: str, name: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ResultFileError(f"{name}: not JSON ({exc})") from exc
    except RecursionError:  # a hostile file nested deeper than the parser's stack
        raise ResultFileError(f"{name}: not a nestctl bench result (nested too deeply)") from None
    if not isinstance(doc, dict):
        raise ResultFileError(f"{name}: not a nestctl bench result (expected an object)")
    if not isinstance(doc.get("where"), dict) or not isinstance(doc.get("results"), list):
        raise ResultFileError(f"{name}: not a nestctl bench result (no 'where' and 'results')")
    doc["results"] = [r for r in doc["results"] if isinstance(r, dict) and "name" in r]
    return doc


def load_result(path: str) -> dict[str, Any]:
    from nestctl.userfile import UserFileError, read_user_file  # noqa: PLC0415

    try:
        data = read_user_file(path, MAX_RESULT_BYTES, what="result file")
    except FileNotFoundError as exc:
        raise ResultFileError(f"{path}: {exc.strerror or exc}") from exc
    except UserFileError as exc:
        raise ResultFileError(str(exc)) from exc
    return parse_result(data.decode("utf-8", errors="replace"), path)


def result_map(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> result entry (the first of a name wins)."""
    out: dict[str, dict[str, Any]] = {}
    for r in doc.get("results", []):
        if isinstance(r, dict) and isinstance(r.get("name"), str):
            out.setdefault(r["name"], r)
    return out


def ok_value(entry: dict[str, Any] | None) -> tuple[float, float] | None:
    """(median, spread) of a measured result, or None (not measurable, garbage)."""
    if entry is None or entry.get("status") != "ok":
        return None
    med = number(entry.get("median"))
    spr = number(entry.get("spread"))
    if med is None or med <= 0:
        return None
    return med, spr or 0.0


def parse_level(text: object) -> tuple[int, bool] | None:
    """ "L2" -> (2, True); "L1+" (at least L1) -> (1, False); None when unknown."""
    if not isinstance(text, str):
        return None
    m = _LEVEL.fullmatch(text.strip())
    if m is None:
        return None
    return int(m.group(1)), not m.group(2)


def deeper_level(host_level: object) -> str | None:
    """The level of a guest of a machine at `host_level` ("L0" -> "L1", "L1+" -> "L2+")."""
    parsed = parse_level(host_level)
    if parsed is None:
        return None
    n, exact = parsed
    return f"L{n + 1}" + ("" if exact else "+")


def label(doc: dict[str, Any], fallback: str) -> str:
    """A short name for a result: its VM chain when it has one, else host name and level."""
    where = doc.get("where") or {}
    chain = where.get("chain") if isinstance(where.get("chain"), dict) else None
    level = where.get("level") if isinstance(where.get("level"), str) else "?"
    if chain:
        cpu = chain.get("cpu")
        text = f"{chain.get('node') or '?'}/VM {chain.get('vmid')}"
        return f"{text} ({level}, -cpu {cpu})" if cpu else f"{text} ({level})"
    host = where.get("hostname")
    if isinstance(host, str) and host and host != "(none)":  # "(none)": the kernel's default
        return f"{host} ({level})"
    return f"{fallback} ({level})"
