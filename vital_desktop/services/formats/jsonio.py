"""Reading untrusted JSON and XML label files: size-capped, errors name the file and place."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from vital_desktop.core.errors import ValidationError

MAX_FILE_BYTES = 2 << 30  # a label file larger than 2 GiB is refused before it is read


def _check_size(path: Path) -> None:
    if not path.is_file():
        raise ValidationError(f"label file {path} does not exist or is not a file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValidationError(f"label file {path.name} is larger than {MAX_FILE_BYTES >> 20} MiB")


def load_json(path: Path) -> Any:
    """Parse a JSON file; truncated or invalid JSON is a `ValidationError` with line and column.

    The last few parses are kept (by path, size and modification time): recognising the format
    and then reading the file would otherwise parse a large export several times. Callers must
    not modify what they get.
    """
    _check_size(path)
    stat = path.stat()
    return _load_json_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _load_json_cached(path_text: str, _size: int, _mtime_ns: int) -> Any:
    path = Path(path_text)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
            from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path.name} is not UTF-8 text: {exc.reason}") from None
    except RecursionError:
        raise ValidationError(f"{path.name}: the JSON is nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        from vital_desktop.core.strict_json import hostile_number

        raise ValidationError(f"{path.name}: the JSON holds a number that cannot be read ({hostile_number(exc)})") \
            from None


def forget_parsed() -> None:
    """Drop the kept parses (a big export's objects should not outlive its import)."""
    _load_json_cached.cache_clear()


def peek_json(path: Path) -> Any | None:
    """The parsed JSON if `path` is a JSON file that parses, else None (for format detection)."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return None
    if head[:1] not in (b"{", b"["):
        return None
    try:
        return load_json(path)
    except ValidationError:
        return None


def load_xml(path: Path):
    """Parse an XML file safely: DTDs, entities and external references are refused."""
    import defusedxml.ElementTree as safe_et
    from defusedxml import DefusedXmlException

    _check_size(path)
    try:
        return safe_et.parse(str(path), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        raise ValidationError(f"{path.name}: refused XML with a DTD or entity declarations ({type(exc).__name__}); "
                              "label files never need them") from None
    except safe_et.ParseError as exc:
        raise ValidationError(f"{path.name} is not valid XML: {exc}") from None


def expect(value: Any, kind: type | tuple[type, ...], what: str, where: str) -> Any:
    """`value` if it is of `kind`, else a `ValidationError` naming what and where."""
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple)
                                                                               else (kind,)):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValidationError(f"{where}: {what} must be {names}, got {type(value).__name__}")
    return value
