"""Subset filters: config parsing (file and environment) and the pure matching table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mirror.config.settings import load_settings
from mirror.domain import RemoteSeries
from mirror.errors import ConfigError
from mirror.sync.filters import EVERYTHING, Scope, remember, remembered, scope_for, split


def series(uid: str, modality: str | None, body: str | None, patient: str) -> RemoteSeries:
    return RemoteSeries(series_uid=uid, study_uid="1", patient_id=patient, collection="C",
                        modality=modality, body_part=body)


def settings(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    return load_settings(cfg, env=env or {}).sync


def test_collection_table_overrides_sync_key_by_key(tmp_path: Path) -> None:
    sync = settings(tmp_path, '[sync]\nmodalities = ["CT", "mr"]\nbody_parts = ["CHEST"]\n'
                              '[sync.filters."lidc-idri"]\nmodalities = ["pt"]\n'
                              '[sync.filters."Other"]\nbody_parts = []\n')
    assert scope_for(sync, "LIDC-IDRI") == Scope(modalities=frozenset({"PT"}),
                                                 body_parts=frozenset({"CHEST"}))
    assert scope_for(sync, "Other") == Scope(modalities=frozenset({"CT", "MR"}))
    assert scope_for(sync, "Third") == Scope(modalities=frozenset({"CT", "MR"}),
                                             body_parts=frozenset({"CHEST"}))


def test_list_keys_come_from_the_environment_comma_separated(tmp_path: Path) -> None:
    sync = settings(tmp_path, "", env={"TCIA_MIRROR_SYNC_MODALITIES": "CT, MR",
                                       "TCIA_MIRROR_SYNC_BODY_PARTS": "chest"})
    assert scope_for(sync, "X") == Scope(modalities=frozenset({"CT", "MR"}),
                                         body_parts=frozenset({"CHEST"}))
    with pytest.raises(ConfigError, match=r"sync\.filters: cannot be set from the environment"):
        settings(tmp_path, "", env={"TCIA_MIRROR_SYNC_FILTERS": "x"})


@pytest.mark.parametrize(("text", "message"), [
    ('[sync.filters."A"]\nmodality = ["CT"]\n', 'unknown config key sync.filters."A".modality'),
    ('[sync.filters."A"]\nmodalities = [1]\n', "sync.filters.A.modalities: expected a list"),
    ('[sync.filters."A"]\nmodalities = {x = 1}\n', "sync.filters.A.modalities: expected a list"),
    ('[sync]\nfilters = 3\n', "sync.filters: must be a table"),
    ('[sync]\npatients = [1]\n', "sync.patients: expected a list of non-empty strings"),
])
def test_bad_filter_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings(tmp_path, text)


@pytest.mark.parametrize(("scope", "record", "kept"), [
    (EVERYTHING, series("1", None, None, "P"), True),
    (Scope(modalities=frozenset({"CT"})), series("1", "ct", None, "P"), True),
    (Scope(modalities=frozenset({"CT"})), series("1", "MR", None, "P"), False),
    (Scope(modalities=frozenset({"CT"})), series("1", None, None, "P"), False),
    (Scope(body_parts=frozenset({"CHEST"})), series("1", "CT", "Chest", "P"), True),
    (Scope(body_parts=frozenset({"CHEST"})), series("1", "CT", None, "P"), False),
    (Scope(patients=frozenset({"LIDC-0001"})), series("1", "CT", None, "lidc-0001"), True),
    (Scope(modalities=frozenset({"CT"}), patients=frozenset({"A"})),
     series("1", "CT", None, "B"), False),
])
def test_matching(scope: Scope, record: RemoteSeries, kept: bool) -> None:
    assert split([record], scope) == (([record], []) if kept else ([], [record]))


def test_scope_memory_writes_nothing_until_a_filter_is_used(tmp_path: Path) -> None:
    remember(tmp_path, "A", EVERYTHING)
    assert not any(tmp_path.iterdir())
    ct = Scope(modalities=frozenset({"CT"}))
    assert remembered(tmp_path, "A") == EVERYTHING.key() != ct.key()
    remember(tmp_path, "A", ct)
    assert remembered(tmp_path, "A") == ct.key()
    assert remembered(tmp_path, "B") == EVERYTHING.key()


def test_body_part_is_read_from_every_listing_spelling() -> None:
    from mirror.tcia.rows import to_series

    for key in ("BodyPartExamined", "Body Part Examined"):
        record = to_series({"SeriesInstanceUID": "1.2", key: "CHEST"})
        assert record is not None and record.body_part == "CHEST"
    assert to_series({"SeriesInstanceUID": "1.2"}).body_part is None
