"""Property tests of config values: any TOML value for any key gives valid settings within
the documented ranges, or one ConfigError line that names the key and shows no secret."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import tempfile
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.config.settings import SECTIONS, Settings, load_settings
from mirror.config.values import (
    DURATION_RANGE,
    FLOAT_RANGE,
    INT_RANGE,
    RANGES,
    SECRET_KEYS,
    Duration,
)
from mirror.errors import ConfigError

KEYS = sorted((section, key) for section, cls in SECTIONS.items()
              for key in get_type_hints(cls))
MARK = "Zq9sekrit"  # inside every generated secret: it must never appear in a message
PROFILE = settings(max_examples=200, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


def to_toml(value: Any) -> str:
    """A TOML literal for *value* (the test's own writer: tomllib only reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if (
            math.isinf(value)) else repr(value)
    if isinstance(value, str):  # JSON's escapes are TOML's, but for astral chars and DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_toml(k)} = {to_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
scalars = st.one_of(
    st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), text, st.dates(),
    st.sampled_from(["10m", "0s", "-1s", "1e9d", "500ms", "7d", "nan", "8.7", "3",
                     "http://h:1/x", "sqlite+aiosqlite:///x.db"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=2)),
    max_leaves=5)
secrets = st.one_of(
    st.builds(lambda a, b: a + MARK + b, text, text),
    st.integers(min_value=0, max_value=10**6).map(lambda n: int(f"9{n}7")),
    st.builds(lambda a: [MARK + a], text))


def load(section: str, key: str, value: Any) -> Settings:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "c.toml")
        path.write_text(f"[{section}]\n{key} = {to_toml(value)}\n", encoding="utf-8")
        return load_settings(path, env={})


def assert_within_documented_ranges(s: Settings) -> None:
    for section in SECTIONS:
        values_of = dataclasses.asdict(getattr(s, section))
        for key, kind in get_type_hints(SECTIONS[section]).items():
            name, value = f"{section}.{key}", values_of[key]
            if kind is Duration:
                assert isinstance(value, float) and DURATION_RANGE[0] <= value <= (
                    DURATION_RANGE[1]), (name, value)
            elif kind is int:
                low, high = RANGES.get(name, INT_RANGE)
                assert type(value) is int and low <= value <= high, (name, value)
            elif kind is float:
                low, high = RANGES.get(name, FLOAT_RANGE)
                assert math.isfinite(value) and low <= value <= high, (name, value)
            elif kind is str:
                assert isinstance(value, str) and "\x00" not in value, (name, value)
            elif kind is bool:
                assert isinstance(value, bool)
            elif name == "sync.filters":  # ((collection, SubsetFilter fields), ...)
                for collection, subset in value:
                    assert isinstance(collection, str) and collection.strip(), (name, value)
                    assert all(v is None or all(isinstance(x, str) and x for x in v)
                               for v in subset.values()), (name, value)
            else:
                assert all(isinstance(v, str) and v for v in value), (name, value)
    # the ranges the README documents, independent of the table above
    assert 1 <= s.sync.workers <= 256 and 0 <= s.sync.overlap_days <= 3650
    assert 0 <= s.sync.max_delete_fraction <= 1 and s.sync.poll_interval > 0


def assert_one_line_naming(exc: ConfigError, section: str, key: str) -> None:
    message = exc.message
    assert "\n" not in message and "\r" not in message, message
    assert f"{section}.{key}" in message, message
    assert MARK not in message and "9" + MARK not in message, message


@PROFILE
@given(st.sampled_from(KEYS), st.data())
def test_any_value_for_any_key_is_valid_or_one_line_naming_the_key(
        section_key: tuple[str, str], data: st.DataObject) -> None:
    section, key = section_key
    secret = key in SECRET_KEYS
    value = data.draw(secrets if secret else values, label="value")
    try:
        s = load(section, key, value)
    except ConfigError as exc:
        assert_one_line_naming(exc, section, key)
        if secret:
            assert str(value) not in exc.message
        return
    assert_within_documented_ranges(s)


def test_a_filter_for_an_unnamed_collection_is_one_line_naming_the_key() -> None:
    # found by the property above: {"" = {}} was taken as a filter for no collection
    with pytest.raises(ConfigError) as caught:
        load("sync", "filters", {"": {}})
    assert_one_line_naming(caught.value, "sync", "filters")


@PROFILE
@given(st.sampled_from(KEYS), text)
def test_any_environment_value_is_valid_or_one_line_naming_the_key(
        section_key: tuple[str, str], raw: str) -> None:
    section, key = section_key
    raw = raw.replace("\x00", "")
    value = MARK + raw if key in SECRET_KEYS else raw
    env = {f"TCIA_MIRROR_{section.upper()}_{key.upper()}": value}
    try:
        s = load_settings(Path("/dev/null"), env=env)
    except ConfigError as exc:
        assert_one_line_naming(exc, section, key)
        return
    assert_within_documented_ranges(s)


URL_KEYS = [("source", "base_url"), ("source", "token_url"), ("catalog", "url")]
schemes = st.sampled_from(["http", "https", "postgresql+asyncpg", "sqlite+aiosqlite", "ftp",
                           "HTTP"])
ports = st.one_of(st.just(""), st.integers(min_value=-5, max_value=10**6).map(lambda p: f":{p}"),
                  text.map(lambda t: ":" + t))


@PROFILE
@given(st.sampled_from(URL_KEYS), schemes, text.filter(lambda t: "@" not in t), ports,
       text)
def test_url_userinfo_never_appears_in_a_message(section_key: tuple[str, str], scheme: str,
                                                 user: str, port: str, path: str) -> None:
    section, key = section_key
    user = "".join(c for c in user if c not in "/?#:\x00") or "u"
    url = f"{scheme}://{user}:{MARK}@127.0.0.1{port}/{path}"
    try:
        load(section, key, url)
    except ConfigError as exc:
        assert_one_line_naming(exc, section, key)


@pytest.mark.parametrize(("toml", "key"), [
    ("[sync]\nworkers = 8.7", "sync.workers"),
    ("[sync]\nworkers = true", "sync.workers"),
    ("[sync]\noverlap_days = 1e8", "sync.overlap_days"),
    ("[sync]\noverlap_days = 100000000", "sync.overlap_days"),
    ("[sync]\npoll_interval = \"0s\"", "sync.poll_interval"),
    ("[sync]\nlease = -3", "sync.lease"),
    ("[source]\nrequests_per_second = nan", "source.requests_per_second"),
    ("[source]\nmax_connections = 0", "source.max_connections"),
])
def test_out_of_range_values_reported_by_users(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(path, env={})


def test_image_defaults_rank_below_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[archive]\nroot = "/from/file"\n')
    image = {"TCIA_MIRROR_DEFAULT_ARCHIVE_ROOT": "/image", "TCIA_MIRROR_DEFAULT_SYNC_WORKERS": "3"}
    s = load_settings(path, env=image)
    assert s.archive.root == "/from/file" and s.sync.workers == 3
    s = load_settings(path, env={**image, "TCIA_MIRROR_ARCHIVE_ROOT": "/from/env"})
    assert s.archive.root == "/from/env"
    s = load_settings(path, env=image, overrides={"archive": {"root": "/from/flag"}})
    assert s.archive.root == "/from/flag"
    with pytest.raises(ConfigError, match="TCIA_MIRROR_DEFAULT_ARCHIVE_ROTO"):
        load_settings(path, env={"TCIA_MIRROR_DEFAULT_ARCHIVE_ROTO": "/x"})
