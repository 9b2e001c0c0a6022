"""Table tests of the local MD5 hierarchy against the worked example in tcia-api-v4.md."""

from __future__ import annotations

import hashlib

import pytest

from mirror.merkle import combine, hexmd5, md5_equal, series_hash

EMPTY = "d41d8cd98f00b204e9800998ecf8427e"  # md5("")
A_ = "0cc175b9c0f1b6a831c399e269772661"  # md5("a")
B_ = "92eb5ffee6ae2fec3ad71c777531578f"  # md5("b")

SERIES_A = "dcb735a2965ccc1fd0893307fd61b78a"
SERIES_B = "dc0ae7e1387be9b795f5d6299e383759"
STUDY_AB = "851b85e1081e49929d3487d4de1bd827"
PATIENT = "d73b1e15c8b5096b88a1aab00883549f"
SERIES_NULL_A = "c80fae5a876fbe9592d2730b7f9eea36"


def test_hexmd5_is_32_lowercase_hex_of_ascii() -> None:
    assert hexmd5("") == EMPTY
    assert hexmd5("a") == A_
    assert hexmd5("b") == B_
    with pytest.raises(UnicodeEncodeError):
        hexmd5("é")


@pytest.mark.parametrize(("images", "expected"), [
    ([EMPTY, A_], SERIES_A),            # stored order does not matter ...
    ([A_, EMPTY], SERIES_A),            # ... the server sorts the strings
    ([B_], SERIES_B),                   # one image: the hash of its MD5, not the MD5
    ([None, EMPTY, A_], SERIES_NULL_A),  # a NULL digest is "null", sorted first
    ([EMPTY, None, A_], SERIES_NULL_A),
    ([], ""),                           # unknown series / no images
])
def test_series_hash_worked_example(images: list[str | None], expected: str) -> None:
    assert series_hash(images) == expected


def test_series_hash_uses_strings_as_stored() -> None:
    # A value stored without its leading zero is hashed as stored, not re-padded.
    short = A_.lstrip("0")
    assert series_hash([short]) == hexmd5(short) != series_hash([A_])
    assert series_hash(iter([EMPTY, A_])) == SERIES_A  # any iterable


@pytest.mark.parametrize(("children", "expected"), [
    ([SERIES_A, SERIES_B], STUDY_AB),   # B sorts before A
    ([SERIES_B, SERIES_A], STUDY_AB),
    ([SERIES_A, "", SERIES_B], STUDY_AB),  # an empty series adds nothing
    ([STUDY_AB], PATIENT),              # one child: hexmd5(child), never the child
    ([], ""),
    (["", ""], ""),
])
def test_combine_worked_example(children: list[str], expected: str) -> None:
    assert combine(children) == expected


def test_worked_example_end_to_end() -> None:
    study = combine([series_hash([EMPTY, A_]), series_hash([B_])])
    assert combine([study]) == PATIENT
    assert hashlib.md5((SERIES_B + SERIES_A).encode()).hexdigest() == STUDY_AB


@pytest.mark.parametrize(("a", "b", "equal"), [
    (A_, A_, True),
    (A_, A_.lstrip("0"), True),         # stored without leading zeros
    (A_.upper(), A_, True),             # case-insensitive
    (" " + A_ + " ", A_, True),         # CTP-style padding around a stored value
    ("0" * 32, "0", True),
    (A_, B_, False),
    ("", "", False),                    # unknown never proves equality
    (" ", " ", False),
    (None, None, False),
    (None, A_, False),
    (A_, "", False),
    ("0x" + A_[2:], A_, False),         # not plain hex
    ("1_f", "1f", False),
    ("-1f", "1f", False),
    ("0" + A_, A_, False),              # 33 digits is no MD5
    ("zz", "zz", False),
])
def test_md5_equal_compares_numbers(a: str | None, b: str | None, equal: bool) -> None:
    assert md5_equal(a, b) is equal
    assert md5_equal(b, a) is equal
