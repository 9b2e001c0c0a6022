"""Config values: strict coercion of TOML/environment values, ranges, secret-safe messages.

:mod:`mirror.config.settings` owns the keys and their precedence; this module owns what one value
may be. A new numeric key with special bounds gets a row in :data:`RANGES`.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Annotated

import msgspec

from mirror.errors import ConfigError, redact

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

def parse_duration(value: str | int | float, key: str = "duration") -> float:
    """``"500ms"``, ``"2s"``, ``"10m"``, ``"1h"``, ``"7d"`` -> seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like \"10m\", got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a duration like \"10m\", got a "
                          f"{type(value).__name__}")
    match = _DURATION.match(value)
    if not match:
        raise ConfigError(f"{key}: expected a duration like \"500ms\", \"2s\", \"1h\", "
                          f"\"7d\", got {redact(repr(value))[:60]}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Duration(float):
    """Seconds, written in config as a string with a unit."""


def coerce(key: str, kind: object, value: object) -> object:
    """Turn a TOML or environment value into the field's type, strictly, or raise ConfigError.

    Bools are not numbers and floats are not integers (``workers = 8.7`` is an error, not
    8); numbers must be finite and inside :data:`RANGES`. msgspec checks the type and the
    bounds; the message names the key and never shows a secret's value (:func:`describe`).
    """
    if kind is Duration:
        return _duration(key, value)
    typed = value
    if isinstance(value, str):  # environment (or a quoted TOML number): "8" -> 8, "a,b" -> (a, b)
        typed = _from_text(kind, value)
    try:
        return msgspec.convert(typed, _checked_type(key, kind))
    except msgspec.ValidationError:
        raise ConfigError(_message(key, kind, value, typed)) from None


def _from_text(kind: object, text: str) -> object:
    if kind is int and _ENV_INT.match(text):
        return int(text)
    if kind is float:
        try:
            return float(text)
        except ValueError:
            return text
    if kind == tuple[str, ...]:
        return tuple(v.strip() for v in text.split(",") if v.strip())
    return text


@functools.cache
def _checked_type(key: str, kind: object) -> object:
    """*kind* with the bounds msgspec enforces: :data:`RANGES`, no NUL, no empty list item."""
    if kind is int or kind is float:
        low, high = RANGES.get(key, INT_RANGE if kind is int else FLOAT_RANGE)
        return Annotated[kind, msgspec.Meta(ge=low, le=high)]  # type: ignore[valid-type]
    if kind is str:
        return Annotated[str, msgspec.Meta(pattern=_NO_NUL)]
    if kind == tuple[str, ...]:
        return tuple[Annotated[str, msgspec.Meta(min_length=1, pattern=_NO_NUL)], ...]
    raise ConfigError(f"{key}: unsupported type")


def _message(key: str, kind: object, raw: object, typed: object) -> str:
    """Why msgspec refused *typed* (from *raw*), in the words the messages always used; told
    from the value itself, not from msgspec's wording."""
    if kind is str and isinstance(typed, str):
        return f"{key}: must not contain a NUL character"
    numeric = _NUMERIC.get(kind)  # type: ignore[call-overload]
    if numeric and isinstance(typed, numeric) and not isinstance(typed, bool):  # out of bounds
        if isinstance(typed, float) and not math.isfinite(typed):
            return f"{key}: expected a finite number, got {describe(key, raw)}"
        low, high = RANGES.get(key, INT_RANGE if kind is int else FLOAT_RANGE)
        shown = typed if kind is int else raw
        return f"{key}: must be between {low:g} and {high:g}, got {describe(key, shown)}"
    expected = _EXPECTED.get(kind, "a list of non-empty strings")  # type: ignore[call-overload]
    return f"{key}: expected {expected}, got {describe(key, raw)}"


def _duration(key: str, value: object) -> Duration:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like \"10m\", got {describe(key, value)}")
    seconds = parse_duration(value, key)  # type: ignore[arg-type]
    if not math.isfinite(seconds):
        raise ConfigError(f"{key}: expected a finite number, got {describe(key, value)}")
    if not DURATION_RANGE[0] <= seconds <= DURATION_RANGE[1]:
        raise ConfigError(f"{key}: must be a positive duration of at most 366d, "
                          f"got {describe(key, value)}")
    return Duration(seconds)


#: Inclusive bounds of numeric keys; a key not listed gets INT_RANGE or FLOAT_RANGE.
#: Append a row with a new key (durations all share DURATION_RANGE).
RANGES: dict[str, tuple[float, float]] = {
    "source.max_connections": (1, 256),
    "source.requests_per_second": (0, 100_000),
    "source.retries": (0, 100),
    "sync.workers": (1, 256),
    "sync.overlap_days": (0, 3650),
    "sync.max_delete_fraction": (0, 1),
    "sync.max_attempts": (1, 1000),
    "source.stall_min_rate": (0, 1 << 40),
    "source.max_listing_bytes": (1024, 1 << 44),
}
INT_RANGE: tuple[float, float] = (0, 1_000_000_000)
FLOAT_RANGE: tuple[float, float] = (0, 1e9)
#: Every duration is positive and at most a year: 0 would spin, a century overflows dates.
DURATION_RANGE: tuple[float, float] = (0.001, 366 * 86400.0)
#: Keys whose values are never shown (in any section, present or added later).
SECRET_KEYS = frozenset({"api_key", "password", "token", "client_secret"})
MAX_CONFIG_BYTES = 1 << 20

_ENV_INT = re.compile(r"^\s*[+-]?\d{1,18}\s*$")
_NO_NUL = "^[^\x00]*$"
_EXPECTED = {int: "a whole number", float: "a number", str: "a string"}
_NUMERIC = {int: (int,), float: (int, float)}


def describe(key: str, value: object) -> str:
    """*value* as it may appear in a message about *key*: secrets hidden, URLs without
    userinfo, long values cut."""
    if key.rpartition(".")[2] in SECRET_KEYS:
        return "(hidden)"
    text = redact(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."
