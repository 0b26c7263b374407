"""Reading image folders for sheets: list, check, hash and describe files in one thread pool.

Every per-file step — resolving the path, refusing a link that leaves the folder, reading the
bytes once, hashing them (hashlib releases the GIL) and reading the image header (size,
format, EXIF capture time, camera, orientation) from those same bytes — runs inside the
pool, so the serial part of an import or rescan is only the directory walk and one insert.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.services.input_limits import header_size, pixel_problem

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
READ_WHOLE_BELOW = 64 << 20  # files smaller than this are read once for hash and header
MAX_REPORTED = 20
_EXIF_DATETIME_ORIGINAL, _EXIF_DATETIME, _EXIF_MAKE, _EXIF_MODEL, _EXIF_ORIENTATION = 0x9003, 0x0132, 0x010F, \
    0x0110, 0x0112
_EXIF_IFD = 0x8769
T = TypeVar("T")
R = TypeVar("R")


def workers() -> int:
    return min(8, (os.cpu_count() or 2) * 2)


@dataclass(frozen=True)
class FileFacts:
    rel: str
    sha256: str | None
    size: int | None
    metadata: dict[str, Any]
    problem: str | None = None  # why the file was refused (unreadable, link leaving the folder)
    missing: bool = False
    metadata_json: str = ""  # `metadata` encoded (in the pool); empty: encode it when needed


def list_images(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under `root`, sorted; hidden entries skipped.

    Links are listed (and checked in the pool); links to folders are not followed. String
    operations only: a pathlib object per file cost as much as the walk itself.
    """
    found: list[str] = []
    base = str(root)
    cut = len(base.rstrip(os.sep)) + 1
    suffixes = frozenset(IMAGE_SUFFIXES)
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = dirpath[cut:].replace(os.sep, "/") if len(dirpath) >= cut else ""
        prefix = f"{rel_dir}/" if rel_dir else ""
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in suffixes:
                continue
            found.append(prefix + name)
    found.sort()
    return found


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_header(data: bytes) -> dict[str, Any] | None:
    """Size (and the EXIF chunk, if one comes before the pixels) read straight from a PNG's chunks.

    PIL's open costs ~70 µs of interpreter time per file, serialised by the GIL across the
    pool; a PNG's header is 24 bytes, so the common case skips it.
    """
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height = struct.unpack(">II", data[16:24])
    out: dict[str, Any] = {"width": width, "height": height, "format": "PNG"}
    offset = 33
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        kind = data[offset + 4:offset + 8]
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"eXIf":
            return None  # rare: let PIL read the EXIF
        offset += 12 + length
    return out


def describe_image(data: bytes | None, path: Path | None = None) -> dict[str, Any]:
    """Size, format and the EXIF facts an inspection photo usually carries (all optional)."""
    from PIL import Image, UnidentifiedImageError

    if data is not None and (fast := _png_header(data)) is not None:
        return fast
    out: dict[str, Any] = {}
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as img:  # type: ignore[arg-type]
            out["width"], out["height"] = img.size
            out["format"] = img.format
            # A PNG's getexif() decodes the whole image looking for a late eXIf chunk; the
            # header's own chunk (in `info`) is enough and costs nothing.
            if img.format == "PNG":
                exif = Image.Exif()
                if img.info.get("exif"):
                    exif.load(img.info["exif"])
            else:
                exif = img.getexif()
            if exif:
                sub = exif.get_ifd(_EXIF_IFD) if _EXIF_IFD in exif else {}
                captured = sub.get(_EXIF_DATETIME_ORIGINAL) or exif.get(_EXIF_DATETIME)
                if captured:
                    out["captured_at"] = _exif_time(str(captured))
                camera = " ".join(str(exif[t]).strip() for t in (_EXIF_MAKE, _EXIF_MODEL) if exif.get(t))
                if camera:
                    out["camera"] = camera
                if exif.get(_EXIF_ORIENTATION):
                    out["orientation"] = int(exif[_EXIF_ORIENTATION])
    except Image.DecompressionBombError:
        out["too_large"] = True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        out["format"] = None
    return out


def _exif_time(text: str) -> str:
    """EXIF 'YYYY:MM:DD HH:MM:SS' as ISO 8601 (left as written when it is not that)."""
    text = text.strip().rstrip("\x00")
    if len(text) >= 19 and text[4] == ":" and text[7] == ":":
        return f"{text[0:4]}-{text[5:7]}-{text[8:10]}T{text[11:19]}"
    return text


