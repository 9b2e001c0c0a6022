"""A scripted, hostile NBIA v4 server on 127.0.0.1, and the checks every hostile test makes.

:class:`HostileServer` answers getSeries, getSOPInstanceUIDs, getImage(WithMD5Hash),
getSingleImage and getMD5HashForImage from :class:`FakeSeries` values whose listing row,
ZIP or SOP list a test may replace with anything; every other endpoint answers ``[]``.
Run the real CLI against it with :func:`mirror_for` (tests/e2e/harness.py), then assert
with :func:`files_outside` and :func:`partial_files`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import resource
import subprocess
import sys
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.e2e.harness import Mirror, clean_env, write_mirror
from tests.transfer.conftest import dicom_bytes as transfer_dicom_bytes

UID_ROOT = "1.2.826.0.1.3680043.8.498.77"
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")  # (not mirror's own: this must run against any version)
V4 = "/nbia-api/services/v4"
#: (request) -> response: a test's own answer for one endpoint; None: the default answer.
Handler = Callable[[web.Request], web.StreamResponse | None]


def dicom_bytes(sop_uid: str, series_uid: str, study_uid: str, *, pixels: int = 512) -> bytes:
    """A small but real CT Part 10 file (pixels=0: no PixelData; a caller appends its own)."""
    return transfer_dicom_bytes(sop_uid, series_uid, study_uid, pixels=pixels,
                                patient_id="HOSTILE")


def bomb_zip(series: FakeSeries, zero_bytes: list[int], *,
             method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP of valid DICOM files of *series* whose pixel data are *zero_bytes* zeros each:
    tiny on the wire, huge inflated. Streamed, so the test never holds the inflated bytes."""
    out = io.BytesIO()
    chunk = bytes(1 << 20)
    template = f"{series.series_uid}.{100000}"
    first = dicom_bytes(template, series.series_uid, series.study_uid, pixels=0)
    with zipfile.ZipFile(out, "w", compression=method) as zf:
        for i, size in enumerate(zero_bytes):
            sop = f"{series.series_uid}.{100000 + i}"  # same length: the header stays valid
            head = first.replace(template.encode(), sop.encode())
            with zf.open(f"1-{i + 1:05d}.dcm", "w", force_zip64=size > 1 << 30) as f:
                f.write(head + b"\xe0\x7f\x10\x00OB\x00\x00" + size.to_bytes(4, "little"))
                for start in range(0, size, len(chunk)):
                    f.write(chunk[:min(len(chunk), size - start)])
    return out.getvalue()


def zip_of(entries: list[tuple[str, bytes]], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return out.getvalue()


@dataclass
class FakeSeries:
    """One series as the hostile server publishes it; ``row`` overrides listing fields
    (a value of None drops the key), ``zip_body``/``sop_answer`` replace those answers."""

    collection: str
    patient_id: str
    study_uid: str
    series_uid: str
    instances: list[tuple[str, bytes]]
    row: dict[str, Any] = field(default_factory=dict)
    zip_body: bytes | None = None
    sop_answer: list[Any] | None = None

    @classmethod
    def make(cls, k: int, *, collection: str = "HOSTILE", patient_id: str | None = None,
             n: int = 3, **kwargs: Any) -> FakeSeries:
        study, series = f"{UID_ROOT}.1.{k}", f"{UID_ROOT}.2.{k}"
        sops = [f"{UID_ROOT}.3.{k}.{i}" for i in range(1, n + 1)]
        return cls(collection, patient_id or f"P-{k}", study, series,
                   [(s, dicom_bytes(s, series, study)) for s in sops], **kwargs)

    def listing_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "SeriesInstanceUID": self.series_uid, "StudyInstanceUID": self.study_uid,
            "Modality": "CT", "Collection": self.collection, "PatientID": self.patient_id,
            "SeriesDescription": "hostile test", "SeriesNumber": 1,
            "ImageCount": len(self.instances), "FileSize": sum(len(b) for _, b in self.instances),
            "DateReleased": "01-02-2020", "MaxSubmissionTimestamp": "01-02-2020"}
        row.update(self.row)
        return {k: v for k, v in row.items() if v is not None}

    def zip(self, *, md5: bool) -> bytes:
        if self.zip_body is not None:
            return self.zip_body
        entries = [(f"1-{i + 1:03d}.dcm", data) for i, (_, data) in enumerate(self.instances)]
        entries.insert(0, ("LICENSE", b"CC BY 4.0"))
        if md5:
            csv = "Filename,MD5Hash\n" + "".join(
                f"{n},{hashlib.md5(d).hexdigest()}\n" for n, d in entries if n != "LICENSE")
            entries.append(("md5hashes.csv", csv.encode()))
        return zip_of(entries)


