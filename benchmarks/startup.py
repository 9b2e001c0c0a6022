"""Start-up time: ``tcia-mirror --help``, a no-op sync and ``status``, median wall and CPU s.

    python benchmarks/startup.py            # 5 runs each
    python benchmarks/startup.py --runs 9
    python benchmarks/startup.py --checkout /tmp/old   # another tree, e.g. a git archive

Starts its own simulator (``tcia-mirror simulate`` on 127.0.0.1, a free port: 1
collection, 5 patients x 3 series x 20 instances of 64 KiB) in a temporary folder, syncs
it once, then times *runs* more syncs that find nothing to do, and ``status`` (also
``--json`` and ``--failed``) of that SQLite catalog (start-up is nearly all of it;
B6, ``catalog_scale.py``, times it on Postgres). Each command runs the
installed console script (else ``python -m mirror``) with this checkout first on
PYTHONPATH; CPU seconds are the child's user + system time (``os.wait4``).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTION = "SIM-LUNG"


def program() -> list[str]:
    script = Path(sys.executable).parent / "tcia-mirror"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mirror"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one run of *args*; a failed run stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime


def wait_until_up(url: str, sim: subprocess.Popen[bytes], deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if sim.poll() is not None:
            raise SystemExit("the simulator exited at start")
        try:
            with urllib.request.urlopen(url + "/getCollectionValues", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the simulator did not come up")


def measure(runs: int, checkout: Path = REPO) -> dict[str, tuple[float, float]]:
    compileall.compile_dir(checkout / "mirror", quiet=1)  # as installed: .pyc files exist
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    work = Path(tempfile.mkdtemp(prefix="startup-"))
    port = free_port()
    sim = subprocess.Popen(
        [*program(), "simulate", "--port", str(port), "--data", str(work / "sim"),
         "--patients", "5", "--series", "3", "--instances", "20",
         "--instance-size", "65536"], env=env, cwd=work,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/nbia-api/services/v4"
        wait_until_up(base, sim)
        sync_env = {**env, "TCIA_MIRROR_SOURCE_BASE_URL": base,
                    "TCIA_MIRROR_SYNC_COLLECTIONS": COLLECTION}
        timed([*program(), "sync"], sync_env, work)  # the first sync downloads everything
        results = {}
        for name, args, cmd_env in (("tcia-mirror --help", ["--help"], env),
                                    ("no-op sync", ["sync"], sync_env),
                                    ("status (SQLite)", ["status"], sync_env),
                                    ("status --json (SQLite)", ["status", "--json"], sync_env),
                                    ("status --failed (SQLite)", ["status", "--failed"],
                                     sync_env)):
            samples = [timed([*program(), *args], cmd_env, work) for _ in range(runs)]
            results[name] = (statistics.median(s[0] for s in samples),
                             statistics.median(s[1] for s in samples))
        return results
    finally:
        sim.terminate()
        sim.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command")
    parser.add_argument("--checkout", type=Path, default=REPO,
                        help="the source tree to measure (default: this one)")
    args = parser.parse_args()
    results = measure(args.runs, args.checkout.resolve())
    print(f"median of {args.runs} runs, {' '.join(program())}, PYTHONPATH={args.checkout}")
    print("| command | wall s | CPU s |\n|---|---|---|")
    for name, (wall, cpu) in results.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
