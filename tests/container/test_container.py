"""The container image built and run for real with podman: metadata, sync, daemon and stop.

The simulator runs on the host; containers share the host network, so they reach it on
127.0.0.1 exactly as a deployment reaches TCIA.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.container import podman as pm

# Building takes minutes on a cold cache, and it happens inside the first test's setup.
pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

UID = 10001
GRACE_SECONDS = 10  # podman stop -t, Docker's default grace period


@pytest.fixture(scope="module")
def sim(sim_data_dir: Path) -> Iterator[Any]:
    """One simulator for the module: the containers only read from it."""
    from mirror.simulator.testing import DatasetSpec, start_simulator

    with start_simulator(sim_data_dir, DatasetSpec()) as simulator:
        yield simulator


def _data_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Host directories for the image's two volumes, writable by the container's user."""
    dirs = tmp_path / "archive", tmp_path / "catalog"
    for path in dirs:
        path.mkdir()
        path.chmod(0o777)  # works rootless too, where uid 10001 maps to a sub-uid
    return dirs


def _mounts(archive: Path, catalog: Path) -> list[str]:
    # Bind exactly the VOLUME paths: a bind on /data alone would still get anonymous
    # volumes over /data/archive and /data/catalog, hiding the files from the host.
    return ["-v", f"{archive}:/data/archive", "-v", f"{catalog}:/data/catalog"]


def _source_env(sim: Any, collection: str, **extra: str) -> list[str]:
    env = {"TCIA_MIRROR_SOURCE_API": "nbia-v4",
           "TCIA_MIRROR_SOURCE_BASE_URL": sim.base_url("nbia-v4"),
           "TCIA_MIRROR_SYNC_COLLECTIONS": collection, **extra}
    return [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]


def _container_name() -> str:
    return f"tcia-mirror-test-{uuid.uuid4().hex[:12]}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_image_metadata_user_and_version(image: pm.Built) -> None:
    proc = pm.podman("run", "--rm", *pm.RUN_FLAGS, image.image_id, "--version")
    assert version("tcia-mirror") in proc.stdout

    ident = pm.podman("run", "--rm", *pm.RUN_FLAGS, "--entrypoint", "id", image.image_id)
    assert ident.stdout.startswith(f"uid={UID}(mirror) gid={UID}(mirror)"), ident.stdout
    # the host CA was mounted for pip only: at most buildah's empty mount point remains
    leftover = pm.podman("run", "--rm", *pm.RUN_FLAGS, "--entrypoint", "sh", image.image_id,
                         "-c", "test ! -s /etc/ssl/certs/host-ca.crt && echo clean", check=False)
    assert leftover.stdout.strip() == "clean", leftover

    info = json.loads(pm.podman("image", "inspect", image.image_id).stdout)[0]
    config = info["Config"]
    assert config["Entrypoint"] == ["tcia-mirror"] and config["Cmd"] == ["daemon"]
    assert config["User"] == "mirror" and config["WorkingDir"] == "/data"
    assert config["StopSignal"] == "SIGTERM" and "9188/tcp" in config["ExposedPorts"]
    assert set(config["Volumes"]) == {"/data/archive", "/data/catalog"}
    assert "TCIA_MIRROR_DAEMON_LISTEN=0.0.0.0:9188" in config["Env"]
    health = info.get("Healthcheck") or config.get("Healthcheck") or {}
    assert health.get("Test", [None])[0] == "CMD" and "/healthz" in " ".join(health["Test"])


def test_sync_in_container_writes_the_ground_truth(image: pm.Built, sim: Any,
                                                   tmp_path: Path) -> None:
    archive, catalog = _data_dirs(tmp_path)
    collection, name = sim.collections()[0], _container_name()
    try:
        proc = pm.podman("run", "--rm", "--name", name, *pm.RUN_FLAGS,
                         *_mounts(archive, catalog), *_source_env(sim, collection),
                         image.image_id, "sync", timeout=300, check=False)
    finally:  # a timed-out client leaves the container running
        pm.podman("rm", "-f", "-v", "--ignore", name, check=False)
    assert proc.returncode == 0, f"sync exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"

    truth = sim.ground_truth(collection)
    assert truth, "the simulator published nothing to check against"
    for series in truth.values():
        folder = (archive / series.collection / series.patient_id / series.study_uid
                  / series.series_uid)
        assert len(series.instances) == series.image_count
        for sop_uid, instance in series.instances.items():
            path = folder / f"{sop_uid}.dcm"
            assert path.is_file(), f"missing {path.relative_to(archive)}"
            data = path.read_bytes()
            assert len(data) == instance.size, path
            assert hashlib.md5(data).hexdigest() == instance.md5, path
            if os.geteuid() == 0:  # rootful podman: container uids are host uids
                assert path.stat().st_uid == UID, "files must be written by the non-root user"
    assert (catalog / "catalog.db").is_file()


def _healthz(url: str, name: str, deadline_s: float = 60) -> dict[str, Any]:
    """Poll /healthz until 200 with a JSON body; fail early if the container died."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline, last = time.monotonic() + deadline_s, "no answer yet"
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=2) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except (urllib.error.URLError, OSError) as exc:
            last = repr(exc)
        state = pm.podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        assert state == "running", f"daemon container {state}; last /healthz: {last}\n" \
                                   + _logs(name)
        time.sleep(0.25)
    raise AssertionError(f"/healthz not 200 within {deadline_s} s; last: {last}\n{_logs(name)}")


def _logs(name: str) -> str:
    proc = pm.podman("logs", name, check=False)
    return f"container logs:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"


def test_daemon_in_container_is_healthy_and_stops_on_sigterm(image: pm.Built, sim: Any,
                                                             tmp_path: Path) -> None:
    archive, catalog = _data_dirs(tmp_path)
    port, name = _free_port(), _container_name()
    env = _source_env(sim, sim.collections()[0],
                      TCIA_MIRROR_DAEMON_LISTEN=f"127.0.0.1:{port}")
    try:
        pm.podman("run", "-d", "--name", name, *pm.RUN_FLAGS, *_mounts(archive, catalog),
                  *env, image.image_id)
        body = _healthz(f"http://127.0.0.1:{port}/healthz", name)
        assert isinstance(body, dict) and body, body
        # the image's own HEALTHCHECK command, run on demand (its timer needs systemd)
        check = pm.podman("healthcheck", "run", name, check=False)
        assert check.returncode == 0, f"HEALTHCHECK failed: {check.stdout}{check.stderr}"

        started = time.monotonic()
        pm.podman("stop", "-t", str(GRACE_SECONDS), name, timeout=GRACE_SECONDS + 30)
        stop_seconds = time.monotonic() - started
        print(f"daemon container stopped in {stop_seconds:.2f} s; /healthz said {body}")
        state = json.loads(pm.podman("inspect", name).stdout)[0]["State"]
        assert state["Status"] == "exited", state
        assert state["ExitCode"] == 0, f"exit {state['ExitCode']}\n{_logs(name)}"
        assert stop_seconds < GRACE_SECONDS, f"took {stop_seconds:.1f} s: SIGKILLed?"
    finally:
        pm.podman("rm", "-f", "-v", name, check=False)

