"""The contenders as commands for a fresh child process, and the check of what they left.

Every contender starts from the collection name only (one listing, then the downloads),
writes into an empty run directory, and is checked afterwards: a run whose files do not
add up to the dataset is an error, not a fast result. nbiatoolkit runs from its own venv
(its pins would downgrade the project's pydicom, pandas, pyarrow and cryptography), made
here on first use.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sidebyside.datasets import API, Totals, fresh_dir, output_totals
from sidebyside.measure import ContenderFailed, Sample, run_measured

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MIRROR, UTILS, NBTK, FLOOR = "tcia-mirror", "tcia-utils", "nbiatoolkit", "raw floor"
NBTK_PIN = "nbiatoolkit==1.3.1"
NBTK_VENV = REPO / "benchmarks" / ".work" / "venv-nbiatoolkit-1.3.1"


class Unavailable(RuntimeError):
    """A contender that cannot run on this machine (the reason is the message)."""


#: contender -> why it is left out of this run (``run.py --no-nbiatoolkit``)
SKIPPED: dict[str, str] = {}


def runnable(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """*names* without the contenders that cannot run here, and why each was left out."""
    left_out = {n: SKIPPED[n] for n in names if n in SKIPPED}
    if NBTK in names and NBTK not in left_out:
        try:
            nbiatoolkit_python()
        except Unavailable as exc:
            left_out[NBTK] = str(exc)
    return [n for n in names if n not in left_out], left_out


def nbiatoolkit_python(*, make: bool = True) -> Path:
    """The venv's python with nbiatoolkit installed; made (about a minute) when missing.

    ``make=False`` only looks: the test suite never reaches PyPI itself (``.ci/setup``
    makes the venv, as a benchmark run does on first use).
    """
    python = NBTK_VENV / "bin" / "python"
    if python.exists():
        return python
    if not make:
        raise Unavailable(f"{NBTK_VENV} is not made (bash .ci/setup makes it from PyPI)")
    tmp = NBTK_VENV.with_name(f"{NBTK_VENV.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True,
                       capture_output=True, timeout=300)
        subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", NBTK_PIN], check=True,
                       capture_output=True, timeout=900)
        os.rename(tmp, NBTK_VENV)  # all at once: a half-made venv is never picked up
    except OSError as exc:
        if not python.exists():  # else a concurrent maker won the rename: use its venv
            raise Unavailable(f"could not make {NBTK_VENV}: {exc}") from None
    except subprocess.SubprocessError as exc:
        err = getattr(exc, "stderr", b"") or b""
        raise Unavailable(f"could not install {NBTK_PIN} into {NBTK_VENV}: {exc}; "
                          f"{err.decode(errors='replace')[-500:]}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return python


def compile_mirror(tree: Path = REPO) -> None:
    """Write mirror's bytecode once, before anything is timed.

    An installed tcia-mirror has its .pyc files, as tcia-utils and every library here
    have theirs from pip. This checkout is an editable install and the machine sets
    PYTHONDONTWRITEBYTECODE, so without this every measured run would compile mirror's
    ~150 modules again (about 0.5 CPU s) and the other contenders nothing.
    """
    compileall.compile_dir(tree / "mirror", quiet=1)


def child_env() -> dict[str, str]:
    """The environment without TCIA_MIRROR_* overrides (they would change the contender)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCIA_MIRROR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def write_config(run_dir: Path, base_url: str, collections: list[str], *,
                 catalog: Path | None = None, extra: str = "") -> Path:
    """A tcia-mirror config with the defaults except source, archive, catalog, collections."""
    config = run_dir / "tcia-mirror.toml"
    catalog = catalog or run_dir / "catalog.db"
    config.write_text(f"""[source]
api = "{API}"
base_url = "{base_url}"

[archive]
root = "{run_dir / 'archive'}"

[catalog]
url = "sqlite+aiosqlite:///{catalog}"

[sync]
collections = {json.dumps(collections)}
verify = "md5"
{extra}""")
    return config


def mirror_sync(config: Path, log: Path) -> Sample:
    """``tcia-mirror sync --json``: the JSON summary lands in ``sample.extra["summary"]``."""
    cmd = [sys.executable, "-m", "mirror", "sync", "--json", "--config", str(config)]
    sample = run_measured(cmd, log=log, cwd=config.parent, env=child_env())
    try:
        sample.extra["summary"] = json.loads(sample.stdout)
    except ValueError as exc:
        raise ContenderFailed(f"tcia-mirror sync printed no JSON summary; see {log}") from exc
    return sample


def run_contender(name: str, run_dir: Path, base_url: str, collection: str) -> Sample:
    """Run contender *name* once into a fresh *run_dir*; its output stays for checking."""
    fresh_dir(run_dir)
    log = run_dir / "log.txt"
    if name == MIRROR:
        return mirror_sync(write_config(run_dir, base_url, [collection]), log)
    script = {UTILS: "tcia_utils_run.py", NBTK: "nbiatoolkit_run.py",
              FLOOR: "raw_floor.py"}[name]
    python = str(nbiatoolkit_python()) if name == NBTK else sys.executable
    cmd = [python, str(HERE / script), base_url, collection, str(run_dir / "out")]
    return run_measured(cmd, log=log, cwd=run_dir, env=child_env())


def output_root(name: str, run_dir: Path) -> Path:
    return run_dir / ("archive" if name == MIRROR else "out")


def check_output(name: str, run_dir: Path, want: Totals) -> None:
    got = output_totals(output_root(name, run_dir))
    if got != want:
        raise ContenderFailed(f"{name} left {got} in {run_dir}, the dataset is {want}")


