"""Listing dates: every dialect's date and timestamp strings -> UTC-tagged datetimes.

NBIA v4 sends ``MM-DD-YYYY``, v1/v2 ``java.sql.Timestamp`` text, legacy servers a few
more shapes (see ``_DATETIME_FORMATS``); anything unreadable is None, never an error.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime
from typing import Any

_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S.%f",  # NBIA v1/v2 java.sql.Timestamp: "2000-01-01 00:00:00.0"
    "%Y-%m-%d %H:%M:%S",
    "%m-%d-%Y",  # NBIA v4 date_format(x, '%m-%d-%Y')
    "%Y-%m-%d",  # java.sql.Date, legacy v3
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%Y%m%d",  # DICOM DA
    "%a %b %d %H:%M:%S %Y",  # java.util.Date.toString() once its zone is removed
)
#: java.util.Date.toString(): "Wed Oct 19 00:00:00 EDT 2016" -> drop the zone name.
_JAVA_DATE_ZONE = re.compile(r"^(\w{3} \w{3} \d{1,2} \d{2}:\d{2}:\d{2}) [A-Za-z+\-:0-9]+ (\d{4})$")


def to_datetime(value: Any) -> datetime | None:
    """Any of the dialects' date strings -> datetime (UTC-tagged wall clock), else None.

    The server's time zone is unknown (NBIA uses its JVM/MySQL local zone), so the wall
    clock value is kept and tagged UTC to make comparisons with aware datetimes work.
    """
    return _parsed(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=4096)
def _parsed(value: str) -> datetime | None:
    """:func:`to_datetime` of a text, once per distinct text: a listing's 400,000 dates
    are a few hundred different days (datetimes are immutable, so sharing one is safe)."""
    if not value.strip():
        return None
    text = value.strip()
    if (fast := _fast_datetime(text)) is not None:
        return fast
    java = _JAVA_DATE_ZONE.match(text)
    if java:
        text = f"{java.group(1)} {java.group(2)}"
    for fmt in _DATETIME_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fast_datetime(text: str) -> datetime | None:
    """The two shapes listings are made of, without strptime's retries (None: not these).

    NBIA v4 ``MM-DD-YYYY`` and v1 ``YYYY-MM-DD HH:MM:SS[.f]``: a 200,000-series listing
    has 400,000 of them, and trying the format list in order cost a third of discovery.
    Gives exactly what the matching ``_DATETIME_FORMATS`` entry gives, or None.
    """
    try:
        if len(text) == 10 and text[2] == "-" and text[5] == "-" and text.isascii():
            if text[:2].isdigit() and text[3:5].isdigit() and text[6:].isdigit():
                return datetime(int(text[6:]), int(text[:2]), int(text[3:5]), tzinfo=UTC)
        elif (19 <= len(text) <= 26 and text[4] == "-" and text[7] == "-" and text[10] == " "
              and text[13] == ":" and text[16] == ":" and text.isascii()
              and (len(text) == 19 or text[19] == ".")):
            digits = text[:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
            fraction = text[20:]
            if digits.isdigit() and (len(text) == 19 or (fraction and fraction.isdigit())):
                return datetime(int(text[:4]), int(text[5:7]), int(text[8:10]),
                                int(text[11:13]), int(text[14:16]), int(text[17:19]),
                                int(fraction.ljust(6, "0")) if fraction else 0, tzinfo=UTC)
    except ValueError:  # e.g. month 13: the slow path decides
        return None
    return None


def to_date(value: Any) -> date | None:
    parsed = to_datetime(value)
    return parsed.date() if parsed else None
