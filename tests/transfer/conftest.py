"""Real DICOM series made with pydicom, zipped the way the TCIA server zips them."""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from mirror.transfer import ExpectedSeries

UID_ROOT = "1.2.826.0.1.3680043.8.498"
LICENSE_TEXT = ("License Information. The TEST collection is distributed under the CC BY 4.0 "
                "at https://creativecommons.org/licenses/by/4.0/ By downloading the data, "
                "you agree to abide by terms of this license.")


def dicom_bytes(sop_uid: str, series_uid: str, study_uid: str, *, pixels: int = 2048,
                seed: int = 0, patient_id: str = "TEST-0001") -> bytes:
    """A small but real CT Part 10 file with *pixels* bytes of 12-bit pixel data
    (pixels=0: no PixelData element, for a caller that appends its own)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientID, ds.Modality, ds.InstanceNumber = patient_id, "CT", seed + 1
    columns = max(min(pixels // 2, 512), 1)
    ds.Rows, ds.Columns = max(pixels // 2 // columns, 1), columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if pixels:
        rng = np.random.default_rng(seed)  # 12-bit noise: compresses a little, like real CT
        ds.PixelData = rng.integers(0, 4096, ds.Rows * columns, dtype=np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@dataclass
class Series:
    study_uid: str
    series_uid: str
    instances: list[tuple[str, bytes]]  # (SOPInstanceUID, file bytes)

    @property
    def file_size(self) -> int:
        return sum(len(b) for _, b in self.instances)

    def by_sop(self) -> dict[str, bytes]:
        return dict(self.instances)

    def expected(self, **overrides: object) -> ExpectedSeries:
        fields: dict[str, object] = {
            "series_uid": self.series_uid, "study_uid": self.study_uid,
            "image_count": len(self.instances), "file_size": self.file_size,
            "md5_source": False}
        fields.update(overrides)
        return ExpectedSeries(**fields)  # type: ignore[arg-type]

    def entries(self, *, naming: str = "counter", license: bool = True,
                md5: bool = False) -> list[tuple[str, bytes]]:
        """Entries like getImage (LICENSE first) or getImageWithMD5Hash (csv last)."""
        names = [f"{i + 1:08d}.dcm" if naming == "counter" else f"1-{i + 1:03d}.dcm"
                 for i in range(len(self.instances))]
        entries = [(n, data) for n, (_, data) in zip(names, self.instances, strict=True)]
        if license:
            entries.insert(0, ("LICENSE", LICENSE_TEXT.encode()))
        if md5:
            entries.append(("md5hashes.csv", md5_csv(entries)))
        return entries


def md5_csv(entries: list[tuple[str, bytes]]) -> bytes:
    rows = [f"{n},{hashlib.md5(d).hexdigest()}" for n, d in reversed(entries)
            if n not in ("LICENSE", "md5hashes.csv")]  # server order is HashMap order
    return ("Filename,MD5Hash\n" + "\n".join(rows) + "\n").encode()


class _Unseekable:
    """Makes zipfile write data descriptors, as Java's streaming ZipOutputStream does."""

    def __init__(self, f: io.BufferedWriter) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def write_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], *,
              method: int = zipfile.ZIP_DEFLATED, streamed: bool = True) -> Path:
    with open(path, "wb") as raw, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        target = _Unseekable(raw) if streamed else raw
        with zipfile.ZipFile(target, "w", compression=method) as zf:  # type: ignore[arg-type]
            for name, data in entries:
                zf.writestr(name, data, compress_type=method)
    return path


@pytest.fixture
def make_series() -> Callable[..., Series]:
    counter = iter(range(1, 1_000_000))

    def make(n: int = 3, *, pixels: int = 2048, study_uid: str | None = None) -> Series:
        k = next(counter)
        study = study_uid or f"{UID_ROOT}.1.{k}"
        series = f"{UID_ROOT}.2.{k}"
        instances = []
        for i in range(n):
            sop = f"{UID_ROOT}.3.{k}.{i + 1}"
            instances.append((sop, dicom_bytes(sop, series, study, pixels=pixels, seed=i)))
        return Series(study, series, instances)

    return make


@pytest.fixture
def zip_of(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1_000_000))

    def build(entries: list[tuple[str | zipfile.ZipInfo, bytes]], **kwargs: object) -> Path:
        return write_zip(tmp_path / f"series-{next(counter)}.zip", entries, **kwargs)  # type: ignore[arg-type]

    return build
