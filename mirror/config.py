"""Settings: TOML file + TCIA_MIRROR_<SECTION>_<KEY> environment + flags -> frozen, validated.

Precedence is flag > environment > file > default. Unknown sections or keys are an
error naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from mirror.errors import ConfigError, redact

DEFAULT_CONFIG_FILE = Path("tcia-mirror.toml")
ENV_PREFIX = "TCIA_MIRROR_"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

APIS = ("v3", "nbia-v1", "nbia-v4")
DEFAULT_BASE_URLS = {
    "v3": "https://services.cancerimagingarchive.net/services/v3/TCIA/query",
    "nbia-v1": "https://services.cancerimagingarchive.net/nbia-api/services/v1",
    "nbia-v4": "https://nbia.cancerimagingarchive.net/nbia-api/services/v4",
}


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
class SyncSettings:
    collections: tuple[str, ...] = ("LIDC-IDRI",)
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

    def replace(self, section: str, **changes: Any) -> Settings:
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)})


SECTIONS: dict[str, type] = get_type_hints(Settings)


def _coerce(key: str, kind: Any, value: Any) -> Any:
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


def describe(key: str, value: Any) -> str:
    """*value* as it may appear in a message about *key*: secrets hidden, URLs without
    userinfo, long values cut."""
    if key.rpartition(".")[2] in SECRET_KEYS:
        return "(hidden)"
    text = redact(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(key: str, value: Any, expected: str) -> Any:
    raise ConfigError(f"{key}: expected {expected}, got {describe(key, value)}")


def _float_or_none(value: Any) -> float | None:
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


def _finite(number: float, key: str, value: Any) -> float:
    if not math.isfinite(number):
        _bad(key, value, "a finite number")
    return number


def _in_range(key: str, number: Any, bounds: tuple[float, float], value: Any) -> Any:
    low, high = bounds
    if not low <= number <= high:
        raise ConfigError(f"{key}: must be between {low:g} and {high:g}, "
                          f"got {describe(key, value)}")
    return number


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
        *_url_checks(s),
    ]
    for ok, key, why in checks:
        if not ok:
            raise ConfigError(f"{key}: {why}")
    return settings


def _url_checks(s: Settings) -> list[tuple[bool, str, str]]:
    """URLs must parse, with a host and a port in range (messages never show userinfo)."""
    return [
        (_http_url_ok(s.source.base_url), "source.base_url",
         "must be an http:// or https:// URL with a host (and a port 1-65535)"),
        (not s.source.token_url or _http_url_ok(s.source.token_url), "source.token_url",
         "must be empty or an http:// or https:// URL with a host"),
        (_catalog_url_ok(s.catalog.url), "catalog.url",
         "is not a valid database URL (check the host, port 1-65535 and database)"),
    ]


def _http_url_ok(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError when out of range or not a number
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname)
            and (port is None or port > 0) and not any(c.isspace() for c in url))


def _catalog_url_ok(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return False
    if parsed.drivername.startswith("sqlite"):
        return True
    port = parsed.port
    return bool(parsed.host) and (port is None or 0 < port < 65536)


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
    for origin, layer in layers:
        for section, keys in layer.items():
            if section not in SECTIONS:
                raise ConfigError(f"unknown config section [{section}] in {origin}")
            if not isinstance(keys, Mapping):
                raise ConfigError(f"[{section}] in {origin} must be a table")
            hints = get_type_hints(SECTIONS[section])
            for key, raw in keys.items():
                if key not in hints:
                    raise ConfigError(f"unknown config key {section}.{key} in {origin}")
                values[section][key] = _coerce(f"{section}.{key}", hints[key], raw)
    source = values["source"]
    if "api" in source and "base_url" not in source:
        source["base_url"] = DEFAULT_BASE_URLS.get(source["api"], "")
    sections = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
    return _validate(Settings(**sections))


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
        section, _, key = rest.partition("_")
        if section not in SECTIONS or key not in get_type_hints(SECTIONS[section]):
            raise ConfigError(f"unknown environment variable {name} (no config key "
                              f"{section}.{key})")
        out.setdefault(section, {})[key] = value
    return out


def public_view(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings as plain data with secrets masked, safe to print or log."""
    secrets = SECRET_KEYS
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        section = dataclasses.asdict(getattr(settings, name))
        out[name] = {k: ("***" if k in secrets and v else v) for k, v in section.items()}
    catalog_url = out["catalog"]["url"]
    out["catalog"]["url"] = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", catalog_url)
    return out
