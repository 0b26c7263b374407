"""Reading a bundle file with bounded reads: staging copy, envelope, payload extraction.

The stick is read twice: `peek_raw` reads only the header, manifest and signatures (capped),
so the caller can verify them before copying anything; then `copy_to_staging` copies the file
once, capped at the size the verified manifest declares, hashing as it copies. Both refuse
anything but a regular file (symlinks and FIFOs via lstat and O_NOFOLLOW|O_NONBLOCK). Everything
after reads the private staging copy, so a file changed on the stick after verification changes
nothing. Payloads are read only at the offsets and
lengths the verified manifest gives.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

from vital_desktop.bundles.envelope import SIGNATURE_RECORD_BYTES, Signature, decode_signature_records
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.layout import COUNT, HEADER_BYTES, parse_header, parse_signature_count, payload_offset
from vital_desktop.bundles.limits import CHUNK_BYTES, MAX_BUNDLE_BYTES
from vital_desktop.bundles.manifest import Entry


@dataclass(frozen=True)
class StagedFile:
    path: Path
    size: int
    sha256: str


def _read_exact(handle: BinaryIO, size: int, what: str) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise BundleRefused("truncated", f"file ends inside the {what}")
    return data


def _open_regular(source: Path) -> BinaryIO:
    """Open a plain file (no symlink, FIFO, device or folder; the file inspected is the file opened)."""
    try:
        info = os.lstat(source)
    except FileNotFoundError as exc:
        raise BundleRefused("not_found", f"no file at {source}") from exc
    if stat.S_ISLNK(info.st_mode):
        raise BundleRefused("not_regular_file", f"{source} is a symbolic link; copy the bundle file itself")
    if not stat.S_ISREG(info.st_mode):
        raise BundleRefused("not_regular_file", f"{source} is not a regular file (a FIFO, device or folder)")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(source, flags)
    except OSError as exc:
        raise BundleRefused("not_regular_file", f"cannot open {source} as a plain file: {exc.strerror}") from exc
    handle = os.fdopen(fd, "rb")
    opened = os.fstat(handle.fileno())
    # The file opened must be the file inspected (no swap between lstat and open).
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
        handle.close()
        raise BundleRefused("not_regular_file", f"{source} changed while it was being opened")
    return handle


def peek_raw(source: Path) -> RawBundle:
    """Header, manifest bytes and signatures read straight from the stick (capped lengths, a plain
    file only), so that a junk or unsigned file is refused before a single payload byte is copied."""
    with _open_regular(source) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_BUNDLE_BYTES:
            raise BundleRefused("too_large", f"{source} has {size} bytes, more than the cap of {MAX_BUNDLE_BYTES}")
        return _read_raw_from(handle, size)


def copy_to_staging(source: Path, destination: Path, *, max_bytes: int = MAX_BUNDLE_BYTES,
                    on_chunk: Callable[[int], None] | None = None) -> StagedFile:
    """Copy a regular file once into private staging, hashing as it goes (bounded, no links).

    `max_bytes` is the size the verified manifest declares (header + manifest + signatures +
    payloads): a file longer than that is refused without copying it."""
    with _open_regular(source) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise BundleRefused("too_large", f"{source} has {size} bytes, more than the cap of {max_bytes}")
        digest = hashlib.sha256()
        copied = 0
        fd_out = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        with os.fdopen(fd_out, "wb") as out:
            while copied <= size:
                # Never read past the size seen at open (+1 byte to notice growth): bounded memory and time.
                chunk = handle.read(min(CHUNK_BYTES, size - copied + 1))
                if not chunk:
                    break
                copied += len(chunk)
                if copied > size:
                    raise BundleRefused("changed_while_copying", f"{source} grew while it was being copied")
                digest.update(chunk)
                out.write(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if copied != size:
            raise BundleRefused("changed_while_copying", f"{source} shrank while it was being copied")
    return StagedFile(destination, size, digest.hexdigest())


@dataclass(frozen=True)
class RawBundle:
    """The unparsed, unverified parts of a bundle: what the signature check needs."""

    manifest_bytes: bytes
    signatures: list[Signature]
    payload_offset: int
    file_size: int


def read_raw(path: Path) -> RawBundle:
    """Header, manifest bytes and signatures, each read with a capped length."""
    file_size = os.stat(path).st_size
    with open(path, "rb") as handle:
        return _read_raw_from(handle, file_size)


def _read_raw_from(handle: BinaryIO, file_size: int) -> RawBundle:
    header = parse_header(handle.read(HEADER_BYTES))
    manifest_bytes = _read_exact(handle, header.manifest_length, "manifest")
    count = parse_signature_count(handle.read(COUNT.size))
    records = _read_exact(handle, count * SIGNATURE_RECORD_BYTES, "signature block")
    signatures = decode_signature_records(count, records)
    return RawBundle(manifest_bytes, signatures, payload_offset(header.manifest_length, count), file_size)


def extract_entry(path: Path, payload_start: int, entry: Entry, destination: Path,
                  on_chunk: Callable[[int], None] | None = None) -> None:
    """Copy one entry's bytes out of the staged bundle, refusing a hash or length mismatch."""
    digest = hashlib.sha256()
    remaining = entry.length
    fd_out = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with open(path, "rb") as handle, os.fdopen(fd_out, "wb") as out:
        handle.seek(payload_start + entry.offset)
        while remaining:
            chunk = handle.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                raise BundleRefused("truncated", f"entry {entry.id!r} is truncated")
            remaining -= len(chunk)
            digest.update(chunk)
            out.write(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != entry.sha256:
        raise BundleRefused("payload_hash", f"entry {entry.id!r} ({entry.name}) does not match its signed SHA-256")


def open_entry(path: Path, payload_start: int, entry: Entry) -> BoundedReader:
    """A reader over exactly one entry's bytes (used by the hub to decrypt without extracting first)."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by the returned reader
    handle.seek(payload_start + entry.offset)
    return BoundedReader(handle, entry.length)


class BoundedReader:
    """A read-only view that never returns more than `limit` bytes."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self._handle = handle
        self._remaining = limit

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._remaining:
            size = self._remaining
        data = self._handle.read(size)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
