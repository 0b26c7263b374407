"""Strict JSON for stored data: finite numbers only, and JSON Schema patterns anchored as written.

Two holes this closes, wherever labels or answers are checked:

- Python's `json` reads and writes ``NaN`` and ``Infinity``, which are not JSON: a box with a
  NaN corner would be stored and exported. `canonical_json` refuses them, naming where.
- JSON Schema ``pattern`` follows ECMA-262, where ``$`` (without the multiline flag) matches
  only at the very end. Python's ``re`` lets ``$`` also match before a trailing newline, so
  ``^[a-z]+$`` accepted ``"abc\\n"``. `strict_validator` checks patterns with ``$`` turned
  into ``\\Z``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

from vital_desktop.core.errors import ValidationError


def non_finite_path(value: Any, path: str = "") -> str | None:
    """The JSON path ("boxes/0/x") of the first NaN or infinity in `value`, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "(value)")
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite_path(item, f"{path}/{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = non_finite_path(item, f"{path}/{index}" if path else str(index))
            if found:
                return found
    return None


def canonical_json(value: Any, *, what: str = "value") -> str:
    """Sorted keys, no spaces, UTF-8 kept; `ValidationError` for NaN/infinity (naming where)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        where = non_finite_path(value) or "(value)"
        raise ValidationError(f"{what} holds a number that is not finite (NaN or infinity) at {where}") from None
    except TypeError as exc:
        raise ValidationError(f"{what} is not plain JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValidationError(f"{name} is not a JSON number (only finite numbers are accepted)")


def loads(text: str | bytes) -> Any:
    """`json.loads` that refuses NaN, Infinity and -Infinity instead of turning them into floats,
    and turns hostile input (nesting deeper than the parser's recursion limit, an integer of more
    than 4300 digits) into a `ValidationError` instead of a RecursionError or ValueError."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise ValidationError("the JSON is nested too deeply to read") from None
    except ValueError as exc:
        raise ValidationError(f"the JSON holds a number that cannot be read ({hostile_number(exc)})") from None


def hostile_number(exc: ValueError) -> str:
    """A short reason for a ValueError the JSON parser raised on a number (e.g. too many digits)."""
    text = str(exc)
    return "an integer with more than 4300 digits" if "digits" in text else text.split(";")[0]


def anchored_pattern(pattern: str) -> str:
    """`pattern` with every unescaped ``$`` outside a character class made ``\\Z`` (ECMA-262
    semantics: no match before a trailing newline)."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(pattern[index:index + 2])
            index += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            index += 1
            continue
        out.append(char)
        index += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(anchored_pattern(pattern))


def pattern_matches(pattern: str, text: str) -> bool:
    """ECMA-262-style ``pattern`` search (what JSON Schema means by "pattern")."""
    return _compiled(pattern).search(text) is not None


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: dict) -> Any:
    import jsonschema

    if validator.is_type(instance, "string") and not pattern_matches(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def strict_validator(schema: dict) -> Any:
    """A jsonschema validator for `schema` (its declared draft, 2020-12 by default) whose
    ``pattern`` keyword is anchored as JSON Schema specifies."""
    import jsonschema

    base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    strict = _strict_class(base)
    return strict(schema)


@functools.cache
def _strict_class(base: Any) -> Any:
    import jsonschema

    return jsonschema.validators.extend(base, {"pattern": _pattern_keyword})
