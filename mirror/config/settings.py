"""Settings: TOML file + TCIA_MIRROR_<SECTION>_<KEY> environment + flags -> frozen, validated.

Precedence is flag > environment > file > image default (TCIA_MIRROR_DEFAULT_...) >
default. Unknown sections or keys are an error naming the key, so a typo never silently
falls back to a default; what one value may be is :mod:`mirror.config.values`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from mirror.config.values import (
    MAX_CONFIG_BYTES,
    SECRET_KEYS,
    Duration,
    coerce,
    url_checks,
)
from mirror.config.values import parse_duration as parse_duration  # re-exported
from mirror.errors import ConfigError, redact

DEFAULT_CONFIG_FILE = Path("tcia-mirror.toml")
ENV_PREFIX = "TCIA_MIRROR_"

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

    def replace(self, section: str, **changes: Any) -> Settings:
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)})


SECTIONS: dict[str, type] = {k: v for k, v in get_type_hints(Settings).items()
                             if k != "sources"}


def _validate(settings: Settings) -> Settings:
    s = settings
    checks = [
        (s.source.api in APIS, "source.api", f"must be one of {', '.join(APIS)}"),
        (s.source.base_url.startswith(("http://", "https://")), "source.base_url",
         "must be an http:// or https:// URL"),
        (s.source.max_connections >= 1, "source.max_connections", "must be at least 1"),
        (s.source.requests_per_second >= 0, "source.requests_per_second", "must be >= 0"),
        (s.source.retries >= 0, "source.retries", "must be >= 0"),
        (s.archive.layout in ("uid", "descriptive"), "archive.layout",
         "must be \"uid\" or \"descriptive\""),
        (bool(s.archive.root), "archive.root", "must not be empty"),
        (s.catalog.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
         "catalog.url", "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"),
        (s.sync.workers >= 1, "sync.workers", "must be at least 1"),
        (s.sync.overlap_days >= 0, "sync.overlap_days", "must be >= 0"),
        (s.sync.verify in ("md5", "count"), "sync.verify", "must be \"md5\" or \"count\""),
        (s.sync.on_remote_delete in ("keep", "delete"), "sync.on_remote_delete",
         "must be \"keep\" or \"delete\""),
        (0 <= s.sync.max_delete_fraction <= 1, "sync.max_delete_fraction",
         "must be between 0 and 1"),
        (s.sync.max_attempts >= 1, "sync.max_attempts", "must be at least 1"),
        (s.sync.poll_interval > 0, "sync.poll_interval", "must be positive"),
        (s.sync.lease > 0, "sync.lease", "must be positive"),
        (0 < s.sync.retry_backoff <= s.sync.retry_backoff_cap, "sync.retry_backoff",
         "must be positive and at most sync.retry_backoff_cap"),
        (_valid_listen(s.daemon.listen), "daemon.listen", "must be HOST:PORT"),
        *url_checks(s.source.base_url, s.source.token_url, s.catalog.url),
        (s.sync.hash_requests_per_second >= 0, "sync.hash_requests_per_second", "must be >= 0"),
    ]
    for ok, key, why in [*checks, *_wire_checks(s)]:
        if not ok:
            raise ConfigError(f"{key}: {why}")
    return settings


def _wire_checks(s: Settings) -> list[tuple[bool, str, str]]:
    """The bounds that keep a hostile server from parking, stalling or flooding a sync."""
    return [
        (s.source.max_retry_after > 0, "source.max_retry_after", "must be positive"),
        (s.source.stall_timeout > 0, "source.stall_timeout", "must be positive"),
        (s.source.stall_min_rate >= 0, "source.stall_min_rate", "must be >= 0"),
        (s.source.max_listing_bytes > 0, "source.max_listing_bytes", "must be positive"),
        (s.source.listing_timeout > 0, "source.listing_timeout", "must be positive"),
        (s.sync.max_wait >= 0, "sync.max_wait", "must be >= 0"),
    ]


def _valid_listen(listen: str) -> bool:
    host, _, port = listen.rpartition(":")
    return bool(host) and port.isdigit() and 0 <= int(port) < 65536


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build :class:`Settings` from defaults, a TOML file, the environment and flags.

    *path* None means ``./tcia-mirror.toml`` if it exists. *overrides* holds flag
    values as ``{"section": {"key": value}}``.
    """
    env = os.environ if env is None else env
    layers: list[tuple[str, Mapping[str, Mapping[str, Any]]]] = [
        ("image defaults", _from_env(env, IMAGE_DEFAULT_PREFIX))]
    file_path = Path(path) if path is not None else DEFAULT_CONFIG_FILE
    if path is not None or file_path.exists():
        layers.append((str(file_path), _read_toml(file_path)))
    layers.append(("environment", _from_env(env, ENV_PREFIX)))
    if overrides:
        layers.append(("command line", overrides))

    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    sources: dict[str, dict[str, Any]] = {}
    for origin, layer in layers:
        for section, keys in layer.items():
            if section == "sources":
                from mirror.config.sources import merge_tables

                merge_tables(sources, keys, origin)
                continue
            if section not in SECTIONS:
                raise ConfigError(f"unknown config section [{section}] in {origin}")
            if not isinstance(keys, Mapping):
                raise ConfigError(f"[{section}] in {origin} must be a table")
            hints = get_type_hints(SECTIONS[section])
            for key, raw in keys.items():
                if key not in hints:
                    raise ConfigError(f"unknown config key {section}.{key} in {origin}")
                values[section][key] = _coerce_field(f"{section}.{key}", hints[key], raw)
    source = values["source"]
    if "api" in source and "base_url" not in source:
        source["base_url"] = DEFAULT_BASE_URLS.get(source["api"], "")
    sections = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
    from mirror.config.sources import build, check_collections

    settings = _validate(Settings(**sections, sources=build(sources)))
    check_collections(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML, read bounded (``--config /dev/urandom`` must not hang)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


#: The container image's own defaults: ``TCIA_MIRROR_DEFAULT_<SECTION>_<KEY>``. They rank
#: below the config file, so a mounted file's ``[archive] root`` wins over the image.
IMAGE_DEFAULT_PREFIX = "TCIA_MIRROR_DEFAULT_"


def _from_env(env: Mapping[str, str],
              prefix: str = ENV_PREFIX) -> dict[str, dict[str, str]]:
    """``TCIA_MIRROR_SOURCE_PASSWORD=x`` -> ``{"source": {"password": "x"}}``.

    With the plain prefix, image defaults (``TCIA_MIRROR_DEFAULT_...``) are skipped: they
    are a layer of their own.
    """
    out: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.startswith(prefix):
            continue
        if prefix == ENV_PREFIX and name.startswith(IMAGE_DEFAULT_PREFIX):
            continue
        rest = name[len(prefix):].lower()
        if rest.startswith("sources_"):
            from mirror.config.sources import env_key

            source, key = env_key(name, rest[len("sources_"):])
            out.setdefault("sources", {}).setdefault(source, {})[key] = value  # type: ignore[assignment]
            continue
        section, _, key = rest.partition("_")
        if section not in SECTIONS or key not in get_type_hints(SECTIONS[section]):
            raise ConfigError(f"unknown environment variable {name} (no config key "
                              f"{section}.{key})")
        out.setdefault(section, {})[key] = value
    return out


def public_view(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings as plain data with secrets masked and the userinfo of every URL
    (a catalog URL's password, a base_url's ``user:pw@``) hidden: safe to print or log."""
    def masked(section: Any) -> dict[str, Any]:
        return {k: ("***" if k in SECRET_KEYS and v else redact(v) if isinstance(v, str) else v)
                for k, v in dataclasses.asdict(section).items()}

    out = {name: masked(getattr(settings, name)) for name in SECTIONS}
    out.update({f"sources.{name}": masked(source) for name, source in settings.sources.items()})
    return out


def _coerce_field(key: str, kind: Any, value: Any) -> Any:
    """:func:`coerce`, plus the per-collection filter tables only the file can set."""
    return _filter_table(key, value) if kind == FilterTable else coerce(key, kind, value)


def _filter_table(key: str, value: Any) -> FilterTable:
    """``{"NAME": {"modalities": [...]}, ...}`` -> FilterTable; unknown keys name themselves."""
    if isinstance(value, str):
        raise ConfigError(f"{key}: cannot be set from the environment; use the config file")
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: must be a table of [{key}.\"COLLECTION\"] tables")
    known = get_type_hints(SubsetFilter)
    out = []
    for name, table in value.items():
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
