"""[sources.NAME] tables, "NAME:COLLECTION" entries and their environment overlay."""

from pathlib import Path

import pytest

from mirror.config.settings import ConfigError, load_settings, public_view
from mirror.config.sources import collection_sources, source_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tcia-mirror.toml"
    path.write_text(text)
    return path


def test_named_source_picked_by_prefix(tmp_path: Path) -> None:
    path = write(tmp_path, """
[source]
base_url = "http://127.0.0.1:1/nbia-api/services/v4"
[sources.nlst]
base_url = "http://127.0.0.1:2/nbia-api/services/v4"
password = "pw"
[sync]
collections = ["LIDC-IDRI", "nlst:NLST"]
""")
    settings = load_settings(path, env={"TCIA_MIRROR_SOURCES_NLST_MAX_CONNECTIONS": "3"})
    assert collection_sources(settings) == {"LIDC-IDRI": None, "NLST": "nlst"}
    nlst = source_settings(settings, "nlst")
    assert nlst.base_url.startswith("http://127.0.0.1:2/")
    assert nlst.max_connections == 3
    assert nlst.api == "nbia-v4"  # unset keys have [source]'s defaults
    assert source_settings(settings, None).base_url.startswith("http://127.0.0.1:1/")
    assert public_view(settings)["sources.nlst"]["password"] == "***"


def test_only_source_keeps_working(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[sync]\ncollections = ["A", "B"]\n'), env={})
    assert settings.sources == {}
    assert collection_sources(settings) == {"A": None, "B": None}


def test_environment_defines_a_source_name_with_underscores(tmp_path: Path) -> None:
    env = {"TCIA_MIRROR_SOURCES_MY_HOST_BASE_URL": "http://127.0.0.1:3/nbia-api/services/v4",
           "TCIA_MIRROR_SYNC_COLLECTIONS": "my_host:X"}
    settings = load_settings(write(tmp_path, ""), env=env)
    assert collection_sources(settings) == {"X": "my_host"}
    assert settings.sources["my_host"].base_url.endswith("/v4")


@pytest.mark.parametrize(("text", "env", "message"), [
    ('[sync]\ncollections = ["x:Y"]\n', {}, "names source 'x'"),
    ("[sources.a]\nbogus = 1\n", {}, "unknown config key sources.a.bogus"),
    ('[sources.a]\napi = "v9"\n', {}, "sources.a.api: must be one of"),
    ('[sources.a]\n[sync]\ncollections = ["A", "a:a"]\n', {}, "listed twice"),
    ('[sources."a b"]\n', {}, "a source name is"),
    ("", {"TCIA_MIRROR_SOURCES_X": "1"}, "TCIA_MIRROR_SOURCES_<NAME>_<KEY>"),
])
def test_bad_sources_are_one_clear_error(tmp_path: Path, text: str, env: dict[str, str],
                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(write(tmp_path, text), env=env)
