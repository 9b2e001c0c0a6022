"""Write the DICOM files of the dataset: a pydicom header per instance plus raw pixel bytes.

Files are content-keyed (``blobs/ab/<key>.dcm``) and never rewritten, so several servers
and several releases can share one data directory. Pixel data are 12-bit CT-like values
whose high byte varies slowly and low byte is random: DEFLATE squeezes them about 2:1.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from mirror.errors import StorageError
from mirror.simulator.blobs import BlobStore
from mirror.simulator.catalog import Catalog
from mirror.simulator.model import UID_ROOT, CollectionInfo, Instance, Patient, Series, Study

_SOP_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
_IMPLEMENTATION_UID = UID_ROOT + "0.1"


def materialize(catalog: Catalog, store: BlobStore, series: Iterable[Series],
                known: dict[str, tuple[int, str]]) -> dict[str, Series]:
    """Write the files of *series* that are missing; return the series with sizes and MD5s."""
    jobs = [(s, *catalog.context(s)) for s in series]
    size = catalog.spec.instance_size
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        done = list(pool.map(lambda job: _materialize_series(store, known, size, *job), jobs))
    return {s.series_uid: s for s in done}


def _materialize_series(store: BlobStore, known: dict[str, tuple[int, str]], pixel_bytes: int,
                        s: Series, coll: CollectionInfo, patient: Patient, study: Study) -> Series:
    out = []
    template: SeriesTemplate | None = None
    for inst in s.instances:
        if inst.blob in known:
            size, md5 = known[inst.blob]
        elif store.path(inst.blob).exists():
            size, md5 = _hash_file(store.path(inst.blob))
        else:
            template = template or SeriesTemplate(coll, patient, study, s, pixel_bytes)
            data = template.instance_bytes(inst)
            size, md5 = len(data), hashlib.md5(data).hexdigest()
            _write_atomic(store.path(inst.blob), data)
        known[inst.blob] = (size, md5)
        out.append(replace(inst, size=size, md5=md5))
    return replace(s, instances=tuple(out))


def _hash_file(path: Path) -> tuple[int, str]:
    h = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return path.stat().st_size, h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write simulator file {path}: {exc}") from exc


class SeriesTemplate:
    """One pydicom-made header per series; instances patch fixed-width placeholders in it.

    Calling pydicom per instance costs more than the pixels themselves, so the header is
    built once with sentinel values of the same encoded length as the real ones.
    """

    def __init__(self, coll: CollectionInfo, patient: Patient, study: Study, s: Series,
                 pixel_bytes: int) -> None:
        self.rows, self.cols = _shape(pixel_bytes)
        probe = Instance(sop_uid=_SOP_SENTINEL, instance_number=_NUM_SENTINEL,
                         acquisition_number=_ACQ_SENTINEL, blob="")
        self.header = _header(coll, patient, study, s, probe, self.rows, self.cols)
        for sentinel in (_SOP_SENTINEL, str(_NUM_SENTINEL), str(_ACQ_SENTINEL), _POS_SENTINEL):
            if sentinel.encode() not in self.header:  # pragma: no cover - pydicom changed
                raise StorageError(f"DICOM template lost its placeholder {sentinel}")
        self.high = (np.arange(self.rows * self.cols, dtype=np.uint32)
                     // self.cols * 4 // self.rows).astype(np.uint8)

    def instance_bytes(self, inst: Instance) -> bytes:
        header = (self.header.replace(_SOP_SENTINEL.encode(), inst.sop_uid.encode())
                  .replace(str(_NUM_SENTINEL).encode(), f"{inst.instance_number:<6d}".encode())
                  .replace(str(_ACQ_SENTINEL).encode(), f"{inst.acquisition_number:<6d}".encode())
                  .replace(_POS_SENTINEL.encode(), _position(inst.instance_number).encode()))
        pixels = self._pixels(int(inst.blob[:16], 16))
        element = b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", len(pixels))
        return header + element + pixels

    def _pixels(self, seed: int) -> bytes:
        # 12-bit values: the top bits follow the row (smooth), 6 low bits are noise.
        n = self.rows * self.cols
        noise = np.frombuffer(np.random.default_rng(seed).bytes(n), dtype=np.uint8)
        out = np.empty(2 * n, dtype=np.uint8)
        out[0::2] = (noise & 0x3F) | (self.high << 6)
        out[1::2] = self.high
        return out.tobytes()


# Same lengths as the real values: every derived UID is 63 characters long.
_SOP_SENTINEL = "9" * 63
_NUM_SENTINEL = 987654
_ACQ_SENTINEL = 876543
_POS_SENTINEL = "-76543.21"


def _position(number: int) -> str:
    return f"{-2.5 * number:9.2f}"


def _shape(pixel_bytes: int) -> tuple[int, int]:
    n = max(64, pixel_bytes // 2)
    cols = min(512, max(8, math.isqrt(n)))
    return max(1, n // cols), cols


def _header(coll: CollectionInfo, patient: Patient, study: Study, s: Series, inst: Instance,
            rows: int, cols: int) -> bytes:
    sop_class = _SOP_CLASS.get(s.modality, _SOP_CLASS["CT"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = inst.sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    _identity_module(ds, coll, patient, study, s)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = inst.sop_uid
    ds.AcquisitionNumber = str(inst.acquisition_number)
    ds.InstanceNumber = str(inst.instance_number)
    ds.ImagePositionPatient = ["0", "0", _POS_SENTINEL]
    ds.SliceLocation = _POS_SENTINEL
    _pixel_module(ds, rows, cols)
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _identity_module(ds: Dataset, coll: CollectionInfo, patient: Patient, study: Study,
                     s: Series) -> None:
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = study.study_date.strftime("%Y%m%d")
    ds.SeriesDate = s.series_date.strftime("%Y%m%d")
    ds.Modality = s.modality
    ds.Manufacturer = s.manufacturer
    ds.ManufacturerModelName = s.model
    if s.description is not None:
        ds.SeriesDescription = s.description
    if study.description is not None:
        ds.StudyDescription = study.description
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientSex = patient.sex
    ds.PatientAge = study.patient_age
    if s.body_part is not None:
        ds.BodyPartExamined = s.body_part
    ds.ClinicalTrialProtocolName = coll.name
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = s.series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = s.series_number
def _pixel_module(ds: Dataset, rows: int, cols: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [0.7, 0.7]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
