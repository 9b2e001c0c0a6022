"""Drive podman + runc for the container tests: readiness, a debootstrap base image, the build.

The recipe is the one that works without a Docker engine (../shared/reference/containers.md):
runc instead of crun, lowered ulimits, host networking, a locally made Debian base.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BASE_IMAGE = "localhost/debian-base:bookworm"
IMAGE_TAG = "tcia-mirror:test"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: Flags every `podman run` needs here: crun refuses this kernel's hybrid cgroups, the
#: default ulimits exceed what the machine allows, and the image's health timer needs
#: systemd (absent), so health checks are run on demand instead.
RUN_FLAGS = ("--runtime", "runc", "--network=host", "--ulimit", "nofile=1024:1024",
             "--ulimit", "nproc=1000:1000", "--health-interval=disable")
BUILD_FLAGS = ("--format", "docker", "--runtime", "runc", "--network=host",
               "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000")


@dataclass(frozen=True)
class Built:
    """The image the tests run, and what it cost to get there (seconds)."""

    image_id: str
    base: str
    base_seconds: float | None
    build_seconds: float


def podman(*args: str, timeout: float = 120,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one podman command; on failure the error carries its output."""
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def unusable_reason() -> str | None:
    """Why podman cannot run containers here, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (bash .ci/setup installs it as root)"
    if shutil.which("runc") is None:
        return "runc is not installed (bash .ci/setup installs it as root)"
    try:
        proc = podman("--runtime", "runc", "info", timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`podman --runtime runc info` failed: {exc}"
    if proc.returncode != 0:
        return f"`podman --runtime runc info` failed: {proc.stderr.strip()[-400:]}"
    return None


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive URL from this machine's apt sources (not the security archive)."""
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list")),
             *sorted((apt_dir / "sources.list.d").glob("*.sources"))]
    for path in files:
        with contextlib.suppress(OSError):
            for url in _source_urls(path.read_text()):
                if url.rstrip("/").endswith("/debian"):
                    return url.rstrip("/")
    return DEFAULT_DEBIAN_MIRROR


def _source_urls(text: str) -> list[str]:
    """URLs in one-line (``deb URL suite``) or deb822 (``URIs: URL``) apt sources."""
    one_line = re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.MULTILINE)
    deb822 = [u for line in re.findall(r"^URIs:\s*(.+)$", text, re.MULTILINE)
              for u in line.split()]
    return one_line + deb822


def host_ca_bundle() -> str | None:
    """The CA bundle the host's pip trusts, so that pip inside the build trusts it too."""
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if os.environ.get(name) and Path(os.environ[name]).is_file():
            return os.environ[name]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                             capture_output=True, text=True, timeout=30).stdout
        for match in re.finditer(r"^\S*\.cert='([^']+)'$", out, re.MULTILINE):
            if Path(match.group(1)).is_file():
                return match.group(1)
    return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise base creation and builds between test sessions sharing this machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prepare_base(cache_dir: Path) -> tuple[str | None, float | None]:
    """The base image to build on, and the seconds spent making it (None: already there).

    ``localhost/debian-base:bookworm`` is made with debootstrap unless podman has it; the
    rootfs tarball stays in *cache_dir*, so a pruned podman store costs an import, not a
    debootstrap. Without debootstrap (or root) the base is None: the Dockerfile's default
    debian:bookworm-slim, pulled from a registry.
    """
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE, None
    if not can_debootstrap():
        return None, None
    started = time.monotonic()
    tarball = cache_dir / "debian-bookworm-minbase.tar"
    if not tarball.is_file():
        _debootstrap_tarball(cache_dir, tarball)
    podman("import", str(tarball), BASE_IMAGE, timeout=300)
    return BASE_IMAGE, time.monotonic() - started


def _debootstrap_tarball(cache_dir: Path, tarball: Path) -> None:
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _check(["debootstrap", "--variant=minbase", "bookworm", str(rootfs),
                debian_mirror()], timeout=600)
        _trim_like_slim(rootfs)
        partial = tarball.with_suffix(".tar.partial")
        _check(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300)
        partial.rename(tarball)


def _trim_like_slim(rootfs: Path) -> None:
    """Drop what debian:bookworm-slim does not ship either: the downloaded .debs and the
    package lists (every Dockerfile ``apt-get update`` fetches fresh ones)."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin",
                    "var/lib/apt/lists/*_*"):
        for path in rootfs.glob(pattern):
            path.unlink()


def can_debootstrap() -> bool:
    return shutil.which("debootstrap") is not None and os.geteuid() == 0


def build_image(context: Path, base: str | None, iidfile: Path) -> str:
    """``podman build`` the repository's Dockerfile; returns the image id it produced.

    *base* None builds on the Dockerfile's default (debian:bookworm-slim from a registry).
    """
    args = [*BUILD_FLAGS, "--iidfile", str(iidfile), "-t", IMAGE_TAG]
    ca = host_ca_bundle()
    if ca:
        args += ["-v", f"{ca}:/etc/ssl/certs/host-ca.crt:ro",
                 "--build-arg", "PIP_CERT=/etc/ssl/certs/host-ca.crt"]
    if base:
        args += ["--build-arg", f"BASE={base}"]
    podman("build", *args, str(context), timeout=840)
    return iidfile.read_text().strip()


def _check(cmd: Sequence[str], timeout: float) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
