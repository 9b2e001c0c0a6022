"""Checks across keys and of enumerations: one ``KEY: why`` message per broken rule.

:mod:`mirror.config.values` bounds each number alone; this module owns the rules a whole
section must keep (choices, URLs, ``retry_backoff <= retry_backoff_cap``).
"""

from __future__ import annotations

import urllib.parse

from mirror.config.model import APIS, Settings
from mirror.errors import ConfigError


def validate(settings: Settings) -> Settings:
    """*settings*, or ConfigError naming the first key that breaks a rule."""
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


def url_checks(base_url: str, token_url: str, catalog_url: str) -> list[tuple[bool, str, str]]:
    """URLs must parse, with a host and a port in range (messages never show userinfo)."""
    return [
        (_http_url_ok(base_url), "source.base_url",
         "must be an http:// or https:// URL with a host (and a port 1-65535)"),
        (not token_url or _http_url_ok(token_url), "source.token_url",
         "must be empty or an http:// or https:// URL with a host"),
        (_catalog_url_ok(catalog_url), "catalog.url",
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
    from mirror import dburl  # SQLAlchemy's URL grammar without importing it

    return dburl.valid(url)


