"""The CPU a verifying mirror cannot avoid: inflate + MD5 + header read + write, per GB.

    python verify_limit.py BASE_URL COLLECTION OUT_DIR

Every series ZIP (getImageWithMD5Hash) is downloaded first, untimed; then each entry is
inflated with the inflater tcia-mirror uses (ISA-L where installed), MD5-hashed, its
three UIDs read (mirror.dicomuids) and written to a new file. Only that work is timed
(CPU seconds of this one thread), no catalog, no fsync, no network. Prints JSON:
``{"cpu_s": ..., "bytes": ..., "cpu_s_per_gb": ..., "inflater": ...}``.
"""

from __future__ import annotations

import hashlib
import io
import json
import resource
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from mirror.dicomuids import read_uids
from mirror.transfer.inflate import inflater, open_entry

CHUNK = 1 << 20


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=600) as resp:
        return resp.read()


def _thread_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime + r.ru_stime


def process(body: bytes, dest: Path) -> int:
    """The timed work for one series ZIP; DICOM bytes written."""
    total = 0
    dest.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        for n, info in enumerate(zf.infolist()):
            if not info.filename.endswith(".dcm"):
                continue
            digest, head = hashlib.md5(), b""
            with open_entry(zf, info, md5_checked=True) as src, \
                    open(dest / f"{n}.dcm", "xb", buffering=0) as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    head = head or chunk
                    total += len(chunk)
            digest.hexdigest()
            read_uids(head)
    return total


def main() -> int:
    base, collection, out = sys.argv[1].rstrip("/"), sys.argv[2], Path(sys.argv[3])
    listing = json.loads(_get(f"{base}/getSeries?Collection={urllib.parse.quote(collection)}"))
    cpu, written = 0.0, 0
    for k, series in enumerate(listing):
        uid = urllib.parse.quote(series["SeriesInstanceUID"])
        body = _get(f"{base}/getImageWithMD5Hash?SeriesInstanceUID={uid}")
        start = _thread_cpu()
        written += process(body, out / str(k))
        cpu += _thread_cpu() - start
    print(json.dumps({"cpu_s": cpu, "bytes": written, "cpu_s_per_gb": cpu / (written / 1e9),
                      "inflater": inflater()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
