"""B1-B4: start the dataset's simulator, run the contenders round-robin, collect samples.

Round-robin (run 1 of every contender, then run 2, ...) spreads the noise of a shared
machine over all contenders instead of loading it onto whichever ran during a spike.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sidebyside import bigcollection, datasets, noop
from sidebyside import contenders as c
from sidebyside.measure import ContenderFailed, Sample, run_measured


@dataclass
class Outcome:
    key: str
    about: str
    totals: datasets.Totals
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    collections: int = 1
    #: B1: the verifying-mirror limit measured in the same run (verify_limit.py)
    limit: dict[str, float | str] | None = None
    #: contender -> why it did not run here (e.g. nbiatoolkit's venv could not be made)
    left_out: dict[str, str] = field(default_factory=dict)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def compare(work: Path, dataset: datasets.Dataset, names: list[str], runs: int,
            *, limit: bool = False) -> Outcome:
    """Every contender *runs* times against one simulator, each run checked on disk."""
    names, left_out = c.runnable(names)
    for name, why in left_out.items():
        say(f"[{dataset.key}] {name} left out: {why}")
    say(f"[{dataset.key}] preparing {dataset.about} (generated once, then reused)")
    with datasets.serve(work, dataset) as sim:
        totals = datasets.totals(sim)
        datasets.warm_zips(sim)
        base, collection = sim.base_url(datasets.API), sim.collections()[0]
        out = Outcome(dataset.key, dataset.about, totals, {n: [] for n in names},
                      left_out=left_out)
        for k in range(runs):
            for name in names:
                sim.reset_stats()
                run_dir = work / "runs" / dataset.key / name.replace(" ", "-")
                sample = c.run_contender(name, run_dir, base, collection)
                c.check_output(name, run_dir, totals)
                sample.extra["requests"] = sim.stats()["requests_total"]
                out.samples[name].append(sample)
                datasets.fresh_dir(run_dir)  # free the disk for the next contender
                say(f"[{dataset.key}] run {k + 1}/{runs} {name}: {sample.seconds:.2f} s, "
                    f"peak RSS {sample.peak_rss / 2**20:.0f} MiB")
        if limit:
            out.limit = verify_limit(work / "runs" / dataset.key / "limit", base, collection)
            say(f"[{dataset.key}] verifying-mirror limit: {out.limit['cpu_s_per_gb']:.2f} "
                f"CPU s/GB ({out.limit['inflater']})")
    return out


def verify_limit(run_dir: Path, base: str, collection: str) -> dict[str, float | str]:
    """Inflate + MD5 + header read + write of the dataset, CPU s per GB (no network)."""
    datasets.fresh_dir(run_dir)
    cmd = [sys.executable, str(c.HERE / "verify_limit.py"), base, collection,
           str(run_dir / "out")]
    sample = run_measured(cmd, log=run_dir / "log.txt", cwd=run_dir, env=c.child_env())
    datasets.fresh_dir(run_dir)
    return json.loads(sample.stdout)


def b1(work: Path, sets: dict[str, datasets.Dataset], runs: int) -> Outcome:
    return compare(work, sets["b1"], [c.MIRROR, c.UTILS, c.NBTK, c.FLOOR], runs, limit=True)


def b2(work: Path, sets: dict[str, datasets.Dataset], runs: int) -> Outcome:
    return compare(work, sets["b2"], [c.MIRROR, c.UTILS, c.NBTK], runs)


def b3(work: Path, sets: dict[str, datasets.Dataset], runs: int) -> Outcome:
    return compare(work, sets["b3"], [c.MIRROR, c.UTILS, c.NBTK, c.FLOOR], runs)


def b4(work: Path, sets: dict[str, datasets.Dataset], runs: int) -> Outcome:
    """No-op resync of a catalog already in sync: wall time and requests per run."""
    dataset = sets["b4"]
    say(f"[b4] preparing {dataset.about} (generated once, then reused)")
    with datasets.serve(work, dataset) as sim:
        names = sim.collections()
        totals = datasets.totals(sim)
        run_dir = datasets.fresh_dir(work / "runs" / "b4")
        config = c.write_config(run_dir, sim.base_url(datasets.API), names)
        template = noop.template_catalog(work, config, names, f"seed{dataset.spec.seed}")
        out = Outcome("b4", dataset.about, totals, {c.MIRROR: []}, collections=len(names))
        for k in range(runs):
            db = noop.fresh_copy(template, run_dir / "catalog.db")
            sim.reset_stats()
            sample = c.mirror_sync(config, run_dir / "log.txt")
            _check_noop(sample, db, totals.series)
            sample.extra["requests"] = sim.stats()["requests_total"]
            sample.extra["by_endpoint"] = sim.stats()["requests"]
            out.samples[c.MIRROR].append(sample)
            say(f"[b4] run {k + 1}/{runs}: {sample.seconds:.2f} s, "
                f"{sample.extra['requests']} requests")
    return out


def _check_noop(sample: Sample, db: Path, series: int) -> None:
    summary = sample.extra["summary"]
    if summary.get("outcome") != "ok" or summary.get("done") or summary.get("bytes"):
        raise ContenderFailed(f"no-op resync did work or failed: {summary}")
    if (done := noop.count_done(db)) != series:
        raise ContenderFailed(f"after the no-op resync {done} of {series} series are done")


DISCOVERY, NOOP = "tcia-mirror first discovery", "tcia-mirror no-op sync"
B5_SERIES = {True: 2_000, False: 200_000}  # --quick, full


def b5(work: Path, sets: dict[str, datasets.Dataset], runs: int) -> Outcome:
    """First discovery of a 200,000-series collection, then a no-op sync of it."""
    n = B5_SERIES[sets is datasets.QUICK]
    say(f"[b5] preparing a {n:,}-series getSeries listing (generated once, then reused)")
    body = bigcollection.listing(work / "b5" / f"listing-{n}.json", n)
    about = f"{n:,} series in 1 collection (generated nbia-v4 getSeries listing)"
    out = Outcome("b5", about, datasets.Totals(n, 0, 0), {DISCOVERY: [], NOOP: []})
    with bigcollection.serve(body) as base:
        for k in range(runs):
            run_dir = datasets.fresh_dir(work / "runs" / "b5")
            config = c.write_config(run_dir, base, [bigcollection.COLLECTION])
            cmd = [sys.executable, str(c.HERE / "discover_run.py"), str(config),
                   bigcollection.COLLECTION]
            sample = run_measured(cmd, log=run_dir / "log.txt", cwd=run_dir, env=c.child_env())
            if json.loads(sample.stdout)["add"] != n:
                raise ContenderFailed(f"b5 discovery found {sample.stdout.strip()}, not {n}")
            out.samples[DISCOVERY].append(sample)
            say(f"[b5] run {k + 1}/{runs} discovery: {sample.seconds:.2f} s, "
                f"{sample.cpu:.2f} CPU s, peak RSS {sample.peak_rss / 2**20:.0f} MiB")
            db = run_dir / "catalog.db"
            noop.mark_all_done(db)
            noop.fresh_copy(db, run_dir / "noop.db")
            config = c.write_config(run_dir, base, [bigcollection.COLLECTION],
                                    catalog=run_dir / "noop.db")
            sample = c.mirror_sync(config, run_dir / "noop-log.txt")
            _check_noop(sample, run_dir / "noop.db", n)
            out.samples[NOOP].append(sample)
            say(f"[b5] run {k + 1}/{runs} no-op sync: {sample.seconds:.2f} s")
    return out


SUITES = {"b1": b1, "b2": b2, "b3": b3, "b4": b4, "b5": b5}
