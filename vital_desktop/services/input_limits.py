"""Limits on untrusted input files (sheet metadata, label files, images), checked before use.

Each check turns a hostile or broken file into a `ValidationError` naming the file and the row
or column, before anything is written:

- a CSV cell longer than `MAX_CELL_CHARS` (`MAX_LABEL_DATA_CHARS` for label_data, which holds
  shapes) — found vectorised over the Arrow table, not row by row;
- a CSV that mixes CRLF and LF line endings where the reader cannot make sense of it;
- an image whose header says it has more than `MAX_IMAGE_PIXELS` pixels (a decompression bomb):
  the size comes from the header bytes (PNG, GIF, BMP, JPEG) or PIL's lazy open, never from
  decoding the pixels.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from vital_desktop.core.errors import ValidationError

MAX_CELL_CHARS = 64 * 1024
MAX_LABEL_DATA_CHARS = 4 * 1024 * 1024
#: PIL's own refusal threshold (2 x Image.MAX_IMAGE_PIXELS): about 179 megapixels.
MAX_IMAGE_PIXELS = 178_956_970


def refuse_long_cells(table: pa.Table, file_name: str, *, first_row: int = 2,
                      limits: dict[str, int] | None = None) -> None:
    """Refuse a text cell longer than its column's limit, naming the file, row and column."""
    for name in table.column_names:
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        limit = (limits or {}).get(name, MAX_CELL_CHARS)
        lengths = pc.utf8_length(column)
        longest = pc.max(lengths).as_py()
        if longest is None or longest <= limit:
            continue
        index = pc.index(pc.greater(lengths, limit), True).as_py()
        raise ValidationError(f"{file_name} row {first_row + index}: column {name!r} holds {longest / 1024:.0f} KiB "
                              f"of text; at most {limit // 1024} KiB is accepted in one cell")


def mixed_line_endings(path: Path, limit: int = 4 << 20) -> str | None:
    """Where a text file's first CRLF and first bare LF lines are, if it has both (else None)."""
    with path.open("rb") as handle:
        head = handle.read(limit)
    lines = head.split(b"\n")[:-1]  # the part after the last LF is not a finished line
    crlf = next((i + 1 for i, line in enumerate(lines) if line.endswith(b"\r")), None)
    lf = next((i + 1 for i, line in enumerate(lines) if not line.endswith(b"\r")), None)
    if crlf is None or lf is None:
        return None
    return f"line {crlf} ends in CRLF, line {lf} in LF"


_PNG = b"\x89PNG\r\n\x1a\n"


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 9 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            offset += 2
            continue
        length = int.from_bytes(data[offset + 2:offset + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[offset + 5:offset + 9])
            return width, height
        offset += 2 + length
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image file's first bytes (PNG, GIF, BMP, JPEG), else None."""
    if data.startswith(_PNG) and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])  # type: ignore[return-value]
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])  # type: ignore[return-value]
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def pixel_problem(width: int, height: int) -> str | None:
    """Why an image of this size is refused (None when it is not)."""
    if width * height > MAX_IMAGE_PIXELS:
        return (f"the image is {width}x{height} ({width * height / 1e6:.0f} megapixels), over the "
                f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixel limit (a decompression bomb?); it is not decoded")
    return None


def image_size(path: Path) -> tuple[int, int] | None:
    """An image file's size from its header, or None when it is not a readable image; a
    `ValidationError` naming the file when the header says it is too large to decode."""
    from PIL import Image

    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return None
    size = header_size(head)
    if size is None:
        try:
            with Image.open(path) as img:  # lazy: reads the header only
                size = (int(img.size[0]), int(img.size[1]))
        except Image.DecompressionBombError:
            raise ValidationError(f"{path.name}: the image's header declares too many pixels to decode "
                                  "(a decompression bomb?)") from None
        except (OSError, ValueError, SyntaxError):
            return None
    too_big = pixel_problem(*size)
    if too_big:
        raise ValidationError(f"{path.name}: {too_big}")
    return size
