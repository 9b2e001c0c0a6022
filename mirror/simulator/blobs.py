"""Where the simulator's DICOM files live: content-keyed paths under ``<data>/blobs``.

Files are named by their content key and never rewritten, so several servers and several
releases can share one data directory. Writing them is :mod:`mirror.simulator.dicomgen`'s job.
"""

from __future__ import annotations

from pathlib import Path


class BlobStore:
    """Content-keyed DICOM files under ``<data>/blobs``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs"

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.dcm"
