"""The data directory: the base dataset is generated once and found again through a manifest.

``<data>/manifest-<spec>.json`` records size and MD5 of every base file; when it is there
and the files are too, a start costs a JSON read instead of writing DICOM.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

from mirror.errors import StorageError
from mirror.simulator.blobs import BlobStore
from mirror.simulator.catalog import Catalog, build_base
from mirror.simulator.dicomgen import materialize
from mirror.simulator.model import DatasetSpec, digest


def manifest_path(data_dir: Path, spec: DatasetSpec) -> Path:
    # Fields at their empty default stay out, so older specs keep their manifest names.
    items = [(k, v) for k, v in asdict(spec).items() if k != "collection_names" or v]
    return data_dir / f"manifest-{digest(*items)[:16]}.json"


def load_base(data_dir: Path, spec: DatasetSpec,
              store: BlobStore) -> tuple[Catalog, dict[str, tuple[int, str]]]:
    """The base catalog with sizes and MD5s, generating missing files first."""
    cat = build_base(spec)
    known = _read_manifest(manifest_path(data_dir, spec), store)
    if not all(i.blob in known for s in cat.series.values() for i in s.instances):
        known = {}
        done = materialize(cat, store, cat.series.values(), known)
        _write_manifest(manifest_path(data_dir, spec), spec, known)
    else:
        done = {uid: replace(s, instances=tuple(
            replace(i, size=known[i.blob][0], md5=known[i.blob][1]) for i in s.instances))
            for uid, s in cat.series.items()}
    return replace(cat, series=done), known


def _read_manifest(path: Path, store: BlobStore) -> dict[str, tuple[int, str]]:
    try:
        blobs = json.loads(path.read_text())["blobs"]
    except (OSError, ValueError, KeyError):
        return {}
    for key, (size, _md5) in blobs.items():
        try:
            if store.path(key).stat().st_size != size:
                return {}
        except OSError:
            return {}
    return {k: (v[0], v[1]) for k, v in blobs.items()}


def _write_manifest(path: Path, spec: DatasetSpec, known: dict[str, tuple[int, str]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"spec": asdict(spec), "blobs": known}))
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write simulator manifest {path}: {exc}") from exc
