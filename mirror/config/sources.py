"""More than one source: ``[sources.NAME]`` tables and ``"NAME:COLLECTION"`` entries.

``[source]`` stays the default; each ``[sources.NAME]`` table takes the same keys (each
unset key has the same default). ``"NAME:COLLECTION"`` in ``[sync] collections`` mirrors
COLLECTION from that source; the catalog and the archive know it as plain COLLECTION,
so one collection name may come from one source only. Environment overlay:
``TCIA_MIRROR_SOURCES_<NAME>_<KEY>`` (``TCIA_MIRROR_SOURCES_NLST_PASSWORD``), NAME
matched case-insensitively against the file's tables (a new NAME defines a new source).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import get_type_hints

from mirror.config.checks import validate
from mirror.config.model import DEFAULT_BASE_URLS, Settings, SourceSettings, field_value
from mirror.errors import ConfigError

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def merge_tables(into: dict[str, dict[str, object]], tables: object, origin: str) -> None:
    """Fold one layer's ``[sources.NAME]`` tables into *into* (names case-insensitive,
    so that ``TCIA_MIRROR_SOURCES_NLST_PASSWORD`` finds ``[sources.nlst]``)."""
    if not isinstance(tables, Mapping):
        raise ConfigError(f"[sources] in {origin} must hold [sources.NAME] tables")
    hints = get_type_hints(SourceSettings)
    for name, keys in tables.items():
        if not _SOURCE_NAME.match(name):
            raise ConfigError(f"[sources.{name}] in {origin}: a source name is letters, "
                              "digits, '-' and '_'")
        if not isinstance(keys, Mapping):
            raise ConfigError(f"[sources.{name}] in {origin} must be a table")
        existing = next((k for k in into if k.lower() == name.lower()), name)
        target = into.setdefault(existing, {})
        for key, raw in keys.items():
            if key not in hints:
                raise ConfigError(f"unknown config key sources.{name}.{key} in {origin}")
            target[key] = field_value(f"sources.{name}.{key}", hints[key], raw)


def build(raw: dict[str, dict[str, object]]) -> dict[str, SourceSettings]:
    """Each named source's settings, checked like ``[source]`` (messages say ``sources.NAME``)."""
    out: dict[str, SourceSettings] = {}
    for name, values in raw.items():
        if "api" in values and "base_url" not in values:
            values["base_url"] = DEFAULT_BASE_URLS.get(values["api"], "")
        source = SourceSettings(**values)
        try:
            validate(Settings(source=source))
        except ConfigError as exc:
            raise ConfigError(f"sources.{name}.{str(exc).removeprefix('source.')}") from None
        out[name] = source
    return out


def env_key(variable: str, rest: str) -> tuple[str, str]:
    """``nlst_max_connections`` -> ("nlst", "max_connections"): the longest known key
    that ends the name wins, the rest is the source name (which may hold ``_``)."""
    for key in sorted(get_type_hints(SourceSettings), key=len, reverse=True):
        if rest.endswith("_" + key) and len(rest) > len(key) + 1:
            return rest[:-len(key) - 1], key
    raise ConfigError(f"unknown environment variable {variable} (expected "
                      "TCIA_MIRROR_SOURCES_<NAME>_<KEY> with a [source] key)")


def split_collection(entry: str) -> tuple[str | None, str]:
    """``"nlst:NLST"`` -> ("nlst", "NLST"); a plain name -> (None, name): the [source]."""
    name, sep, collection = entry.partition(":")
    return (name, collection) if sep else (None, entry)


def collection_sources(settings: Settings) -> dict[str, str | None]:
    """Collection name (as the catalog and the archive know it) -> its source's name
    (None: the default ``[source]``), in the order configured."""
    known = {n.lower(): n for n in settings.sources}
    out: dict[str, str | None] = {}
    for entry in settings.sync.collections:
        source, collection = split_collection(entry)
        out[collection] = None if source is None else known.get(source.lower(), source)
    return out


def source_settings(settings: Settings, name: str | None) -> SourceSettings:
    """The settings of source *name* (None: ``[source]``)."""
    return settings.source if name is None else settings.sources[name]


def check_collections(settings: Settings) -> None:
    """Each ``NAME:`` prefix names a table, each collection is named once."""
    seen: dict[str, str] = {}
    known = {n.lower(): n for n in settings.sources}
    for entry in settings.sync.collections:
        source, collection = split_collection(entry)
        if source is not None and source.lower() not in known:
            raise ConfigError(f"sync.collections: {entry!r} names source {source!r}, which "
                              "has no [sources." + source + "] table")
        if not collection:
            raise ConfigError(f"sync.collections: {entry!r} names no collection")
        if collection.upper() in seen:
            raise ConfigError(f"sync.collections: {collection!r} is listed twice "
                              f"({seen[collection.upper()]!r} and {entry!r})")
        seen[collection.upper()] = entry
