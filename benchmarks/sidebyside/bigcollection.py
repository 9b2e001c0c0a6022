"""B5: first discovery of an NLST-sized collection (200,000 series), then a no-op sync of it.

Generating 200,000 series of DICOM with the simulator would take most of an hour, and
discovery never opens a file: a generated nbia-v4 ``getSeries`` listing (the
simulator's v4 field set and date format) is served by a tiny HTTP server on 127.0.0.1
that answers every other endpoint with ``[]`` (what an in-sync collection's New*
endpoints answer).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COLLECTION = "NLST-SIM"
UID = "1.3.6.1.4.1.14519.5.2.1.7009"


def listing(path: Path, series: int, *, seed: int = 5) -> Path:
    """The getSeries body of *series* series (~7.7 per patient, 3 studies each), once."""
    if path.exists():
        return path
    rng, day0 = random.Random(seed), date(2002, 8, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w") as out:
        out.write("[")
        for i in range(series):
            patient, study = i // 8, i // 3
            when = day0 + timedelta(days=study % 900)
            record = {
                "SeriesInstanceUID": f"{UID}.3.{i}", "StudyInstanceUID": f"{UID}.2.{study}",
                "Modality": "CT", "ProtocolName": "CHEST", "SeriesDate": when.strftime("%m-%d-%Y"),
                "SeriesDescription": f"{rng.choice(['0', '1', '2'])},OPA,GE,HSQX,STANDARD",
                "BodyPartExamined": "CHEST", "SeriesNumber": i % 9 + 1,
                "AnnotationsFlag": False, "Collection": COLLECTION, "Site": "NLST",
                "PatientID": f"{100000 + patient}", "PatientSex": "M", "PatientAge": "062Y",
                "AdmittingDiagnosisDescription": None, "Manufacturer": "GE MEDICAL SYSTEMS",
                "ManufacturerModelName": "LightSpeed QX/i", "SoftwareVersions": "LightSpeedverrel",
                "ImageCount": 105, "MaxSubmissionTimestamp": "03-15-2010",
                "LicenseName": "CC BY 4.0", "LicenseURI": "https://creativecommons.org/licenses/by/4.0/",
                "DataDescriptionURI": "https://doi.org/10.7937/TCIA.HMQ8-J677",
                "FileSize": 54_000_000 + i, "ReleasedStatus": "Released",
                "DateReleased": "03-15-2010", "StudyDesc": "NLST-LSS",
                "StudyDate": when.strftime("%m-%d-%Y"), "ThirdPartyAnalysis": "NO",
                "Authorized": 1}
            out.write(("," if i else "") + json.dumps(record))
        out.write("]")
    tmp.rename(path)
    return path


@contextmanager
def serve(body_path: Path) -> Iterator[str]:
    """The v4 base URL of a server answering getSeries with *body_path*, the rest ``[]``."""
    body = body_path.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            endpoint = self.path.split("?")[0].rsplit("/", 1)[-1]
            reply = body if endpoint == "getSeries" else b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/nbia-api/services/v4"
    finally:
        server.shutdown()
        server.server_close()
