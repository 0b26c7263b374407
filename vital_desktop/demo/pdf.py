"""A minimal PDF writer for the demo's generated documents (text only, built from the PDF spec).

Each page is a content stream of Helvetica text lines (PDF 1.4, ISO 32000-1 §7 and §9): a
catalog, a page tree, one font, one page object and one stream per page, a cross-reference
table with the byte offset of every object, and a trailer. Enough for any reader (pypdf reads
it back in the tests); no fonts are embedded and only WinAnsi characters are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, in points
LINES_PER_PAGE = 46


def _escape(text: str) -> str:
    safe = text.encode("cp1252", errors="replace").decode("cp1252")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _page_stream(lines: Sequence[str], title: str | None) -> bytes:
    ops = ["BT", "/F1 11 Tf", "14 TL", f"56 {PAGE_HEIGHT - 64} Td"]
    if title:
        ops += ["/F1 15 Tf", f"({_escape(title)}) Tj", "/F1 11 Tf", "T*", "T*"]
    for line in lines:
        ops += [f"({_escape(line)}) Tj", "T*"]
    ops.append("ET")
    return "\n".join(ops).encode("cp1252", errors="replace")


def pdf_bytes(lines: Sequence[str], *, title: str | None = None, lines_per_page: int = LINES_PER_PAGE) -> bytes:
    """The bytes of a PDF showing `lines` (a title on the first page), paginated."""
    pages = [list(lines[i:i + lines_per_page]) for i in range(0, max(len(lines), 1), lines_per_page)] or [[]]
    objects: list[bytes] = []
    n_pages = len(pages)
    # 1 catalog, 2 page tree, 3 font, then per page: page object, content stream.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, page in enumerate(pages):
        stream = _page_stream(page, title if i == 0 else None)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def write_pdf(path: Path, lines: Sequence[str], *, title: str | None = None) -> Path:
    """Write `pdf_bytes(lines, title=title)` to `path`."""
    path.write_bytes(pdf_bytes(lines, title=title))
    return path
