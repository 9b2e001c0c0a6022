"""Run one contender in a fresh child process: wall time and the child's own peak RSS.

Peak RSS is the kernel's ru_maxrss for exactly that child, taken with ``wait4`` by
:mod:`launch`, so runs do not add up the way ``getrusage(RUSAGE_CHILDREN)`` would.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAUNCHER = Path(__file__).resolve().parent / "launch.py"


class ContenderFailed(RuntimeError):
    """A contender exited non-zero, timed out, or left a wrong result on disk."""


@dataclass
class Sample:
    seconds: float
    peak_rss: int  #: bytes
    cpu: float = 0.0  #: user + system seconds of the contender (the server not included)
    stdout: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def run_measured(cmd: list[str], *, log: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None, timeout: float = 1800) -> Sample:
    """Run *cmd* (stderr to *log*, stdout to *log*.out); ContenderFailed unless it exits 0."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path, result = log.with_name(log.name + ".out"), log.with_name(log.name + ".json")
    result.unlink(missing_ok=True)
    launcher = [sys.executable, "-S", str(LAUNCHER), str(result)]
    with log.open("wb") as err, out_path.open("wb") as out:
        proc = subprocess.Popen(launcher + cmd, stdout=out, stderr=err, cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the contender
            proc.wait()
            raise ContenderFailed(f"{' '.join(cmd[:4])}... timed out after {timeout} s") from None
    if proc.returncode != 0 or not result.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise ContenderFailed(f"{' '.join(cmd[:4])}... exited {proc.returncode}; "
                              f"log {log}:\n{tail}")
    got = json.loads(result.read_text())
    # ru_maxrss is KiB on Linux
    return Sample(got["seconds"], got["maxrss_kib"] * 1024, got["cpu"],
                  out_path.read_text(errors="replace"))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> float:
    """(max - min) / median: how noisy the runs were."""
    if len(values) < 2:
        return 0.0
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else 0.0
