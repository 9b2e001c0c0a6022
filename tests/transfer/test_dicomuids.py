"""The fast UID reader agrees with pydicom, or leaves the file to it; hostile bytes never raise."""

from __future__ import annotations

import io
import random

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
)

from mirror.archive.verify import dicom_uids_in
from mirror.dicomuids import read_sop_class, read_uids
from mirror.errors import VerificationError
from tests.transfer.conftest import dicom_bytes

SOP, SERIES, STUDY = "1.2.3.4.5.1", "1.2.3.4.5.2", "1.2.3.4.5.3"


def _file(syntax: str, *, nested: bool = False, undefined: bool = False,
          study: str | None = STUDY) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, SOP
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = CTImageStorage, SOP, SERIES
    if study:
        ds.StudyInstanceUID = study
    ds.PatientName, ds.Modality = "Doe^Jane", "CT"
    if nested:  # (0008,1140) sits between the SOP and the Study UID
        inner = Dataset()
        inner.ReferencedSOPClassUID, inner.ReferencedSOPInstanceUID = CTImageStorage, "9.9"
        inner.ReferencedImageSequence = Sequence([Dataset()])
        ds.ReferencedImageSequence = Sequence([inner, Dataset()])
        if undefined:
            ds.ReferencedImageSequence.is_undefined_length = True
            for item in ds.ReferencedImageSequence:
                item.is_undefined_length_sequence_item = True
    out = io.BytesIO()
    ds.save_as(out, implicit_vr=syntax == ImplicitVRLittleEndian,
               little_endian=syntax != ExplicitVRBigEndian, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    JPEG2000Lossless])
@pytest.mark.parametrize(("nested", "undefined"), [(False, False), (True, False),
                                                   (True, True)])
def test_reads_the_uids_pydicom_reads(syntax: str, nested: bool, undefined: bool) -> None:
    data = _file(syntax, nested=nested, undefined=undefined)
    assert read_uids(data) == (SOP, SERIES, STUDY)
    uids = dicom_uids_in(data, label="x")
    assert (uids.sop_uid, uids.series_uid, uids.study_uid) == (SOP, SERIES, STUDY)


def test_real_ct_file_with_pixels() -> None:
    assert read_uids(dicom_bytes(SOP, SERIES, STUDY)) == (SOP, SERIES, STUDY)


@pytest.mark.parametrize("data", [
    b"", b"\0" * 128 + b"DICX", dicom_bytes(SOP, SERIES, STUDY)[128:],  # no preamble
    _file(ExplicitVRBigEndian), _file(DeflatedExplicitVRLittleEndian),
    _file(ExplicitVRLittleEndian, study=None),  # a UID is absent
    _file(ExplicitVRLittleEndian)[:200],  # cut inside the header
])
def test_unusual_or_incomplete_headers_are_left_to_pydicom(data: bytes) -> None:
    assert read_uids(data) is None


def test_a_non_uid_value_is_left_to_pydicom() -> None:
    data = _file(ExplicitVRLittleEndian).replace(SERIES.encode(), b"1.2.x.4.5.2")
    assert read_uids(data) is None
    assert dicom_uids_in(data, label="x").series_uid == "1.2.x.4.5.2"  # pydicom decided


def test_not_dicom_still_fails_through_the_fallback() -> None:
    with pytest.raises(VerificationError):
        dicom_uids_in(b"\0" * 128 + b"DICM" + b"\xff" * 64, label="x")


def test_hostile_bytes_never_raise_and_never_invent_uids() -> None:
    rng = random.Random(7)
    bases = [_file(s, nested=True, undefined=u) for s in (ExplicitVRLittleEndian,
                                                         ImplicitVRLittleEndian)
             for u in (False, True)]
    for k in range(3000):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 8)):  # flip bytes, some inside lengths and tags
            data[rng.randrange(132, len(data))] = rng.randrange(256)
        if k % 5 == 0:
            del data[rng.randrange(132, len(data)):]
        got = read_uids(bytes(data))
        assert got is None or all(set(u) <= set("0123456789.") and u for u in got)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_reads_the_sop_class_pydicom_reads(syntax: str) -> None:
    assert read_sop_class(_file(syntax)) == CTImageStorage
    assert read_sop_class(dicom_bytes(SOP, SERIES, STUDY)) == "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize("data", [
    b"", _file(ExplicitVRBigEndian), _file(ExplicitVRLittleEndian)[:140],
    _file(ExplicitVRLittleEndian).replace(CTImageStorage.encode(), b"1.2.x.0008.5.1.4.1.1.2"),
])
def test_sop_class_left_undecided_when_unusual(data: bytes) -> None:
    assert read_sop_class(data) is None


def test_sop_class_absent_is_none() -> None:
    ds = pydicom.dcmread(io.BytesIO(_file(ExplicitVRLittleEndian)))
    del ds.SOPClassUID
    out = io.BytesIO()
    ds.save_as(out)  # as read: preamble and meta kept, no SOP Class UID
    assert read_sop_class(out.getvalue()) is None
    assert read_uids(out.getvalue()) == (SOP, SERIES, STUDY)
