"""Config values: strict coercion of TOML/environment values, ranges, secret-safe messages.

:mod:`mirror.config.model` owns the keys, :mod:`mirror.config.settings` their precedence;
this module owns what one value may be. A new numeric key with special bounds gets a row in
:data:`RANGES`.
"""

from __future__ import annotations

import math
import re
from typing import NoReturn

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
    8); numbers must be finite and inside :data:`RANGES`. The message names the key and
    never shows a secret's value (:func:`describe`).
    """
    from_env = isinstance(value, str)
    if kind is Duration:
        seconds = _finite(parse_duration(value, key) if not isinstance(value, bool)
                          else _bad(key, value, "a duration like \"10m\""), key, value)
        if not DURATION_RANGE[0] <= seconds <= DURATION_RANGE[1]:
            raise ConfigError(f"{key}: must be a positive duration of at most 366d, "
                              f"got {describe(key, value)}")
        return Duration(seconds)
    if kind is bool:
        if from_env and value.lower() in _ENV_BOOLS:
            return _ENV_BOOLS[value.lower()]
        return value if isinstance(value, bool) else _bad(key, value, "true or false")
    if kind is int:
        if from_env and _ENV_INT.match(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            _bad(key, value, "a whole number")
        return _in_range(key, value, RANGES.get(key, INT_RANGE), value)
    if kind is float:
        number = _float_or_none(value)
        if number is None:
            _bad(key, value, "a number")
        return _in_range(key, _finite(number, key, value), RANGES.get(key, FLOAT_RANGE), value)
    if kind is str:
        if not isinstance(value, str):
            _bad(key, value, "a string")
        if "\x00" in value:
            raise ConfigError(f"{key}: must not contain a NUL character")
        return value
    if kind == tuple[str, ...]:
        if from_env:
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) and v and "\x00" not in v
                                                   for v in value):
            return tuple(value)
        _bad(key, value, "a list of non-empty strings")
    raise ConfigError(f"{key}: unsupported type")


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

_ENV_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_ENV_INT = re.compile(r"^\s*[+-]?\d{1,18}\s*$")


def describe(key: str, value: object) -> str:
    """*value* as it may appear in a message about *key*: secrets hidden, URLs without
    userinfo, long values cut."""
    if key.rpartition(".")[2] in SECRET_KEYS:
        return "(hidden)"
    text = redact(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(key: str, value: object, expected: str) -> NoReturn:
    raise ConfigError(f"{key}: expected {expected}, got {describe(key, value)}")


def _float_or_none(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _finite(number: float, key: str, value: object) -> float:
    if not math.isfinite(number):
        _bad(key, value, "a finite number")
    return number


def _in_range(key: str, number: float, bounds: tuple[float, float], value: object) -> float:
    low, high = bounds
    if not low <= number <= high:
        raise ConfigError(f"{key}: must be between {low:g} and {high:g}, "
                          f"got {describe(key, value)}")
    return number
