"""Each collection's license text in the archive: ``<root>/<Collection>/LICENSE``.

getImage with IncludeMD5 (NBIA v4) sends the collection's license as the ZIP's first
entry. The newest text received is kept beside the collection's patients, written
atomically (staging file, then rename) and only when it changed.
"""

from __future__ import annotations

import os
from pathlib import Path

from mirror import layout, logs
from mirror.errors import StorageError

NAME = "LICENSE"


def license_path(root: Path, collection: str) -> Path:
    return Path(root) / layout.safe_component(collection) / NAME


def keep_license(root: Path, collection: str, text: str | None, staging: Path) -> bool:
    """Store *text* as the collection's LICENSE if it differs; True when written.

    A patient whose ID is literally "LICENSE" owns that name: then nothing is written.
    """
    if not text or not text.strip():
        return False
    target = license_path(root, collection)
    if not layout.is_inside(Path(root), target):
        raise StorageError(f"refusing a path outside the archive root: {target}")
    data = text.encode("utf-8")
    try:
        if target.is_dir():
            logs.get().warning("license not stored: a patient directory has its name",
                               collection=collection, path=str(target))
            return False
        if target.is_file() and target.read_bytes() == data:
            return False
        tmp = staging / f"{NAME}.part"
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        raise StorageError(f"cannot store {target}: {exc.strerror}") from exc
    return True
