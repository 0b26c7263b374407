"""Test helper: a copy of a GGUF file with some metadata changed (the tensors untouched).

Used to make "another model" from the one GGUF available offline: the same weights declaring
a different chat template, or none.
"""

from __future__ import annotations

import struct
from pathlib import Path

_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _skip_value(data: bytes, pos: int, kind: int) -> int:
    if kind in _SIZES:
        return pos + _SIZES[kind]
    if kind == 8:
        (n,) = struct.unpack_from("<Q", data, pos)
        return pos + 8 + n
    if kind == 9:
        item, count = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if item in _SIZES:
            return pos + _SIZES[item] * count
        for _ in range(count):
            pos = _skip_value(data, pos, item)
        return pos
    raise ValueError(f"unknown GGUF value type {kind}")


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def rewrite_metadata(source: Path, target: Path, *, set_strings: dict[str, str] | None = None,
                     drop: tuple[str, ...] = ()) -> Path:
    """Copy `source` to `target` with string keys set (added or replaced) and keys dropped."""
    set_strings = dict(set_strings or {})
    with open(source, "rb") as handle:
        head = handle.read(64 * 1024 * 1024)  # the header of a small model fits easily
    magic, version, tensors, keys = struct.unpack_from("<4sIQQ", head, 0)
    assert magic == b"GGUF"
    pos = 24
    kept: list[bytes] = []
    alignment = 32
    for _ in range(keys):
        start = pos
        (n,) = struct.unpack_from("<Q", head, pos)
        key = head[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        (kind,) = struct.unpack_from("<I", head, pos)
        pos = _skip_value(head, pos + 4, kind)
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", head, start + 8 + n + 4)
        if key in drop or key in set_strings:
            continue
        kept.append(head[start:pos])
    for key, value in set_strings.items():
        kept.append(_string(key) + struct.pack("<I", 8) + _string(value))
    infos_start = pos
    for _ in range(tensors):
        (n,) = struct.unpack_from("<Q", head, pos)
        pos += 8 + n
        (dims,) = struct.unpack_from("<I", head, pos)
        pos += 4 + 8 * dims + 4 + 8
    infos = head[infos_start:pos]
    data_start = pos + (-pos % alignment)
    out = struct.pack("<4sIQQ", magic, version, tensors, len(kept)) + b"".join(kept) + infos
    out += b"\0" * (-len(out) % alignment)
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.write(out)
        src.seek(data_start)
        while chunk := src.read(8 * 1024 * 1024):
            dst.write(chunk)
    return target
