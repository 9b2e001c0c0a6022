"""Fixtures for the container tests: podman readiness, then the image built once per session."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tests.container import podman as pm

REPO = Path(__file__).resolve().parents[2]


def _cache_dir() -> Path:
    """Survives between sessions: the debootstrap rootfs tarball and the build lock."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tcia-mirror-tests"


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """Skip, saying why, where podman cannot run containers; nothing else skips."""
    reason = pm.unusable_reason()
    if reason:
        print(f"container tests skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def image(podman_ready: None, tmp_path_factory: pytest.TempPathFactory) -> pm.Built:
    """The repository's Dockerfile built with podman (runs are by image id, not tag, so a
    concurrent session retagging tcia-mirror:test cannot swap the image under a test)."""
    cache = _cache_dir()
    with pm.locked(cache / "build.lock"):
        base, base_seconds = pm.prepare_base(cache)
        started = time.monotonic()
        image_id = pm.build_image(REPO, base, tmp_path_factory.mktemp("build") / "iid")
        built = pm.Built(image_id, base or "debian:bookworm-slim (Dockerfile default)",
                         base_seconds, time.monotonic() - started)
    size = pm.podman("image", "inspect", "--format", "{{.Size}}", image_id).stdout.strip()
    print(f"container image {image_id.removeprefix('sha256:')[:12]} on {built.base}: base "
          f"{'reused' if base_seconds is None else f'{base_seconds:.1f} s'}, build "
          f"{built.build_seconds:.1f} s, size {int(size) / 1e6:.0f} MB", file=sys.stderr)
    return built
