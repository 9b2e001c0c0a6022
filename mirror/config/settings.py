"""Settings: TOML file + TCIA_MIRROR_<SECTION>_<KEY> environment + flags -> frozen, validated.

Precedence is flag > environment > file > image default (TCIA_MIRROR_DEFAULT_...) >
default. Unknown sections or keys are an error naming the key, so a typo never silently
falls back to a default. The shape is :mod:`.model`, what one value may be :mod:`.values`,
rules across keys :mod:`.checks`; the model's names are re-exported here for callers.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import get_type_hints

from mirror.config import sources
from mirror.config.checks import validate
from mirror.config.model import (
    DEFAULT_BASE_URLS,
    SECTIONS,
    ArchiveSettings,
    CatalogSettings,
    DaemonSettings,
    Settings,
    SourceSettings,
    SubsetFilter,
    SyncSettings,
    field_value,
)
from mirror.config.values import MAX_CONFIG_BYTES, SECRET_KEYS, Duration, parse_duration
from mirror.errors import ConfigError, redact

__all__ = [  # the model is re-exported: callers import their settings from here
    "SECTIONS", "ArchiveSettings", "CatalogSettings", "ConfigError", "DaemonSettings",
    "Duration", "Settings", "SourceSettings", "SubsetFilter", "SyncSettings", "load_settings",
    "parse_duration", "public_view",
]

DEFAULT_CONFIG_FILE = Path("tcia-mirror.toml")
ENV_PREFIX = "TCIA_MIRROR_"
#: The container image's own defaults: ``TCIA_MIRROR_DEFAULT_<SECTION>_<KEY>``. They rank
#: below the config file, so a mounted file's ``[archive] root`` wins over the image.
IMAGE_DEFAULT_PREFIX = "TCIA_MIRROR_DEFAULT_"

#: One source of raw values: ``{"section": {"key": value}}`` (``"sources"``: ``{NAME: {...}}``).
Layer = Mapping[str, Mapping[str, object]]


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Layer | None = None,
) -> Settings:
    """Build :class:`Settings` from defaults, a TOML file, the environment and flags.

    *path* None means ``./tcia-mirror.toml`` if it exists. *overrides* holds flag
    values as ``{"section": {"key": value}}``.
    """
    env = os.environ if env is None else env
    layers: list[tuple[str, Layer]] = [("image defaults", _from_env(env, IMAGE_DEFAULT_PREFIX))]
    file_path = Path(path) if path is not None else DEFAULT_CONFIG_FILE
    if path is not None or file_path.exists():
        layers.append((str(file_path), _read_toml(file_path)))
    layers.append(("environment", _from_env(env, ENV_PREFIX)))
    if overrides:
        layers.append(("command line", overrides))

    values: dict[str, dict[str, object]] = {name: {} for name in SECTIONS}
    named: dict[str, dict[str, object]] = {}
    for origin, layer in layers:  # every layer's values are checked, even those overridden
        for section, keys in layer.items():
            if section == "sources":
                sources.merge_tables(named, keys, origin)
                continue
            if section not in SECTIONS:
                raise ConfigError(f"unknown config section [{section}] in {origin}")
            if not isinstance(keys, Mapping):
                raise ConfigError(f"[{section}] in {origin} must be a table")
            hints = get_type_hints(SECTIONS[section])
            for key, raw in keys.items():
                if key not in hints:
                    raise ConfigError(f"unknown config key {section}.{key} in {origin}")
                values[section][key] = field_value(f"{section}.{key}", hints[key], raw)
    source = values["source"]
    if "api" in source and "base_url" not in source:
        source["base_url"] = DEFAULT_BASE_URLS.get(str(source["api"]), "")
    sections = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
    settings = validate(Settings(**sections, sources=sources.build(named)))
    sources.check_collections(settings)
    return settings


def _read_toml(path: Path) -> dict[str, object]:
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


def _from_env(env: Mapping[str, str], prefix: str = ENV_PREFIX) -> dict[str, dict[str, object]]:
    """``TCIA_MIRROR_SOURCE_PASSWORD=x`` -> ``{"source": {"password": "x"}}``.

    With the plain prefix, image defaults (``TCIA_MIRROR_DEFAULT_...``) are skipped: they
    are a layer of their own.
    """
    out: dict[str, dict[str, object]] = {}
    for name, value in env.items():
        if not name.startswith(prefix):
            continue
        if prefix == ENV_PREFIX and name.startswith(IMAGE_DEFAULT_PREFIX):
            continue
        rest = name[len(prefix):].lower()
        if rest.startswith("sources_"):
            source, key = sources.env_key(name, rest[len("sources_"):])
            table = out.setdefault("sources", {}).setdefault(source, {})
            table[key] = value  # type: ignore[index]
            continue
        section, _, key = rest.partition("_")
        if section not in SECTIONS or key not in get_type_hints(SECTIONS[section]):
            raise ConfigError(f"unknown environment variable {name} (no config key "
                              f"{section}.{key})")
        out.setdefault(section, {})[key] = value
    return out


def public_view(settings: Settings) -> dict[str, dict[str, object]]:
    """The settings as plain data with secrets masked and the userinfo of every URL
    (a catalog URL's password, a base_url's ``user:pw@``) hidden: safe to print or log."""
    def masked(section: object) -> dict[str, object]:
        return {k: ("***" if k in SECRET_KEYS and v else redact(v) if isinstance(v, str) else v)
                for k, v in dataclasses.asdict(section).items()}  # type: ignore[call-overload]

    out = {name: masked(getattr(settings, name)) for name in SECTIONS}
    out.update({f"sources.{name}": masked(source) for name, source in settings.sources.items()})
    return out
