"""Series ZIPs as getImage serves them: entry names and order, variants, and an on-disk cache.

Each (series version, variant) is built once, in a worker thread, under
``<data>/zips/`` and then streamed from disk; fault variants (early close, hostile entries)
are separate cache files, so a cached ZIP is never altered.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mirror.errors import StorageError
from mirror.simulator.blobs import BlobStore
from mirror.simulator.model import CollectionInfo, Instance, Series, digest
from mirror.simulator.zipwriter import ZipWriter, deflate

LICENSE_TEXT = ("License Information. The {0} collection is distributed under the {1} at {2} "
                "By downloading the data, you agree to abide by terms of this license.")
HOSTILE_KINDS = ("dotdot", "absolute", "duplicate", "bomb")


@dataclass(frozen=True)
class ZipVariant:
    new_names: bool = False  #: "1-001.dcm" (NewFileNames=Yes) instead of "00000001.dcm"
    license: bool = True
    md5: bool = False  #: trailing md5hashes.csv
    limit: int | None = None  #: early close: only the first N DICOM entries, no md5 file
    hostile: str | None = None
    bomb_size: int = 1 << 30
    #: (SOP UID, stored MD5) where the server stores something else than the digest.
    stored: tuple[tuple[str, str | None], ...] = ()

    @property
    def tag(self) -> str:
        return digest(self.new_names, self.license, self.md5, self.limit, self.hostile,
                      self.bomb_size, self.stored)[:16]


def seq_order(s: Series) -> list[Instance]:
    """NBIA's default names follow database order, which is not InstanceNumber order."""
    return sorted(s.instances, key=lambda i: hashlib.md5(i.sop_uid.encode()).digest())


def new_file_names(s: Series) -> list[tuple[str, Instance]]:
    """``<acq>-<inst>.dcm`` exactly as NBIA's ImageDAO2Impl.setNewFileNames computes them."""
    images = sorted(s.instances, key=lambda i: i.instance_number)
    if not images:
        return []
    acq_changes = sum(a.acquisition_number != b.acquisition_number
                      for a, b in itertools.pairwise(images))
    ins_changes = sum(a.instance_number != b.instance_number
                      for a, b in itertools.pairwise(images))
    acq_pad, ins_pad = len(str(acq_changes + 1)), len(str(ins_changes + 1))
    out, acq, acq_count, ins_count = [], images[0].acquisition_number, 1, 0
    for image in images:
        if image.acquisition_number != acq:
            acq, acq_count, ins_count = image.acquisition_number, acq_count + 1, 1
        else:
            ins_count += 1
        out.append((f"{acq_count:0{acq_pad}d}-{ins_count:0{ins_pad}d}.dcm", image))
    return out


def dicom_entries(s: Series, variant: ZipVariant) -> list[tuple[str, Instance]]:
    if variant.new_names:
        return new_file_names(s)
    return [(f"{n:08d}.dcm", inst) for n, inst in enumerate(seq_order(s), start=1)]


def md5_csv(entries: list[tuple[str, Instance]],
            stored: tuple[tuple[str, str | None], ...] = ()) -> bytes:
    """``Filename,MD5Hash`` rows with each digest as stored (a NULL is an empty field)."""
    # The server fills a HashMap: rows come in hash order, not name order.
    rows = sorted(entries, key=lambda e: hashlib.sha1(e[0].encode()).digest())
    values = dict(stored)
    return ("Filename,MD5Hash\n" + "".join(
        f"{n},{values.get(i.sop_uid, i.md5) or ''}\n" for n, i in rows)).encode()


def license_text(coll: CollectionInfo) -> bytes:
    return LICENSE_TEXT.format(coll.name, coll.license_name, coll.license_uri).encode()


def build(path: Path, store: BlobStore, s: Series, coll: CollectionInfo,
          variant: ZipVariant) -> None:
    """Write the ZIP of *s* to *path* atomically."""
    entries = dicom_entries(s, variant)
    shown = entries if variant.limit is None else entries[: variant.limit]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(variant)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            zw = ZipWriter(f, s.timestamp)
            if variant.license:
                zw.add_bytes("LICENSE", license_text(coll))
            for k, (name, crc, size, data) in enumerate(_compressed(store, shown)):
                zw.add_compressed(name, data, crc, size)
                if k == 0 and variant.hostile:
                    _add_hostile(zw, variant, name, store, shown[0][1])
            if variant.md5 and variant.limit is None:
                zw.add_bytes("md5hashes.csv", md5_csv(entries, variant.stored))
            zw.close()
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot build simulator ZIP {path}: {exc}") from exc


def _compressed(store: BlobStore, entries: list[tuple[str, Instance]]
                ) -> Iterator[tuple[str, int, int, bytes]]:
    """Compress entries in threads (zlib releases the GIL), yielding them in order."""
    def work(entry: tuple[str, Instance]) -> tuple[str, int, int, bytes]:
        data = store.path(entry[1].blob).read_bytes()
        return entry[0], zlib.crc32(data), len(data), deflate(data)

    window = 2 * (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        pending = [pool.submit(work, e) for e in entries[:window]]
        for nxt in entries[window:] + [None] * window:  # type: ignore[list-item]
            if not pending:
                break
            yield pending.pop(0).result()
            if nxt is not None:
                pending.append(pool.submit(work, nxt))


def _add_hostile(zw: ZipWriter, variant: ZipVariant, first: str, store: BlobStore,
                 inst: Instance) -> None:
    data = store.path(inst.blob).read_bytes()
    if variant.hostile == "dotdot":
        zw.add_bytes("../../../../tmp/tcia-sim-escape.dcm", data, fast=True)
    elif variant.hostile == "absolute":
        zw.add_bytes("/tmp/tcia-sim-absolute.dcm", data, fast=True)
    elif variant.hostile == "duplicate":
        zw.add_bytes(first, data[: len(data) // 2], fast=True)
    elif variant.hostile == "bomb":
        chunk = bytes(1 << 20)
        zw.add_stream("bomb.dcm", (chunk[: min(len(chunk), variant.bomb_size - k)]
                                   for k in range(0, variant.bomb_size, len(chunk))))


class ZipCache:
    """Builds each ZIP once (per process: one build per key at a time) and hands out paths."""

    def __init__(self, data_dir: Path, store: BlobStore) -> None:
        self.root = data_dir / "zips"
        self.store = store
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, s: Series, variant: ZipVariant) -> Path:
        key = s.content_key
        return self.root / key[:2] / f"{key}-{variant.tag}.zip"

    async def get(self, s: Series, coll: CollectionInfo, variant: ZipVariant) -> Path:
        path = self.path(s, variant)
        if path.exists():
            return path
        lock = self._locks.setdefault(str(path), asyncio.Lock())
        async with lock:
            if not path.exists():
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, build, path, self.store, s, coll, variant)
        return path
