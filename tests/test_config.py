"""Config loading: precedence, durations, unknown keys, validation."""

from pathlib import Path

import pytest

from mirror.config.settings import load_settings, parse_duration, public_view
from mirror.errors import ConfigError


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("2s", 2.0), ("10m", 600.0), ("1h", 3600.0), ("7d", 604800.0),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10", "1w", "", "s", "-1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(text)


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sync]\nworkers = 3\npoll_interval = "5m"\n[source]\npassword = "file"\n')
    s = load_settings(cfg, env={"TCIA_MIRROR_SYNC_WORKERS": "5",
                                "TCIA_MIRROR_SOURCE_PASSWORD": "env"})
    assert (s.sync.workers, s.sync.poll_interval, s.source.password) == (5, 300.0, "env")
    s = load_settings(cfg, env={"TCIA_MIRROR_SYNC_WORKERS": "5"},
                      overrides={"sync": {"workers": 7}})
    assert s.sync.workers == 7


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[sync]\nworkerz = 3\n")
    with pytest.raises(ConfigError, match=r"sync\.workerz"):
        load_settings(cfg, env={})


def test_unknown_env_variable() -> None:
    with pytest.raises(ConfigError, match="TCIA_MIRROR_SYNC_NOPE"):
        load_settings(None, env={"TCIA_MIRROR_SYNC_NOPE": "1"})


@pytest.mark.parametrize(("toml", "key"), [
    ('[source]\napi = "v5"\n', "source.api"),
    ("[sync]\nworkers = 0\n", "sync.workers"),
    ('[sync]\nworkers = "many"\n', "sync.workers"),
    ('[catalog]\nurl = "mysql://x"\n', "catalog.url"),
    ('[daemon]\nlisten = "nowhere"\n', "daemon.listen"),
    ("[sync]\nmax_delete_fraction = 2.0\n", "sync.max_delete_fraction"),
])
def test_invalid_values_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(cfg, env={})


def test_api_choice_sets_default_base_url() -> None:
    s = load_settings(None, env={"TCIA_MIRROR_SOURCE_API": "nbia-v1"})
    assert s.source.base_url.endswith("/nbia-api/services/v1")


def test_public_view_masks_secrets() -> None:
    s = load_settings(None, env={"TCIA_MIRROR_SOURCE_PASSWORD": "hunter2",
                                 "TCIA_MIRROR_CATALOG_URL": "postgresql+asyncpg://u:pw@h/db"})
    text = repr(public_view(s)) + repr(s)
    assert "hunter2" not in text and ":pw@" not in text


def test_example_config_documents_every_key_with_its_default() -> None:
    import dataclasses
    import tomllib

    from mirror.config.settings import SECTIONS, Settings

    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    data = tomllib.loads(example.read_text())
    defaults = Settings()
    for section, cls in SECTIONS.items():
        documented = set(data.get(section, {}))
        assert documented == {f.name for f in dataclasses.fields(cls)}, section
    assert load_settings(example, env={}) == defaults
