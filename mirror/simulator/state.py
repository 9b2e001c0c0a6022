"""What the simulator's HTTP handlers need of it: the :class:`SimulatorState` Protocol,
request statistics, ground-truth records and where each API lives in the URL space.

:class:`mirror.simulator.server.Simulator` implements the Protocol; the dialect routes and
the admin routes depend only on it, so neither imports the server that mounts them.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from mirror.simulator.auth import TokenStore
from mirror.simulator.blobs import BlobStore
from mirror.simulator.catalog import Catalog
from mirror.simulator.faults import Fault, FaultRegistry
from mirror.simulator.releases import ReleaseSummary
from mirror.simulator.zips import ZipCache

V3_PREFIX = "/services/v3/TCIA/query"
V1_PREFIX = "/nbia-api/services/v1"
V2_PREFIX = "/nbia-api/services/v2"
V4_PREFIX = "/nbia-api/services/v4"
TOKEN_PATH = "/nbia-api/oauth/token"
#: Jersey is mapped at both ``/*`` and ``/services/*`` (keycloak/web.xml), so the token
#: endpoint also answers under ``services/`` (nbiatoolkit posts there).
TOKEN_PATHS = (TOKEN_PATH, "/nbia-api/services/oauth/token")
ADMIN_PREFIX = "/_sim"
#: The dialects ``mirror simulate`` announces.
PREFIXES = {"v3": V3_PREFIX, "nbia-v1": V1_PREFIX, "nbia-v4": V4_PREFIX}
#: Everything served: NBIA v2 (the v1 answers behind a Bearer token) as well.
SERVED = {**PREFIXES, "nbia-v2": V2_PREFIX}


@dataclass(frozen=True)
class InstanceTruth:
    size: int
    md5: str


@dataclass(frozen=True)
class SeriesTruth:
    collection: str
    patient_id: str
    study_uid: str
    series_uid: str
    image_count: int
    file_size: int
    instances: dict[str, InstanceTruth]


#: Endpoints whose requests download image data; counted per series in ``Stats.series``.
IMAGE_ENDPOINTS = frozenset({"getImage", "getImageWithMD5Hash", "getSingleImage"})


class Stats:
    """Request counts per ``<dialect>:<Endpoint>``, statuses and body bytes served.

    ``series`` counts image downloads (getImage, getImageWithMD5Hash, getSingleImage) per
    SeriesInstanceUID, so tests can tell which series were fetched again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.series: Counter[str] = Counter()
            self.bytes = 0

    def request(self, key: str, series_uid: str | None = None) -> None:
        with self._lock:
            self.requests[key] += 1
            if series_uid is not None and key.rpartition(":")[2] in IMAGE_ENDPOINTS:
                self.series[series_uid] += 1

    def status(self, code: int) -> None:
        with self._lock:
            self.statuses[str(code)] += 1

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self.requests), "requests_total": sum(self.requests.values()),
                    "bytes": self.bytes, "statuses": dict(self.statuses),
                    "series": dict(self.series)}


class SimulatorState(Protocol):
    """The simulator as its request handlers and admin routes see it (safe from any thread)."""

    catalog: Catalog  #: the current snapshot; a release replaces it as a whole
    store: BlobStore
    zips: ZipCache
    tokens: TokenStore
    faults: FaultRegistry
    stats: Stats
    api_key: str | None  #: v3's api_key header; None: not checked
    auth: bool  #: NBIA image endpoints want a Bearer token

    def collections(self) -> list[str]: ...

    def ground_truth(self, collection: str | None = None) -> dict[str, SeriesTruth]: ...

    def publish_release(self, on: date, **counts: Any) -> ReleaseSummary: ...

    def md5_cache(self) -> dict[str, str]: ...

    def refresh_md5_cache(self) -> dict[str, str]: ...

    def advance_clock(self, hours: float) -> bool: ...

    def set_stored_md5(self, **choice: Any) -> dict[str, str | None]: ...

    def add_fault(self, endpoint: str, kind: str, **kwargs: Any) -> str: ...

    def take_faults(self, dialect: str, endpoint: str,
                    series_uid: str | None = None) -> list[Fault]: ...
