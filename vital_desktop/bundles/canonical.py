"""Canonical JSON (RFC 8785) out, strict JSON in.

Writing uses the `rfc8785` package (sorted keys, no whitespace, integers only within
±2**53). Reading refuses duplicate keys, NaN/Infinity, floats, trailing bytes, nesting deeper
than `MAX_JSON_DEPTH`, and — with ``require_canonical`` — any byte sequence that is not the
canonical encoding of what it decodes to, so one document has exactly one signed form.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.limits import MAX_JSON_DEPTH


def dumps(value: Any) -> bytes:
    """The canonical bytes of `value` (refuses floats: every number in a bundle is an integer)."""
    _refuse_floats(value, 0)
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise BundleRefused("json", f"value cannot be written as canonical JSON: {exc}") from exc


def _refuse_floats(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise BundleRefused("json_depth", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, float):
        raise BundleRefused("json_float", "numbers in bundle documents must be integers")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_floats(item, depth + 1)


def nesting_depth(data: bytes) -> int:
    """Maximum bracket depth of JSON text, found without parsing it (strings are skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BundleRefused("json_duplicate_key", f"duplicate JSON key {key[:64]!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise BundleRefused("json_constant", f"JSON constant {name} is not allowed")


def _refuse_float(text: str) -> Any:
    raise BundleRefused("json_float", f"non-integer number {text[:32]!r} is not allowed")


def loads(data: bytes, *, max_bytes: int, require_canonical: bool = False) -> Any:
    """Parse untrusted JSON bytes strictly (see module docstring); raise `BundleRefused`."""
    if len(data) > max_bytes:
        raise BundleRefused("json_size", f"JSON document of {len(data)} bytes exceeds the cap of {max_bytes}")
    if nesting_depth(data) > MAX_JSON_DEPTH:
        raise BundleRefused("json_depth", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BundleRefused("json", f"JSON is not valid UTF-8: {exc}") from exc
    try:
        value = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant, parse_float=_refuse_float
        )
    except BundleRefused:
        raise
    except (ValueError, RecursionError) as exc:
        # json reports trailing bytes as "Extra data"; every syntax error lands here.
        raise BundleRefused("json", f"malformed JSON: {exc}") from exc
    if require_canonical and dumps(value) != data:
        raise BundleRefused("json_not_canonical", "JSON is not in canonical (RFC 8785) form")
    return value