class HostileServer:
    """The scripted server; mutate ``series``, ``extra_rows`` or ``handlers`` between runs."""

    def __init__(self) -> None:
        self.series: list[FakeSeries] = []
        self.extra_rows: list[Any] = []  #: raw listing rows served after the series' rows
        self.handlers: dict[str, Handler] = {}
        self.single_image: Callable[[str, str], bytes | None] | None = None
        self.requests: Counter[str] = Counter()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{V4}"

    def by_uid(self, series_uid: str) -> FakeSeries | None:
        return next((s for s in self.series if s.series_uid == series_uid), None)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.match_info["endpoint"]
        self.requests[endpoint] += 1
        if endpoint in self.handlers and (answer := self.handlers[endpoint](request)):
            return answer
        q = request.query
        if endpoint == "getSeries":
            return web.json_response(self._rows(q))
        series = self.by_uid(q.get("SeriesInstanceUID", ""))
        if endpoint in ("getImage", "getImageWithMD5Hash") and series:
            # v4 getImage carries md5hashes.csv when asked with IncludeMD5=Yes, as the
            # real server does; getImageWithMD5Hash always does
            md5 = (endpoint == "getImageWithMD5Hash"
                   or q.get("IncludeMD5", "").lower() == "yes")
            return web.Response(body=series.zip(md5=md5),
                                content_type="application/zip")
        if endpoint == "getSOPInstanceUIDs" and series:
            answer = series.sop_answer or [s for s, _ in series.instances]
            return web.json_response([{"SOPInstanceUID": s} for s in answer])
        if endpoint == "getSingleImage":
            return self._single(q.get("SeriesInstanceUID", ""), q.get("SOPInstanceUID", ""))
        if endpoint == "getMD5HashForImage":
            return web.Response(text="", content_type="text/plain")
        if endpoint == "getCollectionValues":
            names = sorted({s.collection for s in self.series})
            return web.json_response([{"Collection": n} for n in names])
        return web.json_response([])

    def _rows(self, q: Any) -> list[Any]:
        wanted = {k: q[k] for k in _FILTERS if k in q}
        rows = [s.listing_row() for s in self.series
                if all(_matches(s, k, v) for k, v in wanted.items())]
        return rows + (self.extra_rows if "Collection" in q else [])

    def _single(self, series_uid: str, sop: str) -> web.Response:
        data = self.single_image(series_uid, sop) if self.single_image else None
        if data is None:
            series = self.by_uid(series_uid)
            data = dict(series.instances).get(sop) if series else None
        if data is None:
            return web.Response(status=400, text="not found")
        return web.Response(body=data, content_type="application/dicom")


_FILTERS = {"Collection": "collection", "StudyInstanceUID": "study_uid",
            "PatientID": "patient_id", "SeriesInstanceUID": "series_uid"}


def _matches(series: FakeSeries, key: str, value: str) -> bool:
    have = str(getattr(series, _FILTERS[key]))
    return have.casefold() == value.casefold() if key == "Collection" else have == value


@contextmanager
def serve(server: HostileServer) -> Iterator[HostileServer]:
    """Run *server* on 127.0.0.1 (a free port) in its own thread until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", V4 + "/{endpoint}", server.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        state["runner"] = loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(state["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="hostile-server", daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the hostile server did not start")
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


def mirror_for(tmp: Path, server: HostileServer, *, collections: list[str] | None = None,
               layout: str = "uid", verify: str = "md5", extra: str = "") -> Mirror:
    """A mirror configured against *server*, its archive under ``tmp/box/archive``.

    Everything the CLI may legitimately write lives under ``tmp/box`` (config, catalog,
    archive), so :func:`files_outside` can name every other file as an escape.
    """
    box = tmp / "box"
    box.mkdir(exist_ok=True)
    return write_mirror(box, base_url=server.base_url, api="nbia-v4",
                        collections=collections or ["HOSTILE"],
                        catalog_url=f"sqlite+aiosqlite:///{box / 'catalog.db'}",
                        workers=2, verify=verify, layout=layout, extra=extra)


def run_limited(mirror: Mirror, *args: str, max_file_bytes: int,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI with RLIMIT_FSIZE: no file it writes may grow past *max_file_bytes*
    (a write beyond fails with EFBIG), so a bomb cannot fill the test machine's disk."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "mirror", *args, "--config", str(mirror.config)],
        capture_output=True, text=True, timeout=timeout, cwd=mirror.config.parent,
        env=clean_env(), preexec_fn=limit)  # setrlimit only: safe before exec


def snapshot_files(top: Path) -> set[Path]:
    return {p for p in top.rglob("*") if p.is_file() or p.is_symlink()}


def files_outside(mirror: Mirror, before: set[Path], scan: Path) -> list[Path]:
    """Files under *scan* (the test's tmp dir, and the temp roots above the archive) that
    appeared during the run and are not the mirror's own config, catalog or archive."""
    box = mirror.config.parent
    allowed = {mirror.config, box / "catalog.db", box / "catalog.db-journal",
               box / "catalog.db-wal", box / "catalog.db-shm"}
    return sorted(p for p in snapshot_files(scan) - before
                  if p not in allowed and not p.is_relative_to(mirror.root))


def partial_files(root: Path) -> list[Path]:
    """Files at final paths (outside .staging) that are not complete ``<UID>.dcm`` files.

    The mirror's own per-collection files (``LICENSE``, ``metadata.csv``, written whole
    through staging and a rename) and its state folder ``.tcia-mirror`` are not instances.
    """
    bad = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0] in (".staging", ".tcia-mirror"):
            continue
        if len(rel.parts) == 2 and rel.name in ("LICENSE", "metadata.csv"):
            continue
        uid = path.name.removesuffix(".dcm")
        if (not path.name.endswith(".dcm") or len(uid) > 64 or not _UID.fullmatch(uid)
                or path.read_bytes()[128:132] != b"DICM"):
            bad.append(path)
    return sorted(bad)


def stored_sops(root: Path) -> set[str]:
    return {p.name.removesuffix(".dcm") for p in root.rglob("*.dcm")
            if ".staging" not in p.parts}
