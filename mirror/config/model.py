"""The settings' shape: sections, keys, their types and defaults, as frozen dataclasses, and
how one raw value becomes a field (:func:`field_value`, the ``[sync.filters]`` tables included).

Adding a key means adding a field here (and a row in :data:`mirror.config.values.RANGES` if it
is a number with special bounds); loading and checking them is :mod:`mirror.config.settings`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import get_type_hints

from mirror.config.values import Duration, coerce
from mirror.errors import ConfigError

APIS = ("v3", "nbia-v1", "nbia-v4")
DEFAULT_BASE_URLS = {
    "v3": "https://services.cancerimagingarchive.net/services/v3/TCIA/query",
    "nbia-v1": "https://services.cancerimagingarchive.net/nbia-api/services/v1",
    "nbia-v4": "https://nbia.cancerimagingarchive.net/nbia-api/services/v4",
}


@dataclass(frozen=True)
class SourceSettings:
    api: str = "nbia-v4"
    base_url: str = DEFAULT_BASE_URLS["nbia-v4"]
    api_key: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    token_url: str = ""
    max_connections: int = 8
    requests_per_second: float = 0.0
    ca_bundle: str = ""
    connect_timeout: Duration = Duration(30.0)
    read_timeout: Duration = Duration(120.0)
    retries: int = 5
    # wire bounds against a hostile or broken server (README "Hostile servers")
    max_retry_after: Duration = Duration(900.0)
    stall_timeout: Duration = Duration(120.0)
    stall_min_rate: int = 1024
    max_listing_bytes: int = 1 << 30
    listing_timeout: Duration = Duration(3600.0)

    def resolved_token_url(self) -> str:
        """The token endpoint: configured, or ``<host>/nbia-api/oauth/token``."""
        if self.token_url:
            return self.token_url
        base = self.base_url.rstrip("/")
        marker = "/nbia-api/"
        if marker in base:
            return base.split(marker, 1)[0] + "/nbia-api/oauth/token"
        return base.split("/services/", 1)[0] + "/nbia-api/oauth/token"


@dataclass(frozen=True)
class ArchiveSettings:
    root: str = "./archive"
    layout: str = "uid"


@dataclass(frozen=True)
class CatalogSettings:
    url: str = field(default="sqlite+aiosqlite:///./catalog.db", repr=False)


@dataclass(frozen=True)
class SubsetFilter:
    """``[sync.filters."NAME"]``: None = the key is not set here (inherit ``[sync]``)."""

    modalities: tuple[str, ...] | None = None
    body_parts: tuple[str, ...] | None = None
    patients: tuple[str, ...] | None = None


#: ``[sync.filters]``: (collection name, its filter) pairs, a tuple so settings stay hashable.
FilterTable = tuple[tuple[str, SubsetFilter], ...]


@dataclass(frozen=True)
class SyncSettings:
    collections: tuple[str, ...] = ("LIDC-IDRI",)
    #: .tcia manifests whose series are mirrored and kept in sync like collections
    manifests: tuple[str, ...] = ()
    workers: int = 8
    poll_interval: Duration = Duration(3600.0)
    reconcile_interval: Duration = Duration(7 * 86400.0)
    overlap_days: int = 2
    verify: str = "md5"
    on_remote_delete: str = "keep"
    max_delete_fraction: float = 0.1
    max_attempts: int = 5
    retry_backoff: Duration = Duration(2.0)
    retry_backoff_cap: Duration = Duration(300.0)
    lease: Duration = Duration(300.0)
    # subsets (mirror.sync.filters): empty = everything
    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    filters: FilterTable = ()
    max_wait: Duration = Duration(300.0)  # one-shot sync: retries due later are deferred
    #: getMD5Hierarchy requests per second of the hash check (nbia-v4); 0 = unlimited
    hash_requests_per_second: float = 2.0


@dataclass(frozen=True)
class DaemonSettings:
    listen: str = "127.0.0.1:9188"
    shutdown_timeout: Duration = Duration(8.0)


@dataclass(frozen=True)
class Settings:
    source: SourceSettings = field(default_factory=SourceSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    #: ``[sources.NAME]``: further hosts, picked by ``"NAME:COLLECTION"`` in collections
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)

    def replace(self, section: str, **changes: object) -> Settings:
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)})


#: The ``[SECTION]`` tables and their dataclasses (``[sources.NAME]`` is :mod:`.sources`).
SECTIONS: dict[str, type] = {k: v for k, v in get_type_hints(Settings).items()
                             if k != "sources"}


def field_value(key: str, kind: object, value: object) -> object:
    """*value* (TOML or environment) as a field of type *kind*, or ConfigError naming *key*:
    :func:`~mirror.config.values.coerce`, plus the per-collection filter tables only the file
    can set."""
    return _filter_table(key, value) if kind == FilterTable else coerce(key, kind, value)


def _filter_table(key: str, value: object) -> FilterTable:
    """``{"NAME": {"modalities": [...]}, ...}`` -> FilterTable; unknown keys name themselves."""
    if isinstance(value, str):
        raise ConfigError(f"{key}: cannot be set from the environment; use the config file")
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: must be a table of [{key}.\"COLLECTION\"] tables")
    known = get_type_hints(SubsetFilter)
    out = []
    for name, table in value.items():
        if not str(name).strip():
            raise ConfigError(f"{key}: a collection name must not be empty")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{key}.{name}: must be a table")
        for sub in table:
            if sub not in known:
                raise ConfigError(f"unknown config key {key}.\"{name}\".{sub} (expected "
                                  f"{', '.join(known)})")
        out.append((str(name), SubsetFilter(**{
            sub: coerce(f"{key}.{name}.{sub}", tuple[str, ...], raw)
            for sub, raw in table.items()})))
    return tuple(out)
