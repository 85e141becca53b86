"""The app icons as PNG, drawn here (three nested squares, the layers of a lab) rather than
shipped as image files: Debian's policy keeps images out of /usr/lib, and the manifest wants
PNGs of 192 and 512 pixels for a phone to install the page."""

from __future__ import annotations

import functools
import struct
import zlib

SIZES = (192, 512)
_BG, _OUTER, _INNER, _CORE = b"\x10\x15\x1c", b"\x58\xa6\xff", b"\x3f\xb9\x50", b"\xe6\xed\xf3"


def _ring(u: float, v: float, lo: float, hi: float, width: float) -> bool:
    inside = lo <= u <= hi and lo <= v <= hi
    hole = lo + width <= u <= hi - width and lo + width <= v <= hi - width
    return inside and not hole


def _pixel(u: float, v: float) -> bytes:
    """The colour at (u, v) on a 64x64 design grid (the same drawing as static/icon.svg)."""
    if _ring(u, v, 8, 56, 4):
        return _OUTER
    if _ring(u, v, 18, 46, 4):
        return _INNER
    if 28 <= u <= 36 and 28 <= v <= 36:
        return _CORE
    return _BG


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@functools.cache
def png(size: int) -> bytes:
    """An RGB PNG of `size` x `size` pixels."""
    scale = 64 / size
    rows = []
    for y in range(size):
        line = b"".join(_pixel(x * scale, y * scale) for x in range(size))
        rows.append(b"\x00" + line)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
