"""Fault injection: a registry of faults per endpoint, fired by count or by a seeded rate.

Spec syntax (``--fault`` and ``POST /_sim/faults`` with ``{"spec": ...}``)::

    [DIALECT/]ENDPOINT:KIND[=MAIN][:key=value]...

ENDPOINT is an endpoint name or ``*``; DIALECT is v3, nbia-v1 or nbia-v4. MAIN is the
kind's main parameter (status: status, retry_after: seconds, reset: after_bytes,
truncate: after_bytes (an integer) or fraction (with a dot), corrupt: bytes,
slow: bytes_per_second, latency: seconds, hostile: entry). Extra keys: count=N (next N
matching requests), rate=P (probability per request), and kind parameters such as body=,
status= (retry_after: 429 or 503), size= (bomb size), raw=1 (truncate: cut mid-entry),
series=UID (only requests for that SeriesInstanceUID).
Examples: ``getImage:status=500:count=3``, ``nbia-v4/getImage:retry_after=2:status=503``,
``*:latency=0.5:rate=0.1``, ``getImage:hostile=dotdot``.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from mirror.errors import UsageError

KINDS = ("status", "retry_after", "reset", "truncate", "corrupt", "slow", "latency",
         "expire_token", "hostile", "wrong_series")
_MAIN = {"status": "status", "retry_after": "seconds", "reset": "after_bytes",
         "truncate": "after_bytes", "corrupt": "bytes", "slow": "bytes_per_second",
         "latency": "seconds", "hostile": "entry"}
DIALECT_NAMES = ("v3", "nbia-v1", "nbia-v4")


@dataclass
class Fault:
    id: str
    endpoint: str
    kind: str
    dialect: str | None
    count: int | None
    rate: float | None
    params: dict[str, Any]
    rng: random.Random = field(repr=False)

    def matches(self, dialect: str, endpoint: str, series_uid: str | None = None) -> bool:
        wanted = self.params.get("series")  # series=UID: only requests for that series
        return (self.endpoint in ("*", endpoint)
                and self.dialect in (None, dialect)
                and (wanted is None or str(wanted) == series_uid))

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "endpoint": self.endpoint, "kind": self.kind,
                "dialect": self.dialect, "count": self.count, "rate": self.rate,
                "params": self.params}


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> dict[str, Any]:
    """Turn a fault spec string into keyword arguments for :meth:`FaultRegistry.add`."""
    target, _, rest = spec.partition(":")
    parts = [p for p in rest.split(":") if p]
    if not target or not parts:
        raise UsageError(f"fault spec {spec!r} must look like ENDPOINT:KIND[=VALUE][:key=value]")
    dialect, _, endpoint = target.rpartition("/")
    kind, _, main = parts[0].partition("=")
    out: dict[str, Any] = {"endpoint": endpoint, "kind": kind, "dialect": dialect or None}
    if main:
        key = "fraction" if kind == "truncate" and "." in main else _MAIN.get(kind, "value")
        out[key] = _number(main)
    for item in parts[1:]:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"fault spec {spec!r}: {item!r} is not key=value")
        out[key] = _number(value)
    return out


class FaultRegistry:
    """Thread-safe; each fault draws from its own RNG seeded by (fault seed, its number)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, endpoint: str, kind: str, *, dialect: str | None = None,
            count: int | None = None, rate: float | None = None, **params: Any) -> str:
        if kind not in KINDS:
            raise UsageError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        if dialect not in (None, *DIALECT_NAMES):
            raise UsageError(f"unknown dialect {dialect!r} in fault")
        if kind == "hostile" and params.get("entry") not in ("dotdot", "absolute",
                                                              "duplicate", "bomb"):
            raise UsageError("hostile fault needs entry=dotdot|absolute|duplicate|bomb")
        with self._lock:
            n = next(self._ids)
            fault = Fault(f"f{n}", endpoint, kind, dialect, count, rate, params,
                          random.Random(f"{self.seed}:{n}"))
            self._faults.append(fault)
        return fault.id

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def take(self, dialect: str, endpoint: str, series_uid: str | None = None) -> list[Fault]:
        """The faults that fire for this request (counts are consumed here).

        *series_uid* is the request's SeriesInstanceUID, for faults limited by ``series=``.
        """
        fired = []
        with self._lock:
            for f in self._faults:
                if not f.matches(dialect, endpoint, series_uid):
                    continue
                if f.rate is not None and f.rng.random() >= f.rate:
                    continue
                if f.count is not None:
                    f.count -= 1
                fired.append(f)
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
        return fired
