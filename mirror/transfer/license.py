"""Each collection's license text, kept at ``<root>/<Collection>/LICENSE`` in the archive.

v4 getImage ZIPs start with a LICENSE entry; the text is written atomically (staged under
``<root>/.staging``, fsynced, renamed into place) and only when it changed, so every
series of a collection does not rewrite it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mirror.archive.layout import safe_component, staging_root
from mirror.errors import StorageError
from mirror.transfer.commit import write_atomic

log = logging.getLogger("mirror.transfer")
LICENSE_NAME = "LICENSE"


def license_path(root: Path, collection: str) -> Path:
    return Path(root) / safe_component(collection) / LICENSE_NAME


def store_license(root: Path, collection: str, text: str) -> Path | None:
    """Keep *text* as the collection's LICENSE; the path written, or None when unchanged.

    A directory already at that path (a patient called "LICENSE") is left alone.
    """
    path = license_path(root, collection)
    data = text.encode("utf-8")
    try:
        if path.is_dir():
            log.warning("not storing %s: a directory of that name exists", path)
            return None
        if path.is_file() and path.read_bytes() == data:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        # staged outside the archive's visible tree (same file system: the rename is atomic)
        write_atomic(path, data, tmp_dir=staging_root(root))
    except OSError as exc:
        raise StorageError(f"cannot store {path}: {exc}") from exc
    return path
