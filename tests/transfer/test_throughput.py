"""Throughput of extraction and of the download sink (printed with -s; times are not asserted)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.transfer import HashingFile, extract_series_zip
from tests.transfer.conftest import Series

ZipOf = Callable[..., Path]
KiB, MiB = 1024, 1 << 20


def test_extraction_throughput(make_series: Callable[..., Series], zip_of: ZipOf,
                               tmp_path: Path) -> None:
    series = make_series(100, pixels=256 * KiB)
    zip_path = zip_of(series.entries(md5=True))

    started = time.perf_counter()
    result = extract_series_zip(zip_path, tmp_path / "f",
                                expected=series.expected(md5_source=True))
    seconds = time.perf_counter() - started

    assert len(result.instances) == 100 and result.md5_checked
    assert result.total_bytes == series.file_size
    mb = result.total_bytes / 1e6
    print(f"\nextract 100 x 256 KiB: {mb:.1f} MB in {seconds:.3f} s = {mb / seconds:.0f} MB/s "
          f"(zip {zip_path.stat().st_size / 1e6:.1f} MB)")


@pytest.mark.parametrize("hashing", [True, False])
def test_sink_write_cost_per_256_kib_chunk(tmp_path: Path, hashing: bool) -> None:
    chunk = os.urandom(256 * KiB)
    n = 200
    with HashingFile(tmp_path / "dl.part", hashing=hashing) as sink:
        started = time.perf_counter()
        for _ in range(n):
            sink.write(chunk)
        seconds = time.perf_counter() - started
    assert sink.size == n * len(chunk)
    print(f"\nHashingFile(hashing={hashing}).write(256 KiB): {seconds / n * 1e3:.3f} ms per call "
          f"({n * len(chunk) / seconds / 1e6:.0f} MB/s)")
