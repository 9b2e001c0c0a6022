"""One field of a TCIA record -> a plain value: numbers sent as strings, text, renamed keys.

Tolerant by design: a value of the wrong kind is None (or skipped), never an error; the
row-level checks (:mod:`mirror.tcia.rows`) decide whether a None makes a row unusable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def to_int(value: Any) -> int | None:
    """``12``, ``12.0``, ``"12"``, ``"3000923.000000"`` -> int; anything else -> None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if math.isfinite(number) else None
    return None


def to_str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text if text else None


def first(record: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key present (dialects rename fields)."""
    for key in keys:
        if record.get(key) is not None:
            return record[key]
    return None


def value_list(records: Iterable[Mapping[str, Any]], key: str) -> list[str]:
    """Single-column endpoints: ``[{}, {"Modality": "CT"}]`` -> ``["CT"]``.

    ``{}`` stands for a NULL value and is skipped; a one-key record under another name
    (an undocumented legacy spelling) still counts.
    """
    out: list[str] = []
    for record in records:
        value = record.get(key)
        if value is None and len(record) == 1:
            value = next(iter(record.values()))
        text = to_str(value)
        if text is not None:
            out.append(text)
    return out