def inspect_file(root: Path, rel: str, *, describe: bool = True) -> FileFacts:
    """Check, hash and describe one file (runs in the pool). Never raises for a bad file.

    Plain `os` calls on strings (one lstat, one open): pathlib objects and extra stat calls per
    file hold the GIL, which the pool's threads share, and cost as much as hashing a small image.
    The item's metadata JSON is encoded here too, overlapping other threads' reads and hashes."""
    try:
        if _escapes(rel):
            return FileFacts(rel, None, None, {}, problem="path leaves the image folder")
        base = str(root)
        path = os.path.join(base, rel)
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                if not _inside(os.path.realpath(path), base):
                    return FileFacts(rel, None, None, {}, problem="a link leaving the image folder")
                info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return FileFacts(rel, None, None, {}, missing=True)
        if not stat.S_ISREG(info.st_mode):
            return FileFacts(rel, None, None, {}, missing=True)
        size = info.st_size
        digest = hashlib.sha256()
        data: bytes | None = None
        head = b""
        with open(path, "rb") as handle:
            if size < READ_WHOLE_BELOW:
                data = head = handle.read()
                digest.update(data)
            else:
                while block := handle.read(1 << 20):
                    head = head or block
                    digest.update(block)
        pixels = header_size(head[:1 << 16])
        if pixels is not None and (too_big := pixel_problem(*pixels)):
            return FileFacts(rel, None, None, {}, problem=too_big)  # a bomb: refused before any decoding
        metadata: dict[str, Any] = {"file_name": rel.rsplit("/", 1)[-1], "file_size": size}
        if describe:
            metadata.update(describe_image(data, None if data is not None else Path(path)))
            if metadata.pop("too_large", False):
                return FileFacts(rel, None, None, {}, problem="its header declares too many pixels to decode "
                                                              "(a decompression bomb?)")
        return FileFacts(rel, digest.hexdigest(), size, metadata, metadata_json=json.dumps(metadata, ensure_ascii=False))
    except PermissionError:
        return FileFacts(rel, None, None, {}, problem="cannot be read (permission denied)")
    except OSError as exc:
        return FileFacts(rel, None, None, {}, problem=f"cannot be read ({exc.strerror or exc})")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _escapes(rel: str) -> bool:
    if not rel:
        return True
    text = rel.replace("\\", "/")
    return text.startswith("/") or ".." in text.split("/") or (len(rel) > 1 and rel[1] == ":")


CHUNK = 64  # files per pool task: one future per file costs as much as hashing a small file


def map_in_pool(fn: Callable[[T], R], values: list[T], progress: Progress, chunk: int = CHUNK,
                alongside: Callable[[], Any] | None = None) -> list[R]:
    """`fn` over `values` in a thread pool, chunk by chunk, results in order; cancel between chunks.

    `alongside` (if given) runs in the same pool meanwhile — serial work such as encoding the
    metadata rows then overlaps the file reads — and its result is appended as the last element.
    """
    out: list[Any] = []
    chunks = [values[i:i + chunk] for i in range(0, len(values), chunk)]
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        side = pool.submit(alongside) if alongside is not None else None
        for part in pool.map(lambda block: [fn(v) for v in block], chunks):
            out.extend(part)
            progress.advance(len(part))
            if progress.cancelled:
                pool.shutdown(wait=True, cancel_futures=True)
                progress.check()
        if side is not None:
            out.append(side.result())
    return out


def inspect_files(root: Path, rels: Iterable[str], progress: Progress, *, describe: bool = True) -> list[FileFacts]:
    """`inspect_file` for every path, in a thread pool, in order; checks for cancel as results come."""
    rels = list(rels)
    root = Path(root).resolve()
    progress.start(len(rels), f"reading {len(rels)} images")
    return map_in_pool(lambda rel: inspect_file(root, rel, describe=describe), rels, progress)


def refuse_problems(facts: list[FileFacts], root: Path) -> None:
    """A `ValidationError` naming the files that cannot be used (unreadable, links leaving)."""
    bad = [f for f in facts if f.problem]
    if bad:
        names = "; ".join(f"{f.rel}: {f.problem}" for f in bad[:MAX_REPORTED])
        more = f" (and {len(bad) - MAX_REPORTED} more)" if len(bad) > MAX_REPORTED else ""
        raise ValidationError(f"{len(bad)} file(s) in {root} cannot be used: {names}{more}")


def check_root(root: Path | str, what: str = "image folder") -> Path:
    """The resolved folder, or a clear error when it is not there (a drive unplugged, a typo)."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ValidationError(f"{what} {path} is not there (is the drive plugged in and the path right?)")
    return path.resolve()
