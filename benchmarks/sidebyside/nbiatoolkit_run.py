"""Contender: nbiatoolkit, TCIA's other Python client, mirroring one collection.

    VENV_PYTHON nbiatoolkit_run.py BASE_URL COLLECTION OUT_DIR

Runs in its own venv (its pins: pydicom<3, pandas<3, pyarrow<16, cryptography<43 would
downgrade the project's). ``NBIAClient().getSeries(Collection=...)`` then
``downloadSeries(uids, downloadDir=OUT_DIR)`` with its defaults: NBIA v2 endpoints with a
guest Bearer token, ``v2/getImageWithMD5Hash``, each ZIP whole in memory, extracted to a
temporary directory, MD5s checked, files moved to paths built from their DICOM headers,
``nParallel=1`` worker process. One change: ``filePattern`` names ``%PatientID`` where
the default names ``%PatientName``. The simulator's PatientName is empty, and the default
pattern then starts with "/" and ``os.path.join`` writes the series to the filesystem
root; on TCIA's data PatientName carries the patient ID, so the paths are the same.

Its hosts are hard-coded: an Enum of the two public hosts, and a logout that GETs the
public services host. So, in this order:

1. before nbiatoolkit is imported, every connection to anything but 127.0.0.1 raises
   :class:`OffMachine` (``socket.getaddrinfo`` and ``socket.socket.connect`` wrapped;
   the pool's forked worker inherits it): a benchmark never reaches the real TCIA;
2. the client's ``base_url`` (its setter for NLST) and its OAuth2 client's ``base_url``
   point at the simulator;
3. ``logout`` does nothing.

BASE_URL must be on 127.0.0.1; any NBIA URL of the simulator works (``…/services/v4``).
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from types import SimpleNamespace
from typing import Any

ALLOWED = "127.0.0.1"
PATTERN = "%PatientID/%Modality-%SeriesNumber-%SeriesInstanceUID/%InstanceNumber.dcm"


class OffMachine(RuntimeError):
    """A connection to somewhere other than 127.0.0.1 (not an OSError: nothing retries it)."""


def install_guard() -> None:
    """From now on, this process (and its forks) connects to 127.0.0.1 only."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name != ALLOWED:
            raise OffMachine(f"refused to resolve {name!r}: only {ALLOWED} is allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] != ALLOWED:
            raise OffMachine(f"refused to connect to {address!r}: only {ALLOWED} is allowed")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    # patched on the class, so sockets made from any reference to it are guarded
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


def services_root(base_url: str) -> str:
    """``http://127.0.0.1:PORT/nbia-api/services/`` from any simulator NBIA URL."""
    m = re.fullmatch(r"(http://([^/:]+)(:\d+)?/nbia-api/services/)(v\d+/?)?", base_url)
    if not m:
        raise SystemExit(f"nbiatoolkit_run: {base_url!r} is not an NBIA services URL")
    if m[2] != ALLOWED:
        raise SystemExit(f"nbiatoolkit_run: refusing {base_url!r}: only {ALLOWED} is allowed")
    return m[1]


def point_at(root: str) -> Any:
    """A client whose every URL is under *root*, with a logout that does nothing."""
    from nbiatoolkit import NBIAClient
    from nbiatoolkit.auth import OAuth2

    OAuth2.logout = lambda self: None  # it GETs services.cancerimagingarchive.net
    client = NBIAClient()
    # downloadSingleSeries reads base_url.value; the pool pickles it by value
    client.base_url = SimpleNamespace(value=root)
    client.OAuth_client.base_url = root  # the token: root + "oauth/token"
    return client


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("collection")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    root = services_root(args.base_url)
    install_guard()
    with point_at(root) as client:
        series = client.getSeries(Collection=args.collection)
        uids = [row["SeriesInstanceUID"] for row in series]
        if not uids:
            print("nbiatoolkit: empty getSeries listing", file=sys.stderr)
            return 1
        if not client.downloadSeries(uids, downloadDir=args.out_dir, filePattern=PATTERN):
            print("nbiatoolkit: downloadSeries reported a failed worker", file=sys.stderr)
            return 1
    print(f"nbiatoolkit: asked for {len(uids)} series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
