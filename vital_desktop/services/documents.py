"""Reading document items: text extracted from PDF, plain-text and Markdown files.

Each reader returns an `ExtractedDocument` (text, page count, warnings) or raises a
`ValidationError` naming the file and what is wrong with it — an empty file, an encrypted or
damaged PDF, binary data under a text name, a file larger than the cap. Every untrusted length
is capped (bytes read, pages extracted, characters kept), as in python-tuf's client config.

PDF text comes from pypdf (BSD-3-Clause, pure Python): its own warnings about a damaged file
are kept as the item's extraction warnings rather than printed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vital_desktop.core.errors import ValidationError

#: The largest document file read at all (a PDF must be read whole to find its pages).
MAX_FILE_BYTES = 64 << 20
#: A text file larger than this is read up to here and flagged as truncated.
MAX_TEXT_BYTES = 4 << 20
#: Pages extracted from one PDF; later pages are counted but not read.
MAX_PAGES = 500
#: Characters of text kept per document (the review view's and the store's cap).
MAX_CHARS = 1_000_000
MAX_WARNINGS = 20
_BINARY_SAMPLE = 8192


@dataclass(frozen=True)
class ExtractedDocument:
    """What one document file holds, as text, with how its extraction went."""

    text: str
    pages: int
    format: str
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def chars(self) -> int:
        return len(self.text)


def _check_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValidationError(f"document {path.name} cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise ValidationError(f"document {path.name} is empty (0 bytes)")
    return size


def _looks_binary(sample: bytes) -> int | None:
    """Offset of the first sign of binary data in a text file's first bytes (None: looks like text)."""
    nul = sample.find(b"\x00")
    if nul >= 0:
        return nul
    controls = [i for i, b in enumerate(sample) if b < 32 and b not in (9, 10, 12, 13, 27)]
    if sample and len(controls) > max(4, len(sample) // 20):
        return controls[0]
    return None


def read_text_file(path: Path) -> ExtractedDocument:
    """A plain-text or Markdown file: UTF-8 (or Latin-1, with a warning), binary data refused."""
    size = _check_size(path)
    with open(path, "rb") as handle:
        data = handle.read(MAX_TEXT_BYTES)
    offset = _looks_binary(data[:_BINARY_SAMPLE])
    if offset is not None:
        raise ValidationError(f"document {path.name} is not text: binary data at byte {offset} "
                              f"(is it really a {path.suffix or 'text'} file?)")
    warnings: list[str] = []
    truncated = size > MAX_TEXT_BYTES
    if truncated:
        warnings.append(f"only the first {MAX_TEXT_BYTES >> 20} MiB of {size >> 20} MiB were read")
    try:
        text = data.decode("utf-8-sig") if not truncated else data.decode("utf-8-sig", errors="ignore")
    except UnicodeDecodeError as exc:
        text = data.decode("latin-1")
        warnings.append(f"not UTF-8 (byte {exc.start}); read as Latin-1")
    text = text.replace("\r\n", "\n")
    if len(text) > MAX_CHARS:
        text, truncated = text[:MAX_CHARS], True
        warnings.append(f"text cut at {MAX_CHARS:,} characters")
    if not text.strip():
        warnings.append("no text (the file holds only blank characters)")
    fmt = "markdown" if path.suffix.lower() in (".md", ".markdown") else "text"
    return ExtractedDocument(text, 1, fmt, warnings, truncated)


class _Collect(logging.Handler):
    """pypdf reports damage through `logging`; keep those messages as the item's warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < MAX_WARNINGS:
            self.messages.append(record.getMessage().strip())


def read_pdf(path: Path) -> ExtractedDocument:
    """Text of every page (up to `MAX_PAGES`) of a PDF; encrypted and damaged files are refused."""
    import warnings as py_warnings

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

    size = _check_size(path)
    if size > MAX_FILE_BYTES:
        raise ValidationError(f"document {path.name} is {size >> 20} MiB; documents larger than "
                              f"{MAX_FILE_BYTES >> 20} MiB are not read (split it)")
    data = path.read_bytes()
    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise ValidationError(f"document {path.name} is not a PDF (it does not start with %PDF-)")
    collector = _Collect()
    logger = logging.getLogger("pypdf")
    logger.addHandler(collector)
    previous = logger.propagate
    logger.propagate = False
    warnings: list[str] = []
    try:
        with py_warnings.catch_warnings(record=True) as caught:
            py_warnings.simplefilter("always")
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    opened = reader.decrypt("")
                except (DependencyError, NotImplementedError) as exc:
                    raise ValidationError(f"document {path.name} is encrypted in a way that cannot be opened "
                                          f"here ({exc})") from exc
                if not opened:
                    raise ValidationError(f"document {path.name} is encrypted (password protected); "
                                          "save an unencrypted copy to import it")
                warnings.append("encrypted with an empty password (opened)")
            total = len(reader.pages)
            parts: list[str] = []
            chars = 0
            empty: list[int] = []
            for number in range(min(total, MAX_PAGES)):
                try:
                    page_text = reader.pages[number].extract_text() or ""
                except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
                    page_text = ""
                    warnings.append(f"page {number + 1}: text could not be extracted ({exc})")
                if not page_text.strip():
                    empty.append(number + 1)
                parts.append(page_text)
                chars += len(page_text)
                if chars > MAX_CHARS:
                    break
        warnings.extend(str(w.message) for w in caught[:MAX_WARNINGS])
    except FileNotDecryptedError as exc:
        raise ValidationError(f"document {path.name} is encrypted (password protected); "
                              "save an unencrypted copy to import it") from exc
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValidationError(f"document {path.name} is not a readable PDF ({why})") from exc
    finally:
        logger.removeHandler(collector)
        logger.propagate = previous
    if total == 0:
        raise ValidationError(f"document {path.name} is a PDF with no pages")
    text = "\n\n".join(parts)
    truncated = False
    if total > MAX_PAGES:
        warnings.append(f"only the first {MAX_PAGES} of {total} pages were read")
        truncated = True
    if len(text) > MAX_CHARS:
        text, truncated = text[:MAX_CHARS], True
        warnings.append(f"text cut at {MAX_CHARS:,} characters")
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (" …" if len(empty) > 10 else "")
        warnings.append(f"no text layer on page(s) {shown} (scanned images are not read)")
    warnings = list(dict.fromkeys(collector.messages + warnings))[:MAX_WARNINGS]
    return ExtractedDocument(text, total, "pdf", warnings, truncated)


#: file suffix → reader. Import looks readers up here; it never branches on the suffix.
READERS: dict[str, Callable[[Path], ExtractedDocument]] = {
    ".pdf": read_pdf,
    ".txt": read_text_file,
    ".text": read_text_file,
    ".md": read_text_file,
    ".markdown": read_text_file,
}
DOCUMENT_SUFFIXES = tuple(READERS)


def extract(path: Path) -> ExtractedDocument:
    """The text of one document file, by its suffix (see `READERS`)."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValidationError(f"document {path.name}: unsupported type {path.suffix!r}; "
                              f"use {', '.join(DOCUMENT_SUFFIXES)}")
    return reader(path)
