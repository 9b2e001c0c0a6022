"""Helpers for end-to-end tests: write a config, run the CLI, compare the archive with the truth."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Mirror:
    """One mirror installation: a config file, an archive root and a catalog."""

    config: Path
    root: Path
    catalog_url: str

    def run(self, *args: str, check: bool = False,
            timeout: float = 90) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "mirror", *args, "--config", str(self.config)],
            capture_output=True, text=True, timeout=timeout, cwd=self.config.parent,
            env=clean_env())
        if check and proc.returncode != 0:
            raise AssertionError(f"tcia-mirror {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}")
        return proc

    def sync(self, *args: str, check: bool = True) -> dict[str, Any]:
        proc = self.run("sync", "--json", *args, check=check)
        return json.loads(proc.stdout) if proc.stdout.strip() else {"exit": proc.returncode}

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "mirror", *args, "--config", str(self.config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.config.parent,
            env=clean_env())


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCIA_MIRROR_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def write_mirror(tmp: Path, *, base_url: str, api: str, collections: list[str],
                 catalog_url: str, extra: str = "", workers: int = 4,
                 verify: str = "md5", lease: str = "30s", layout: str = "uid") -> Mirror:
    root = tmp / "archive"
    config = tmp / "tcia-mirror.toml"
    config.write_text(f"""
[source]
api = "{api}"
base_url = "{base_url}"
retries = 2
connect_timeout = "5s"
read_timeout = "10s"

[archive]
root = "{root}"
layout = "{layout}"

[catalog]
url = "{catalog_url}"

[sync]
collections = {json.dumps(collections)}
workers = {workers}
verify = "{verify}"
max_attempts = 3
retry_backoff = "200ms"
retry_backoff_cap = "2s"
lease = "{lease}"
{extra}
""")
    return Mirror(config, root, catalog_url)


def is_license(rel: Path) -> bool:
    """``<Collection>/LICENSE``: the collection's license text kept from v4 ZIPs."""
    return len(rel.parts) == 2 and rel.name == "LICENSE"


def archive_files(root: Path) -> dict[str, tuple[int, str]]:
    """Relative path -> (size, md5) of every file under root, staging and licenses excluded.

    Safe to call while a mirror runs: ``.staging`` is not entered, and a directory or
    file renamed away during the walk is left out (the caller polls again).
    """
    out = {}
    for top, dirs, files in os.walk(root):
        if Path(top) == root and ".staging" in dirs:
            dirs.remove(".staging")
        for name in files:
            path = Path(top, name)
            rel = path.relative_to(root)
            if is_collection_ledger(rel) or is_license(rel):
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # moved by a commit in progress
            out[str(rel)] = (len(data), hashlib.md5(data).hexdigest())
    return dict(sorted(out.items()))


def is_collection_ledger(rel: Path) -> bool:
    """``<Collection>/metadata.csv``: written by the mirror, not a ground-truth file."""
    return len(rel.parts) == 2 and rel.name == "metadata.csv"


def expected_files(truth: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """The archive the ground truth calls for, in the uid layout."""
    out = {}
    for s in truth.values():
        for sop, inst in s.instances.items():
            rel = f"{s.collection}/{s.patient_id}/{s.study_uid}/{s.series_uid}/{sop}.dcm"
            out[rel] = (inst.size, inst.md5)
    return out


def assert_archive_matches(root: Path, truth: dict[str, Any], *, allow_extra: bool = False) -> None:
    got, want = archive_files(root), expected_files(truth)
    missing = sorted(set(want) - set(got))
    wrong = sorted(p for p in set(want) & set(got) if got[p] != want[p])
    extra = sorted(set(got) - set(want))
    assert not missing and not wrong and (allow_extra or not extra), (
        f"missing {len(missing)} {missing[:3]}, wrong {len(wrong)} {wrong[:3]}, "
        f"extra {len(extra)} {extra[:3]}")


# --- faults, crashes and verify (appended; the helpers above keep their behaviour) ---

def bad_files(root: Path, truth: dict[str, Any], *,
              before: dict[str, Any] | None = None) -> list[str]:
    """Files outside .staging that are not exactly a ground-truth file at its own path.

    An empty list means: nothing corrupt, partial or foreign is visible in the archive
    (files may still be missing; that is checked elsewhere). With *before* (the truth of
    an earlier release), files of that version are allowed too: they are replaced whole.
    """
    want = expected_files(truth)
    old = expected_files(before) if before else {}
    bad = []
    for rel, got in _archive_files_tolerant(root).items():
        if want.get(rel) != got and old.get(rel) != got:
            bad.append(f"{rel}: {got}, want {want.get(rel)}")
    return bad


def _archive_files_tolerant(root: Path) -> dict[str, tuple[int, str]]:
    """Like :func:`archive_files`, but safe while a sync renames directories underneath."""
    out = {}
    for top, dirs, files in os.walk(root):  # os.walk skips directories that vanish
        if Path(top) == root:
            dirs[:] = [d for d in dirs if d != ".staging"]
        for name in files:
            path = Path(top, name)
            if is_collection_ledger(path.relative_to(root)) or is_license(path.relative_to(root)):
                continue
            try:
                data = path.read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                continue  # swapped out between listing and reading: not a visible file
            out[str(path.relative_to(root))] = (len(data), hashlib.md5(data).hexdigest())
    return out


def run_watched(mirror: Mirror, *args: str, truth: dict[str, Any],
                before: dict[str, Any] | None = None,
                timeout: float = 90) -> tuple[int, dict[str, Any], str, list[str]]:
    """Run ``sync --json *args*`` and scan the archive while it runs.

    Returns (exit code, JSON summary, stderr, problems seen by any scan); a scan runs
    between short waits on the process, so no moment of the sync goes unobserved for long.
    """
    proc = mirror.popen("sync", "--json", *args)
    problems: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        problems.extend(bad_files(mirror.root, truth, before=before))
        try:
            proc.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                raise AssertionError(f"sync did not finish within {timeout} s") from None
    out, err = proc.communicate()
    problems.extend(bad_files(mirror.root, truth, before=before))
    summary = json.loads(out) if out.strip() else {}
    return proc.returncode, summary, err, sorted(set(problems))


def catalog_series(catalog_url: str) -> dict[str, Any]:
    """series_uid -> SeriesRow for every series in the catalog (read in this process)."""
    from mirror.catalog import Catalog
    from mirror.domain import SeriesState

    async def read() -> dict[str, Any]:
        catalog = await Catalog.open(catalog_url, upgrade=False)
        try:
            return {row.series_uid: row async for row in catalog.iter_series(
                states=list(SeriesState))}
        finally:
            await catalog.close()

    return asyncio.run(read())


def image_downloads(stats: dict[str, Any], *endpoints: str) -> int:
    """Requests to the given image endpoints (default: both ZIP endpoints), any dialect."""
    names = endpoints or ("getImage", "getImageWithMD5Hash")
    return sum(n for key, n in stats["requests"].items() if key.split(":")[-1] in names)
